#![no_main]
//! libFuzzer target `sarif`: the body is `relgate::fuzzing::sarif` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::sarif(data));

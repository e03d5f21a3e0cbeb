#![no_main]
//! libFuzzer target `register`: the body is `relgate::fuzzing::register` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::register(data));

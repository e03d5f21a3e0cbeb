#![no_main]
//! libFuzzer target `pipeline`: the body is `relgate::fuzzing::pipeline` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::pipeline(data));

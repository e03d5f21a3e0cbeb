#![no_main]
//! libFuzzer target `checkpoint`: the body is `relgate::fuzzing::checkpoint` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::checkpoint(data));

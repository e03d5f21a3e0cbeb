#![no_main]
//! libFuzzer target `approval`: the body is `relgate::fuzzing::approval` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::approval(data));

#![no_main]
//! libFuzzer target `log_reader`: the body is `relgate::fuzzing::log_reader` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::log_reader(data));

#![no_main]
//! libFuzzer target `sums`: the body is `relgate::fuzzing::sums` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::sums(data));

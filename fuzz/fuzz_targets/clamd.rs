#![no_main]
//! libFuzzer target `clamd`: the body is `relgate::fuzzing::clamd` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::clamd(data));

#![no_main]
//! libFuzzer target `junit`: the body is `relgate::fuzzing::junit` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::junit(data));

#![no_main]
//! libFuzzer target `replay`: the body is `relgate::fuzzing::replay_record` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::replay_record(data));

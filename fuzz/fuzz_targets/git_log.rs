#![no_main]
//! libFuzzer target `git_log`: the body is `relgate::fuzzing::git_log` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::git_log(data));

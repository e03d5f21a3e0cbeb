#![no_main]
//! libFuzzer target `sshsig`: the body is `relgate::fuzzing::sshsig` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::sshsig(data));

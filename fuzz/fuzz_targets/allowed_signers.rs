#![no_main]
//! libFuzzer target `allowed_signers`: the body is `relgate::fuzzing::allowed_signers` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::allowed_signers(data));

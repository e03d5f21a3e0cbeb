#![no_main]
//! libFuzzer target `cvss`: the body is `relgate::fuzzing::cvss` (docs/fuzzing.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| relgate::fuzzing::cvss(data));

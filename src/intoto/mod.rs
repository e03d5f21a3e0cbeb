//! What relgate publishes for the tools downstream of a release: an in-toto Statement with the
//! SLSA Verification Summary predicate ([`vsa`]), in a DSSE envelope ([`dsse`]) signed by the
//! release key, and that key as an SPKI PEM ([`spki`]), which DSSE verifiers such as
//! `slsa-verifier verify-vsa --public-key-path` take. docs/attestation.md says how to check them.

pub mod der;
pub mod dsse;
pub mod spki;
pub mod vsa;

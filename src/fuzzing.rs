//! Fuzz target bodies: one function per input format relgate reads, each a thin wrapper over
//! the public parser or checker that asserts the properties that matter (a round trip where
//! one exists, invariants of the result) and panics when one does not hold.
//!
//! The libFuzzer targets in `fuzz/fuzz_targets/` call these functions, and so does the
//! corpus test (`tests/it/fuzz_corpus.rs`), which runs every file of `fuzz/corpus/<target>/`
//! through its target on the stable toolchain. Time and memory limits per input are
//! libFuzzer's (`-timeout`, `-rss_limit_mb`, `-malloc_limit_mb`, see docs/fuzzing.md); the
//! corpus test bounds time per input itself.
//!
//! Not an API: the names and behaviour here change with the targets.

#![expect(
    clippy::expect_used,
    reason = "a target reports a property that does not hold by panicking, as a test does"
)]

mod formats;
mod records;
mod replay;

pub use formats::{
    allowed_signers, approval, clamd, cvss, git_log, junit, pipeline, register, sarif, sshsig, sums,
};
pub use records::{checkpoint, log_reader};
pub use replay::{
    MUTATION_BASE_DIR, RELEASE_SIGNER, release_key_openssh, release_signers, replay_record,
};

/// A target's body: panics when a property does not hold.
pub type Target = fn(&[u8]);

/// Every target by name: the name is the libFuzzer target's and its corpus folder's.
pub const TARGETS: &[(&str, Target)] = &[
    ("allowed_signers", allowed_signers),
    ("approval", approval),
    ("checkpoint", checkpoint),
    ("clamd", clamd),
    ("cvss", cvss),
    ("git_log", git_log),
    ("junit", junit),
    ("log_reader", log_reader),
    ("pipeline", pipeline),
    ("register", register),
    ("replay", replay_record),
    ("sarif", sarif),
    ("sshsig", sshsig),
    ("sums", sums),
];

/// Input as text: invalid UTF-8 is replaced, so text parsers see every input.
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Split `data` at the first NUL: a way to give a target two inputs.
fn split2(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

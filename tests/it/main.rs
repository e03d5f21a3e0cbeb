//! relgate's integration tests, as one test binary: each module below was a test file of its own
//! (and a binary of its own, each linking the whole crate); the helper modules at the top are
//! the shared harness. Run one module with `cargo test --test it MODULE::` (for example
//! `cargo test --test it fuzz_corpus::`); docs/benchmarks.md ("Building the tests") measures the
//! build.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "in a test, a panic is the failure report"
)]
#![allow(
    clippy::too_many_lines,
    reason = "fixtures and fake servers are data and protocol scripts; the rule is for src/"
)]

// The shared harness.
mod common;
mod dav;
mod report_common;
mod s3_common;
mod team_setup;

// The tests, one module per former test binary.
mod agent;
mod approve;
mod bad_inputs;
mod change_record;
mod change_record_run;
mod ci;
mod ci_docs;
mod closed_pipe;
mod config;
mod crash;
mod docs_claims;
mod dry_run;
mod findings_run;
mod fuzz_corpus;
mod interrupt;
mod key_types;
mod logs;
mod notify;
mod own_pipeline;
mod progress;
mod publish_local;
mod regression;
mod regression_run;
mod replay;
mod report;
mod report_browser;
mod report_snapshots;
mod reuse;
mod run;
mod s3;
mod s3_faults;
mod s3_read;
mod security_review;
mod sign;
mod signoff;
mod signoff_run;
mod sk_fixtures;
mod snapshots;
mod team;
mod team_ci;
mod team_stores;
mod trust;
mod verify;
mod virus_scan;
mod vsa;
mod webdav;
mod webdav_faults;
mod what_if;

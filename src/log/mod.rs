//! The release log: one canonical JSON record per line, hash-chained, appended with fsync
//! before relgate acts on what it records, and sealed by a signed checkpoint.
//! The format is specified in docs/log-format.md.

pub mod attest;
pub mod chain;
pub mod checkpoint;
pub mod clock;
pub mod depends;
pub mod pin;
pub mod reader;
pub mod records;
pub mod writer;

pub use chain::{Head, LOG_DOMAIN};
pub use reader::{Entry, LogProblem, read_log};
pub use records::*;
pub use writer::LogWriter;

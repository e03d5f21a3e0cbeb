//! The `regression` gate: run a command (under `sh -c` or as argv), capture its output, read
//! its JUnit reports, and judge exit status, timeout, failures and `min_tests`.
//!
//! Collect runs the command under a supervisor that is a child subreaper (see [`supervise`]):
//! when the command ends, times out or is interrupted, every process it started — in its
//! process group or escaped from it with `setsid` — is killed, and only then are its JUnit
//! reports read and its verdict given.
//! Output is kept bounded (see [`capture`]) but hashed in full; JUnit reports written during
//! the run are stored whole (up to [`junit::MAX_REPORT_BYTES`]) for the judge to parse.

mod capture;
pub mod failure;
pub mod from_share;
mod judge;
pub mod junit;
mod process;
mod redact;

pub use redact::declare as declare_secret_vars;
pub mod report;
mod supervise;
pub mod tally;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{CollectContext, CollectError};
use crate::model::{Command, GateSpec, RegressionSpec};
use crate::record::Record;

pub use capture::{HEAD_BYTES, StreamCapture, TAIL_BYTES};
pub use judge::judge;
pub use junit::{BadPattern, JunitFile, JunitState};
pub use process::ProcessRecord;
pub use tally::{FailedTest, Tally};

/// The test counts and failures of the stored reports, read as the judge reads them (for
/// `relgate logs`), with the reasons a report could not be read.
pub fn read_tests(
    ev: &RegressionEvidence,
    blobs: &dyn crate::record::Blobs,
) -> (Tally, Vec<super::Reason>) {
    judge::tally(&ev.junit, blobs)
}

/// Everything the regression judge needs, as recorded in the release log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RegressionEvidence {
    /// The command as run (nothing is substituted into it).
    pub command: Command,
    /// The working folder it ran in.
    pub dir: PathBuf,
    pub process: ProcessRecord,
    pub stdout: StreamCapture,
    pub stderr: StreamCapture,
    /// Every file the `junit` globs matched after the command, fresh or not, sorted by path.
    /// Empty when the command did not run to its end.
    pub junit: Vec<JunitFile>,
    pub junit_bad_patterns: Vec<BadPattern>,
    /// Test counts over the fresh reports as seen at collect time, for people reading the
    /// record (flaky tests are listed here). The judge does not trust it: it parses the
    /// stored reports again.
    pub tests: Option<Tally>,
    /// One-line remarks for the run's display (flaky tests, killed strays, truncated output,
    /// ignored reports). Informational: the judge does not read them.
    pub notes: Vec<String>,
}

pub async fn collect(
    gate: &GateSpec,
    spec: &RegressionSpec,
    cx: &CollectContext,
) -> Result<RegressionEvidence, CollectError> {
    let mut env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Set last so the pipeline's `env` cannot pass off another release's identity.
    env.push(("RELGATE_PROJECT".into(), cx.pipeline.project.clone()));
    env.push(("RELGATE_VERSION".into(), cx.version.clone()));
    env.push((
        "RELGATE_RECORD".into(),
        cx.record.dir.to_string_lossy().into_owned(),
    ));

    let window_start = clock_reference(&cx.record, false);
    let out = process::run(process::Launch {
        command: &spec.run,
        dir: &spec.dir,
        env,
        timeout: Duration::from_secs(gate.timeout_secs),
        cancel: cx.cancel.clone(),
    })
    .await;
    if out.process.interrupted {
        // The group is dead by now; an interrupted gate has no verdict, the engine aborts it.
        return Err(CollectError::Interrupted);
    }

    let secrets = redact::Secrets::from_env();
    let stdout = store_stream(&cx.record, out.stdout, &secrets)?;
    let stderr = store_stream(&cx.record, out.stderr, &secrets)?;
    let ran_to_end =
        out.process.spawn_error.is_none() && !out.process.timed_out && !out.process.interrupted;
    let (junit, junit_bad_patterns) = if ran_to_end && !spec.junit.is_empty() {
        // Taken once the command and every process it started are gone: nothing of this run
        // can modify a report after it.
        let window = junit::Window {
            start: window_start,
            end: clock_reference(&cx.record, true),
        };
        junit::gather(&cx.pipeline.root, &spec.junit, window, &cx.record)?
    } else {
        (Vec::new(), Vec::new())
    };
    let tests = (!junit.is_empty()).then(|| judge::tally(&junit, &cx.record).0);
    let notes = notes(&out.process, &stdout, &stderr, &junit, tests.as_ref());
    Ok(RegressionEvidence {
        command: spec.run.clone(),
        dir: spec.dir.clone(),
        process: out.process,
        stdout,
        stderr,
        junit,
        junit_bad_patterns,
        tests,
        notes,
    })
}

fn notes(
    process: &ProcessRecord,
    stdout: &StreamCapture,
    stderr: &StreamCapture,
    junit: &[JunitFile],
    tests: Option<&Tally>,
) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(t) = tests
        && !t.flaky.is_empty()
    {
        notes.push(format!("passed on retry (flaky): {}", t.flaky.join(", ")));
    }
    if process.strays_killed {
        notes.push("processes left running by the command were killed".into());
    }
    for (name, s) in [("stdout", stdout), ("stderr", stderr)] {
        if s.omitted > 0 {
            notes.push(format!(
                "{name}: {} bytes, kept the first and last parts ({} omitted)",
                s.len, s.omitted
            ));
        }
        if !s.complete {
            notes.push(format!(
                "{name}: stopped reading; a process outside the command's group held it open"
            ));
        }
        if s.redacted > 0 {
            notes.push(format!(
                "{name}: {} secret value(s) cut from the recorded output",
                s.redacted
            ));
        }
    }
    let mut first_of: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
    for f in junit {
        match &f.state {
            JunitState::Stale => notes.push(format!("{}: older than the run, ignored", f.path)),
            JunitState::Fresh { sha256, .. } => {
                if let Some(first) = first_of.get(sha256.as_str()) {
                    notes.push(format!(
                        "{}: the same bytes as {first}, counted once",
                        f.path
                    ));
                } else {
                    first_of.insert(sha256, &f.path);
                }
            }
            _ => {}
        }
    }
    if let Some(t) = tests
        && t.repeated > 0
    {
        notes.push(format!(
            "{} repeated test case entr{} (same suite, classname and name) counted once",
            t.repeated,
            if t.repeated == 1 { "y" } else { "ies" }
        ));
    }
    notes
}

/// A bound of the command window, on the clock file times are taken from.
///
/// File times come from the kernel's coarse clock, which can lag `SystemTime::now()` by a few
/// milliseconds: a report written right after the start could look older than a start read
/// from `now()`. So each bound is also the modification time of a file we write at that moment,
/// taken from that same clock (in the record folder, normally on the project's file system):
/// the earlier of the two for the start, the later for the end.
fn clock_reference(record: &Record, end: bool) -> SystemTime {
    let now = SystemTime::now();
    let _ = std::fs::create_dir_all(&record.dir);
    let file_time = tempfile::NamedTempFile::new_in(&record.dir)
        .ok()
        .and_then(|f| f.as_file().metadata().ok())
        .and_then(|m| m.modified().ok());
    match file_time {
        Some(t) if end => t.max(now),
        Some(t) => t.min(now),
        None => now,
    }
}

/// Store the kept bytes of a stream, with secret values cut out (see [`redact`]).
fn store_stream(
    record: &Record,
    (f, complete): (capture::Finished, bool),
    secrets: &redact::Secrets,
) -> Result<StreamCapture, CollectError> {
    let mut redacted = 0;
    let (head, tail) = if secrets.is_empty() {
        (f.head, f.tail)
    } else if f.omitted == 0 && f.tail.is_some() {
        // Head and tail are contiguous: redact them as one, so a secret across the seam goes too.
        let split = f.head.len();
        let mut whole = f.head;
        whole.extend_from_slice(f.tail.as_deref().unwrap_or_default());
        let (cut, n) = secrets.redact(&whole);
        redacted += n;
        let at = split.min(cut.len());
        (
            cut[..at].to_vec(),
            Some(cut[at..].to_vec()).filter(|t| !t.is_empty()),
        )
    } else {
        let (h, n) = secrets.redact(&f.head);
        redacted += n;
        let t = f.tail.map(|t| {
            let (t, n) = secrets.redact(&t);
            redacted += n;
            t
        });
        (h, t)
    };
    Ok(StreamCapture {
        sha256: f.sha256,
        len: f.len,
        head: record.put(&head)?,
        tail: tail.map(|t| record.put(&t)).transpose()?,
        omitted: f.omitted,
        complete,
        redacted,
    })
}

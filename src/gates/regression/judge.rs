//! The regression verdict: pure over the spec, the evidence and the stored JUnit reports.

use std::collections::BTreeSet;

use super::RegressionEvidence;
use super::junit::{self, JunitFile, JunitState};
use super::report;
use super::tally::{Counter, Tally};
use crate::gates::Code;
use crate::gates::{JudgeContext, Reason, Verdict};
use crate::model::RegressionSpec;
use crate::record::Blobs;

/// How many failing tests a `tests-failed` message names.
const NAMED_FAILURES: usize = 5;

pub fn judge(spec: &RegressionSpec, ev: &RegressionEvidence, cx: &JudgeContext<'_>) -> Verdict {
    let mut reasons = Vec::new();
    let p = &ev.process;
    if let Some(error) = &p.spawn_error {
        reasons.push(Reason::new(Code::SpawnFailed, one_line(error)));
    } else if p.interrupted {
        reasons.push(Reason::new(
            Code::Interrupted,
            "the run was interrupted; the command's process group was killed",
        ));
    } else if p.timed_out {
        reasons.push(Reason::new(
            Code::Timeout,
            format!(
                "the command did not finish within {}; its process group was killed",
                human_secs(p.timeout_secs)
            ),
        ));
    } else if let Some(signal) = p.signal {
        reasons.push(Reason::new(
            Code::CommandSignalled,
            format!("the command was killed by signal {signal}"),
        ));
    } else {
        match p.exit_code {
            Some(0) => {}
            Some(code) => reasons.push(Reason::new(
                Code::CommandFailed,
                format!("the command exited with status {code}"),
            )),
            None => reasons.push(Reason::new(
                Code::CommandFailed,
                "the command left no exit status",
            )),
        }
    }
    // A process that left the command's group and outlived it is what a build that wants to
    // act after its verdict would leave; it was killed before the reports were read, but the
    // build is not trusted to be green.
    if p.escaped_killed > 0 {
        let n = p.escaped_killed;
        reasons.push(Reason::new(
            Code::ProcessEscaped,
            format!(
                "{n} process{} had left the command's process group (setsid or setpgid) and still ran when it ended; killed before the reports were read",
                if n == 1 { "" } else { "es" }
            ),
        ));
    }
    if let Some(why) = &p.unaccounted {
        reasons.push(Reason::new(Code::ProcessesUnaccounted, one_line(why)));
    }
    // Reports from a command that did not run to its end say nothing about the release.
    let ran_to_end = p.spawn_error.is_none() && !p.interrupted && !p.timed_out;
    if ran_to_end {
        reasons.extend(judge_tests(spec, ev, cx.blobs));
    }
    Verdict::from_reasons(reasons)
}

fn judge_tests(spec: &RegressionSpec, ev: &RegressionEvidence, blobs: &dyn Blobs) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if spec.junit.is_empty() {
        if let Some(min) = spec.min_tests {
            reasons.push(Reason::new(
                Code::MinTestsWithoutJunit,
                format!("min_tests is {min} but no junit reports are configured to count tests"),
            ));
        }
        return reasons;
    }
    for bad in &ev.junit_bad_patterns {
        reasons.push(Reason::new(
            Code::JunitPatternInvalid,
            format!("junit glob {:?}: {}", bad.pattern, one_line(&bad.error)),
        ));
    }
    let fresh = ev
        .junit
        .iter()
        .filter(|f| matches!(f.state, JunitState::Fresh { .. }))
        .count();
    if fresh == 0 {
        let stale = ev
            .junit
            .iter()
            .filter(|f| matches!(f.state, JunitState::Stale))
            .count();
        let mut msg = format!(
            "no JUnit report written by this run matched {}",
            spec.junit.join(", ")
        );
        if stale > 0 {
            msg.push_str(&format!(
                " ({stale} older report{} ignored)",
                plural(stale as u64)
            ));
        }
        reasons.push(Reason::new(Code::JunitMissing, msg));
    }
    for f in &ev.junit {
        match &f.state {
            JunitState::TooLarge { size } => reasons.push(Reason::new(
                Code::JunitTooLarge,
                format!(
                    "{}: {size} bytes, over the {} byte limit",
                    f.path,
                    junit::MAX_REPORT_BYTES
                ),
            )),
            JunitState::Unreadable { error } => reasons.push(Reason::new(
                Code::JunitUnreadable,
                format!("{}: {}", f.path, one_line(error)),
            )),
            JunitState::Symlink => reasons.push(Reason::new(
                Code::JunitUnreadable,
                format!("{}: a symbolic link; reports must be regular files", f.path),
            )),
            JunitState::Future {
                mtime_unix_ms,
                window_end_unix_ms,
            } => reasons.push(Reason::new(
                Code::JunitFutureMtime,
                format!(
                    "{}: modified {}, after the command ended ({}): not written by this run",
                    f.path,
                    utc_ms(*mtime_unix_ms),
                    utc_ms(*window_end_unix_ms)
                ),
            )),
            JunitState::OutsideProject { resolved } => reasons.push(Reason::new(
                Code::JunitOutsideProject,
                one_line(&format!(
                    "{}: lies at {resolved}, outside the pipeline folder (through a linked folder); not read",
                    f.path
                )),
            )),
            JunitState::Fresh { .. } | JunitState::Stale => {}
        }
    }
    // `min_tests` says nothing more when no report was written (`junit-missing` says it).
    let min_tests = spec.min_tests.filter(|_| fresh > 0);
    reasons.extend(judge_reports(&ev.junit, min_tests, blobs));
    reasons
}

/// The verdict's reasons from the tests of the fresh reports in `files`: reports that do not
/// read, failed tests, and fewer than `min_tests` run. The regression gate that takes its
/// reports from CI judges them with this too.
pub(crate) fn judge_reports(
    files: &[JunitFile],
    min_tests: Option<u64>,
    blobs: &dyn Blobs,
) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let (t, problems) = tally(files, blobs);
    reasons.extend(problems);
    if !t.failed.is_empty() {
        let n = t.failed.len();
        let mut names = t.failed[..n.min(NAMED_FAILURES)].join(", ");
        if n > NAMED_FAILURES {
            names.push_str(&format!(" and {} more", n - NAMED_FAILURES));
        }
        // The first failure's place and assertion, so the refusal line says what failed.
        let first = t.failures.first().map(first_failure).unwrap_or_default();
        let msg = if n == 1 {
            format!("1 test failed: {names}{first}")
        } else if first.is_empty() {
            format!("{n} tests failed: {names}")
        } else {
            let name = t.failures.first().map(|f| f.name.as_str()).unwrap_or("");
            format!("{n} tests failed: {names}; the first, {name}{first}")
        };
        reasons.push(Reason::new(Code::TestsFailed, one_line(&msg)));
    }
    for suite in &t.inconsistent {
        reasons.push(Reason::new(
            Code::TestsFailed,
            one_line(&format!("suite {suite}")),
        ));
    }
    if let Some(min) = min_tests
        && t.executed < min
    {
        reasons.push(Reason::new(
            Code::TooFewTests,
            format!(
                "ran {} test{}, need at least {min}",
                t.executed,
                plural(t.executed)
            ),
        ));
    }
    reasons
}

/// Parse every fresh report from the evidence store and count its tests. A report whose bytes
/// were already counted (one file through two globs, a hard link, a copy) is skipped, so that
/// no test counts twice. Reports that cannot be read back or parsed come back as reasons.
pub(super) fn tally(files: &[JunitFile], blobs: &dyn Blobs) -> (Tally, Vec<Reason>) {
    let mut counter = Counter::default();
    let mut reasons = Vec::new();
    let mut seen = BTreeSet::new();
    for f in files {
        let JunitState::Fresh { sha256, .. } = &f.state else {
            continue;
        };
        if !seen.insert(sha256.as_str()) {
            continue;
        }
        let bytes = match blobs.get(sha256) {
            Ok(b) => b,
            Err(e) => {
                reasons.push(Reason::new(
                    Code::JunitUnreadable,
                    one_line(&format!("{}: stored report: {e}", f.path)),
                ));
                continue;
            }
        };
        match report::read(&bytes) {
            Ok(r) => counter.add(&r),
            Err(e) => reasons.push(Reason::new(e.code(), one_line(&format!("{}: {e}", f.path)))),
        }
    }
    (counter.finish(), reasons)
}

/// ` at PLACE: MESSAGE`, or the part of it the report gives.
fn first_failure(f: &super::FailedTest) -> String {
    match (&f.location, &f.message) {
        (Some(at), Some(m)) => format!(" at {at}: {m}"),
        (Some(at), None) => format!(" at {at}"),
        (None, Some(m)) => format!(": {m}"),
        (None, None) => String::new(),
    }
}

/// Unix milliseconds as RFC 3339 UTC, to the second.
fn utc_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms after 1970"))
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Messages are one line: test names and tool errors may hold newlines.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn human_secs(secs: u64) -> String {
    match secs {
        s if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
#[path = "judge_tests.rs"]
mod tests;

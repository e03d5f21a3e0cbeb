//! `--junit FILE`: one testcase per gate, so CI servers show gates as tests.
//!
//! A testcase fails exactly when the run is refused because of it: red, blocked behind a red
//! gate, or interrupted. A gate awaiting a sign-off (pending, or waiting on one) is skipped, so
//! the report has failures exactly when `run` exits 1. Each testcase has its duration.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::engine::{GateState, RunSummary};

pub fn render(
    summary: &RunSummary,
    project: &str,
    version: &str,
) -> Result<String, quick_junit::SerializeError> {
    let mut suite = TestSuite::new(format!("relgate {project} {version}"));
    let mut total = Duration::ZERO;
    for g in &summary.gates {
        let status = match &g.state {
            GateState::Green { .. } => TestCaseStatus::success(),
            GateState::Red { reasons } => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(
                    reasons
                        .iter()
                        .map(|r| format!("{}: {}", r.code, r.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                );
                s.set_type(reasons.first().map(|r| r.code.clone()).unwrap_or_default());
                s
            }
            GateState::Pending { reasons } => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!(
                    "awaiting sign-off: {}",
                    reasons
                        .iter()
                        .map(|r| r.message.clone())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
                s
            }
            GateState::Blocked { waiting_on } => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!("blocked: waiting on {}", waiting_on.join(", ")));
                s.set_type("needs-not-green");
                s
            }
            // Not a failure: it starts once the sign-off it waits for is given.
            GateState::Waiting { waiting_on } => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!(
                    "awaiting sign-off: waiting on {}",
                    waiting_on.join(", ")
                ));
                s
            }
            GateState::Skipped { reason } => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(reason.clone());
                s
            }
            GateState::Aborted => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message("interrupted");
                s
            }
        };
        let mut case = TestCase::new(g.id.clone(), status);
        case.set_classname(format!("relgate.{}", g.kind));
        let time = Duration::from_millis(g.elapsed_ms);
        total += time;
        case.set_time(time);
        if !g.notes.is_empty() {
            case.set_system_out(g.notes.join("\n"));
        }
        suite.add_test_case(case);
    }
    suite.set_time(total);
    let mut report = Report::new("relgate");
    report.set_time(total);
    report.add_test_suite(suite);
    report.to_string()
}

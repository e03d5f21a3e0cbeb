//! `--junit FILE`: one testcase per gate, so CI servers show gates as tests.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::engine::{GateState, RunSummary};

pub fn render(summary: &RunSummary, project: &str, version: &str) -> Result<String, String> {
    let mut suite = TestSuite::new(format!("relgate {project} {version}"));
    for (id, kind, state) in &summary.gates {
        let status = match state {
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
        let mut case = TestCase::new(id.clone(), status);
        case.set_classname(format!("relgate.{kind}"));
        suite.add_test_case(case);
    }
    let mut report = Report::new("relgate");
    report.add_test_suite(suite);
    report.to_string().map_err(|e| e.to_string())
}

//! Counting test cases over the reports of one run (judge side, pure).
//!
//! `min_tests` must not be met by counting one test twice. Reports are counted once by content
//! (the judge skips a report whose digest it has already read: the same file through two globs,
//! a hard link, a copy), and test cases once by (suite path, classname, name) across all
//! reports. When one test case appears more than once, the worst outcome counts: failed over
//! flaky over passed over skipped.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::failure::FailureDetail;
use super::report::{CaseOutcome, Report, Suite};

/// Test counts over one or more reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tally {
    /// Distinct test cases that ran (not skipped).
    pub executed: u64,
    pub passed: u64,
    pub skipped: u64,
    /// `classname::name` of every failed or errored test case.
    pub failed: Vec<String>,
    /// Each failed test case with its message and place, when its report says them (in the
    /// order of `failed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<FailedTest>,
    /// Passed after failing at least once (`flakyFailure`/`flakyError`); counted as passed.
    pub flaky: Vec<String>,
    /// Suites whose `failures`/`errors` attributes claim more than their test cases show.
    pub inconsistent: Vec<String>,
    /// Test case entries that repeated one already counted (same suite path, classname and
    /// name); each distinct test case counts once.
    #[serde(default)]
    pub repeated: u64,
}

/// A failed test case and what its report says about the failure.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailedTest {
    /// `classname::name`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `path:line[:column]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

type Key = (Vec<String>, String, String);

/// Accumulates reports into a [`Tally`].
#[derive(Default)]
pub struct Counter {
    index: HashMap<Key, usize>,
    /// Display name, outcome and failure of each distinct test case, in order of first
    /// appearance.
    cases: Vec<(String, CaseOutcome, Option<FailureDetail>)>,
    inconsistent: Vec<String>,
    repeated: u64,
}

impl Counter {
    pub fn add(&mut self, report: &Report) {
        let mut path = Vec::new();
        for suite in &report.suites {
            self.add_suite(suite, &mut path);
        }
    }

    /// Adds `suite` below `path`; returns how many failed test cases it lists (nested included,
    /// repeats included: what the suite itself shows).
    fn add_suite(&mut self, suite: &Suite, path: &mut Vec<String>) -> u64 {
        path.push(suite.name.clone());
        let mut shown = 0;
        for case in &suite.cases {
            if case.outcome == CaseOutcome::Failed {
                shown += 1;
            }
            let classname = case.classname.clone().unwrap_or_default();
            let key = (path.clone(), classname, case.name.clone());
            match self.index.get(&key) {
                Some(&i) => {
                    self.repeated += 1;
                    let kept = &mut self.cases[i];
                    if case.outcome > kept.1 || kept.2.is_none() && case.failure.is_some() {
                        kept.2.clone_from(&case.failure);
                    }
                    kept.1 = kept.1.max(case.outcome);
                }
                None => {
                    let shown_name = match &case.classname {
                        Some(c) => format!("{c}::{}", case.name),
                        None => case.name.clone(),
                    };
                    self.index.insert(key, self.cases.len());
                    self.cases
                        .push((shown_name, case.outcome, case.failure.clone()));
                }
            }
        }
        for nested in &suite.suites {
            shown += self.add_suite(nested, path);
        }
        path.pop();
        // Trust the stricter of the two: a suite that says it failed has failed.
        if suite.declared_failed > shown {
            let name = if suite.name.is_empty() {
                "<unnamed>"
            } else {
                &suite.name
            };
            self.inconsistent.push(format!(
                "{name} (declares {} failed, lists {shown})",
                suite.declared_failed
            ));
        }
        shown
    }

    pub fn finish(self) -> Tally {
        let mut t = Tally {
            inconsistent: self.inconsistent,
            repeated: self.repeated,
            ..Tally::default()
        };
        for (name, outcome, failure) in self.cases {
            match outcome {
                CaseOutcome::Skipped => t.skipped += 1,
                CaseOutcome::Passed => t.passed += 1,
                CaseOutcome::Flaky => {
                    t.passed += 1;
                    t.flaky.push(name);
                }
                CaseOutcome::Failed => {
                    let d = failure.unwrap_or_default();
                    t.failures.push(FailedTest {
                        name: name.clone(),
                        message: d.message,
                        location: d.location,
                    });
                    t.failed.push(name);
                }
            }
        }
        t.executed = t.passed + t.failed.len() as u64;
        t
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::gates::regression::report;

    fn tally_of(xmls: &[&[u8]]) -> Tally {
        let mut c = Counter::default();
        for x in xmls {
            c.add(&report::read(x).unwrap());
        }
        c.finish()
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/junit")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn nextest_failing_report() {
        let t = tally_of(&[&fixture("nextest-failing.xml")]);
        assert_eq!((t.executed, t.passed), (2, 1));
        assert_eq!(t.failed, vec!["tinycalc::tests::adds_wrongly"]);
        assert!(t.flaky.is_empty() && t.inconsistent.is_empty());
    }

    #[test]
    fn nextest_passing_report() {
        let t = tally_of(&[&fixture("nextest-passing.xml")]);
        assert_eq!((t.executed, t.passed, t.skipped), (2, 2, 0));
        assert!(t.failed.is_empty());
    }

    #[test]
    fn nextest_flaky_report_counts_the_retried_test_as_passed() {
        let t = tally_of(&[&fixture("nextest-flaky.xml")]);
        assert!(t.failed.is_empty(), "{t:?}");
        assert_eq!(t.flaky, vec!["tinycalc::flaky::passes_on_second_try"]);
        assert_eq!(t.executed, 3);
    }

    #[test]
    fn pytest_report_with_a_skip() {
        let t = tally_of(&[&fixture("pytest-failing.xml")]);
        assert_eq!((t.executed, t.passed, t.skipped), (2, 1, 1));
        assert_eq!(t.failed, vec!["test_calc::test_add_fails"]);
    }

    /// The message and place of each failure in the real reports of the fixtures.
    #[test]
    fn failures_carry_their_message_and_place() {
        let detail = |name: &str| -> Vec<(String, Option<String>, Option<String>)> {
            tally_of(&[&fixture(name)])
                .failures
                .into_iter()
                .map(|f| (f.name, f.message, f.location))
                .collect()
        };
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            detail("pytest-failing.xml"),
            [(
                "test_calc::test_add_fails".into(),
                some("assert (1 + 1) == 3"),
                some("test_calc.py:7")
            )]
        );
        assert_eq!(
            detail("nextest-failing.xml"),
            [(
                "tinycalc::tests::adds_wrongly".into(),
                some("assertion `left == right` failed: two and two"),
                some("src/lib.rs:9:25")
            )]
        );
        assert_eq!(
            detail("surefire-TEST-com.acme.CalcTest.xml"),
            [
                (
                    "com.acme.CalcTest::dividesByZero".into(),
                    some("expected: <0> but was: <1>"),
                    some("CalcTest.java:31")
                ),
                (
                    "com.acme.CalcTest::parsesHex".into(),
                    some("For input string: \"0xZZ\""),
                    some("Calc.java:12")
                ),
            ]
        );
    }

    #[test]
    fn surefire_bare_testsuite_root() {
        let t = tally_of(&[&fixture("surefire-TEST-com.acme.CalcTest.xml")]);
        assert_eq!((t.executed, t.passed, t.skipped), (4, 2, 1));
        assert_eq!(
            t.failed,
            vec![
                "com.acme.CalcTest::dividesByZero",
                "com.acme.CalcTest::parsesHex"
            ]
        );
    }

    #[test]
    fn rerun_failures_stay_failed_and_flaky_passes_pass() {
        let t = tally_of(&[&fixture("reruns.xml")]);
        assert_eq!(t.failed, vec!["com.acme.NetTest::timesOutAlways"]);
        assert_eq!(
            t.flaky,
            vec![
                "com.acme.NetTest::connectsEventually",
                "com.acme.NetTest::recoversFromError"
            ]
        );
        assert_eq!((t.executed, t.passed), (4, 3));
    }

    #[test]
    fn suite_declaring_failures_it_does_not_list_is_inconsistent() {
        let t = tally_of(&[
            br#"<testsuite name="s" tests="1" failures="2"><testcase name="a"/></testsuite>"#,
        ]);
        assert_eq!(t.inconsistent, vec!["s (declares 2 failed, lists 0)"]);
    }

    #[test]
    fn a_repeated_test_case_counts_once_and_its_worst_outcome_wins() {
        let t = tally_of(&[
            br#"<testsuite name="s"><testcase classname="c" name="a"/><testcase classname="c" name="a"><failure/></testcase><testcase classname="c" name="a"/><testcase classname="c" name="b"/></testsuite>"#,
        ]);
        assert_eq!((t.executed, t.passed, t.repeated), (2, 1, 2));
        assert_eq!(t.failed, vec!["c::a"]);
    }

    #[test]
    fn the_same_test_case_in_two_reports_counts_once() {
        let a: &[u8] = br#"<testsuite name="s"><testcase classname="c" name="a"/></testsuite>"#;
        let b: &[u8] = br#"<testsuites>
            <testsuite name="s"><testcase classname="c" name="a"/></testsuite>
        </testsuites>"#;
        let t = tally_of(&[a, b]);
        assert_eq!((t.executed, t.repeated), (1, 1));
        // Another suite, classname or name is another test case.
        let c: &[u8] = br#"<testsuite name="s2"><testcase classname="c" name="a"/><testcase name="a"/><testcase classname="c" name="b"/></testsuite>"#;
        assert_eq!(tally_of(&[a, c]).executed, 4);
    }

    #[test]
    fn a_skipped_repeat_does_not_hide_a_pass() {
        let t = tally_of(&[
            br#"<testsuite><testcase name="a"><skipped/></testcase><testcase name="a"/></testsuite>"#,
        ]);
        assert_eq!((t.executed, t.passed, t.skipped), (1, 1, 0));
    }
}

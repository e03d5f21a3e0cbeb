//! JUnit reports: finding the fresh ones after the command (collect side), and counting their
//! tests with `junit-parser` (judge side, pure).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Component, Path};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::record::{Record, RecordError};

/// Reports larger than this are not read (a runaway writer must not fill the record).
pub const MAX_REPORT_BYTES: u64 = 64 << 20;

/// One file matched by a `junit` glob.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct JunitFile {
    /// Path below the pipeline root, `/`-separated.
    pub path: String,
    /// The first glob (as written) that matched it.
    pub pattern: String,
    pub state: JunitState,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum JunitState {
    /// Written during the run; its bytes are in the evidence store under `sha256`.
    Fresh { sha256: String, size: u64 },
    /// Last modified before the command started: left over from an earlier build; ignored.
    Stale,
    /// Over [`MAX_REPORT_BYTES`]; not read.
    TooLarge { size: u64 },
    /// A symbolic link; not followed.
    Symlink,
    /// Could not be read.
    Unreadable { error: String },
}

/// A `junit` glob that could not be used.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BadPattern {
    pub pattern: String,
    pub error: String,
}

fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// The folder part of a glob that holds no metacharacter: the only place worth walking.
fn fixed_prefix(pattern: &str) -> String {
    let parts: Vec<&str> = pattern.split('/').collect();
    let n = parts
        .iter()
        .position(|p| has_glob_meta(p))
        .unwrap_or(parts.len().saturating_sub(1));
    parts[..n].join("/")
}

/// Find the reports matched by `patterns` below `root`. A file last modified before
/// `fresh_after` is recorded as stale; fresh ones are stored in `record`.
pub fn gather(
    root: &Path,
    patterns: &[String],
    fresh_after: SystemTime,
    record: &Record,
) -> Result<(Vec<JunitFile>, Vec<BadPattern>), RecordError> {
    let mut found: BTreeMap<String, JunitFile> = BTreeMap::new();
    let mut bad = Vec::new();
    for pattern in patterns {
        let as_path = Path::new(pattern);
        if as_path.is_absolute() || as_path.components().any(|c| c == Component::ParentDir) {
            bad.push(BadPattern {
                pattern: pattern.clone(),
                error: "leaves the pipeline folder".into(),
            });
            continue;
        }
        let glob = match globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
        {
            Ok(g) => g.compile_matcher(),
            Err(e) => {
                bad.push(BadPattern {
                    pattern: pattern.clone(),
                    error: e.kind().to_string(),
                });
                continue;
            }
        };
        let prefix = fixed_prefix(pattern);
        let base = root.join(&prefix);
        for entry in walkdir::WalkDir::new(&base)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
        {
            let Ok(rel) = entry.path().strip_prefix(root) else {
                continue;
            };
            let Some(rel) = rel.to_str() else { continue };
            if !glob.is_match(rel) || found.contains_key(rel) {
                continue;
            }
            let ft = entry.file_type();
            let state = if ft.is_symlink() {
                JunitState::Symlink
            } else if ft.is_file() {
                read_one(entry.path(), fresh_after, record)?
            } else {
                continue;
            };
            found.insert(
                rel.to_string(),
                JunitFile {
                    path: rel.to_string(),
                    pattern: pattern.clone(),
                    state,
                },
            );
        }
    }
    Ok((found.into_values().collect(), bad))
}

fn read_one(
    path: &Path,
    fresh_after: SystemTime,
    record: &Record,
) -> Result<JunitState, RecordError> {
    let unreadable = |e: std::io::Error| JunitState::Unreadable {
        error: e.to_string(),
    };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Ok(unreadable(e)),
    };
    let md = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Ok(unreadable(e)),
    };
    match md.modified() {
        Ok(m) if m < fresh_after => return Ok(JunitState::Stale),
        Ok(_) => {}
        Err(e) => return Ok(unreadable(e)),
    }
    if md.len() > MAX_REPORT_BYTES {
        return Ok(JunitState::TooLarge { size: md.len() });
    }
    let mut bytes = Vec::new();
    // take(): the file may still be growing if something outside the group writes it.
    if let Err(e) = file.take(MAX_REPORT_BYTES + 1).read_to_end(&mut bytes) {
        return Ok(unreadable(e));
    }
    let size = bytes.len() as u64;
    if size > MAX_REPORT_BYTES {
        return Ok(JunitState::TooLarge { size });
    }
    let sha256 = record.put(&bytes)?;
    Ok(JunitState::Fresh { sha256, size })
}

/// Test counts over one or more reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tally {
    /// Test cases that ran (not skipped).
    pub executed: u64,
    pub passed: u64,
    pub skipped: u64,
    /// `classname::name` of every failed or errored test case.
    pub failed: Vec<String>,
    /// Passed after failing at least once (`flakyFailure`/`flakyError`); counted as passed.
    pub flaky: Vec<String>,
    /// Suites whose `failures`/`errors` attributes claim more than their test cases show.
    pub inconsistent: Vec<String>,
}

/// Parse one report. Accepts a `<testsuites>` root, a bare `<testsuite>` and `<testrun>`.
pub fn parse(bytes: &[u8]) -> Result<junit_parser::TestSuites, String> {
    junit_parser::from_reader(bytes).map_err(|e| e.to_string())
}

impl Tally {
    /// Add the test cases of `suites` to the tally.
    pub fn add(&mut self, suites: &junit_parser::TestSuites) {
        for suite in &suites.suites {
            let failed_before = self.failed.len();
            self.add_suite(suite);
            let shown = (self.failed.len() - failed_before) as u64;
            let declared = suite.failures.saturating_add(suite.errors);
            // Trust the stricter of the two: a suite that says it failed has failed.
            if declared > shown {
                self.inconsistent.push(format!(
                    "{} (declares {declared} failed, lists {shown})",
                    if suite.name.is_empty() {
                        "<unnamed>"
                    } else {
                        &suite.name
                    }
                ));
            }
        }
    }

    fn add_suite(&mut self, suite: &junit_parser::TestSuite) {
        for case in &suite.cases {
            use junit_parser::TestStatus;
            match &case.status {
                TestStatus::Success => {
                    self.executed += 1;
                    self.passed += 1;
                    if !case.reruns.is_empty() {
                        self.flaky.push(case.name.clone());
                    }
                }
                TestStatus::Failure(_) | TestStatus::Error(_) => {
                    self.executed += 1;
                    self.failed.push(case.name.clone());
                }
                TestStatus::Skipped(_) => self.skipped += 1,
            }
        }
        for nested in &suite.suites {
            self.add_suite(nested);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally_of(fixture: &str) -> Tally {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/junit")
            .join(fixture);
        let bytes = fs::read(&path).unwrap();
        let mut t = Tally::default();
        t.add(&parse(&bytes).unwrap());
        t
    }

    #[test]
    fn nextest_failing_report() {
        let t = tally_of("nextest-failing.xml");
        assert_eq!(t.executed, 2);
        assert_eq!(t.passed, 1);
        assert_eq!(t.failed, vec!["tinycalc::tests::adds_wrongly"]);
        assert!(t.flaky.is_empty());
        assert!(t.inconsistent.is_empty());
    }

    #[test]
    fn nextest_passing_report() {
        let t = tally_of("nextest-passing.xml");
        assert_eq!((t.executed, t.passed, t.skipped), (2, 2, 0));
        assert!(t.failed.is_empty());
    }

    #[test]
    fn nextest_flaky_report_counts_the_retried_test_as_passed() {
        let t = tally_of("nextest-flaky.xml");
        assert!(t.failed.is_empty(), "{t:?}");
        assert_eq!(t.flaky, vec!["tinycalc::flaky::passes_on_second_try"]);
        assert_eq!(t.executed, 3);
    }

    #[test]
    fn pytest_report_with_a_skip() {
        let t = tally_of("pytest-failing.xml");
        assert_eq!((t.executed, t.passed, t.skipped), (2, 1, 1));
        assert_eq!(t.failed, vec!["test_calc::test_add_fails"]);
    }

    #[test]
    fn surefire_bare_testsuite_root() {
        let t = tally_of("surefire-TEST-com.acme.CalcTest.xml");
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
        let t = tally_of("reruns.xml");
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
        let xml = br#"<testsuite name="s" tests="1" failures="2"><testcase name="a"/></testsuite>"#;
        let mut t = Tally::default();
        t.add(&parse(xml).unwrap());
        assert_eq!(t.inconsistent, vec!["s (declares 2 failed, lists 0)"]);
    }

    #[test]
    fn garbage_does_not_parse() {
        assert!(parse(b"not xml at all").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"<testsuite><testcase name=\"a\">").is_err());
    }

    #[test]
    fn fixed_prefix_stops_at_the_first_glob() {
        assert_eq!(fixed_prefix("target/junit/*.xml"), "target/junit");
        assert_eq!(fixed_prefix("**/TEST-*.xml"), "");
        assert_eq!(fixed_prefix("junit.xml"), "");
        assert_eq!(fixed_prefix("a/b/junit.xml"), "a/b");
    }
}

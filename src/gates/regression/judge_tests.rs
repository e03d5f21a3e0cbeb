//! Unit tests of the regression judge over in-memory evidence.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::*;
use crate::digest::sha256_hex;
use crate::gates::Outcome;
use crate::gates::regression::{ProcessRecord, StreamCapture};
use crate::model::{Command, Pipeline};
use crate::record::RecordError;

#[derive(Default)]
struct MemBlobs(HashMap<String, Vec<u8>>);

impl MemBlobs {
    fn put(&mut self, bytes: &[u8]) -> String {
        let d = sha256_hex(bytes);
        self.0.insert(d.clone(), bytes.to_vec());
        d
    }
}

impl Blobs for MemBlobs {
    fn get(&self, digest: &str) -> Result<Vec<u8>, RecordError> {
        self.0
            .get(digest)
            .cloned()
            .ok_or_else(|| RecordError::Read {
                dir: PathBuf::from("mem"),
                digest: digest.to_string(),
                source: std::io::ErrorKind::NotFound.into(),
            })
    }
}

fn pipeline() -> Pipeline {
    Pipeline {
        file: PathBuf::from("/p/pipeline.yaml"),
        root: PathBuf::from("/p"),
        project: "demo".into(),
        state_dir: PathBuf::from("/p/.relgate"),
        artefacts: vec![],
        signers: None,
        roles: BTreeMap::new(),
        changes: None,
        gates: vec![],
        publish: None,
        share: None,
    }
}

fn spec(junit: &[&str], min_tests: Option<u64>) -> RegressionSpec {
    RegressionSpec {
        run: Command::Shell("true".into()),
        dir: PathBuf::from("/p"),
        env: BTreeMap::new(),
        junit: junit.iter().map(|s| s.to_string()).collect(),
        min_tests,
        inputs: None,
    }
}

fn stream() -> StreamCapture {
    StreamCapture {
        sha256: sha256_hex(b""),
        len: 0,
        head: sha256_hex(b""),
        tail: None,
        omitted: 0,
        complete: true,
        redacted: 0,
    }
}

fn evidence(exit_code: Option<i32>, junit: Vec<JunitFile>) -> RegressionEvidence {
    RegressionEvidence {
        command: Command::Shell("true".into()),
        dir: PathBuf::from("/p"),
        process: ProcessRecord {
            exit_code,
            timeout_secs: 60,
            ..ProcessRecord::default()
        },
        stdout: stream(),
        stderr: stream(),
        junit,
        junit_bad_patterns: vec![],
        tests: None,
        notes: vec![],
    }
}

fn fixture(blobs: &mut MemBlobs, name: &str) -> JunitFile {
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/junit")
            .join(name),
    )
    .unwrap();
    fresh(blobs, name, &bytes)
}

fn fresh(blobs: &mut MemBlobs, path: &str, bytes: &[u8]) -> JunitFile {
    JunitFile {
        path: path.to_string(),
        pattern: "*.xml".into(),
        state: JunitState::Fresh {
            sha256: blobs.put(bytes),
            size: bytes.len() as u64,
        },
    }
}

fn run(spec: &RegressionSpec, ev: &RegressionEvidence, blobs: &MemBlobs) -> Verdict {
    let p = pipeline();
    let cx = JudgeContext {
        project: "demo",
        version: "1.0.0",
        subject: "sha256:00",
        operator: None,
        started_at: 0,
        dry_run: false,
        signers: None,
        pipeline: &p,
        policy: "sha256:00",
        subject_since: 0,
        blobs,
    };
    judge(spec, ev, &cx)
}

fn codes(v: &Verdict) -> Vec<&str> {
    v.reasons.iter().map(|r| r.code.as_str()).collect()
}

#[test]
fn exit_zero_without_junit_is_green() {
    let v = run(
        &spec(&[], None),
        &evidence(Some(0), vec![]),
        &MemBlobs::default(),
    );
    assert_eq!(v, Verdict::green());
}

#[test]
fn nonzero_exit_is_command_failed() {
    let v = run(
        &spec(&[], None),
        &evidence(Some(3), vec![]),
        &MemBlobs::default(),
    );
    assert_eq!(codes(&v), ["command-failed"]);
    assert_eq!(v.reasons[0].message, "the command exited with status 3");
}

#[test]
fn process_endings_have_their_own_codes() {
    let blobs = MemBlobs::default();
    let s = spec(&["*.xml"], None);
    let mut ev = evidence(None, vec![]);
    ev.process.signal = Some(9);
    assert_eq!(
        codes(&run(&s, &ev, &blobs)),
        ["command-signalled", "junit-missing"]
    );
    // A timeout or an interruption says nothing about the reports: only one reason.
    let mut ev = evidence(None, vec![]);
    ev.process.timed_out = true;
    ev.process.signal = Some(15);
    ev.process.timeout_secs = 1800;
    let v = run(&s, &ev, &blobs);
    assert_eq!(codes(&v), ["timeout"]);
    assert!(v.reasons[0].message.contains("30m"), "{v:?}");
    let mut ev = evidence(None, vec![]);
    ev.process.interrupted = true;
    assert_eq!(codes(&run(&s, &ev, &blobs)), ["interrupted"]);
    let mut ev = evidence(None, vec![]);
    ev.process.spawn_error = Some("cannot start \"nope\": No such file\nor directory".into());
    let v = run(&s, &ev, &blobs);
    assert_eq!(codes(&v), ["spawn-failed"]);
    assert!(!v.reasons[0].message.contains('\n'));
}

#[test]
fn escaped_and_unaccounted_processes_are_red() {
    let blobs = MemBlobs::default();
    let s = spec(&[], None);
    let mut ev = evidence(Some(0), vec![]);
    ev.process.strays_killed = true;
    assert!(
        run(&s, &ev, &blobs).is_green(),
        "a stray of the group is only a note"
    );
    ev.process.escaped_killed = 2;
    let v = run(&s, &ev, &blobs);
    assert_eq!(codes(&v), ["process-escaped"]);
    assert!(
        v.reasons[0].message.starts_with("2 processes had left"),
        "{v:?}"
    );
    let mut ev = evidence(Some(0), vec![]);
    ev.process.unaccounted = Some("1 process could not be killed".into());
    assert_eq!(codes(&run(&s, &ev, &blobs)), ["processes-unaccounted"]);
}

#[test]
fn passing_nextest_report_is_green() {
    let mut blobs = MemBlobs::default();
    let ev = evidence(Some(0), vec![fixture(&mut blobs, "nextest-passing.xml")]);
    let v = run(&spec(&["*.xml"], Some(2)), &ev, &blobs);
    assert_eq!(v, Verdict::green());
}

#[test]
fn failing_nextest_report_names_the_test() {
    let mut blobs = MemBlobs::default();
    // nextest exits non-zero too; judge the report even when the exit code already failed.
    let ev = evidence(Some(100), vec![fixture(&mut blobs, "nextest-failing.xml")]);
    let v = run(&spec(&["*.xml"], None), &ev, &blobs);
    assert_eq!(codes(&v), ["command-failed", "tests-failed"]);
    assert_eq!(
        v.reasons[1].message,
        "1 test failed: tinycalc::tests::adds_wrongly at src/lib.rs:9:25: assertion `left == right` failed: two and two"
    );
}

#[test]
fn exit_zero_with_failing_report_is_red() {
    let mut blobs = MemBlobs::default();
    let ev = evidence(Some(0), vec![fixture(&mut blobs, "pytest-failing.xml")]);
    let v = run(&spec(&["*.xml"], None), &ev, &blobs);
    assert_eq!(codes(&v), ["tests-failed"]);
    assert!(v.reasons[0].message.contains("test_calc::test_add_fails"));
}

#[test]
fn surefire_error_counts_as_failure() {
    let mut blobs = MemBlobs::default();
    let ev = evidence(
        Some(0),
        vec![fixture(&mut blobs, "surefire-TEST-com.acme.CalcTest.xml")],
    );
    let v = run(&spec(&["*.xml"], None), &ev, &blobs);
    assert_eq!(codes(&v), ["tests-failed"]);
    assert_eq!(
        v.reasons[0].message,
        "2 tests failed: com.acme.CalcTest::dividesByZero, com.acme.CalcTest::parsesHex; the first, com.acme.CalcTest::dividesByZero at CalcTest.java:31: expected: <0> but was: <1>"
    );
}

#[test]
fn flaky_tests_that_passed_on_retry_are_green() {
    let mut blobs = MemBlobs::default();
    let ev = evidence(Some(0), vec![fixture(&mut blobs, "nextest-flaky.xml")]);
    assert_eq!(
        run(&spec(&["*.xml"], Some(3)), &ev, &blobs),
        Verdict::green()
    );
}

#[test]
fn rerun_failures_are_red() {
    let mut blobs = MemBlobs::default();
    let ev = evidence(Some(0), vec![fixture(&mut blobs, "reruns.xml")]);
    let v = run(&spec(&["*.xml"], None), &ev, &blobs);
    assert_eq!(codes(&v), ["tests-failed"]);
    assert!(
        v.reasons[0]
            .message
            .contains("com.acme.NetTest::timesOutAlways")
    );
}

#[test]
fn too_few_executed_tests_skips_do_not_count() {
    let mut blobs = MemBlobs::default();
    let xml = br#"<testsuite name="s"><testcase name="a"/><testcase name="b"><skipped/></testcase></testsuite>"#;
    let ev = evidence(Some(0), vec![fresh(&mut blobs, "r.xml", xml)]);
    let v = run(&spec(&["*.xml"], Some(2)), &ev, &blobs);
    assert_eq!(codes(&v), ["too-few-tests"]);
    assert_eq!(v.reasons[0].message, "ran 1 test, need at least 2");
    assert!(run(&spec(&["*.xml"], Some(1)), &ev, &blobs).is_green());
}

#[test]
fn counts_add_up_across_reports() {
    let mut blobs = MemBlobs::default();
    let other = br#"<testsuite name="other"><testcase classname="o" name="a"/><testcase classname="o" name="b"/><testcase classname="o" name="c"><skipped/></testcase></testsuite>"#;
    let ev = evidence(
        Some(0),
        vec![
            fixture(&mut blobs, "nextest-passing.xml"),
            fresh(&mut blobs, "other.xml", other),
        ],
    );
    assert!(run(&spec(&["*.xml"], Some(4)), &ev, &blobs).is_green());
    let v = run(&spec(&["*.xml"], Some(5)), &ev, &blobs);
    assert_eq!(v.reasons[0].message, "ran 4 tests, need at least 5");
}

#[test]
fn reports_and_test_cases_count_once() {
    let mut blobs = MemBlobs::default();
    // nextest-flaky.xml repeats the two tests of nextest-passing.xml (same suite, classname
    // and name), and r2.xml has the very bytes of r.xml (a copy, a hard link, another glob).
    let ev = evidence(
        Some(0),
        vec![
            fixture(&mut blobs, "nextest-passing.xml"),
            fixture(&mut blobs, "nextest-flaky.xml"),
            fresh(
                &mut blobs,
                "r.xml",
                br#"<testsuite name="x"><testcase name="t"/></testsuite>"#,
            ),
            fresh(
                &mut blobs,
                "r2.xml",
                br#"<testsuite name="x"><testcase name="t"/></testsuite>"#,
            ),
        ],
    );
    assert!(run(&spec(&["*.xml"], Some(4)), &ev, &blobs).is_green());
    let v = run(&spec(&["*.xml"], Some(5)), &ev, &blobs);
    assert_eq!(v.reasons[0].message, "ran 4 tests, need at least 5");
}

#[test]
fn min_tests_without_junit_is_red() {
    let v = run(
        &spec(&[], Some(1)),
        &evidence(Some(0), vec![]),
        &MemBlobs::default(),
    );
    assert_eq!(codes(&v), ["min-tests-without-junit"]);
}

#[test]
fn missing_and_stale_reports() {
    let blobs = MemBlobs::default();
    let s = spec(&["target/*.xml"], None);
    let v = run(&s, &evidence(Some(0), vec![]), &blobs);
    assert_eq!(codes(&v), ["junit-missing"]);
    assert_eq!(
        v.reasons[0].message,
        "no JUnit report written by this run matched target/*.xml"
    );
    let stale = JunitFile {
        path: "target/old.xml".into(),
        pattern: "target/*.xml".into(),
        state: JunitState::Stale,
    };
    let v = run(&s, &evidence(Some(0), vec![stale]), &blobs);
    assert_eq!(codes(&v), ["junit-missing"]);
    assert!(v.reasons[0].message.ends_with("(1 older report ignored)"));
}

#[test]
fn future_dated_and_outside_reports_are_red() {
    let blobs = MemBlobs::default();
    let s = spec(&["build/*.xml"], None);
    let future = JunitFile {
        path: "build/r.xml".into(),
        pattern: "build/*.xml".into(),
        state: JunitState::Future {
            mtime_unix_ms: 1_795_086_400_000,
            window_end_unix_ms: 1_795_000_000_500,
        },
    };
    let v = run(&s, &evidence(Some(0), vec![future]), &blobs);
    assert_eq!(codes(&v), ["junit-missing", "junit-future-mtime"]);
    assert_eq!(
        v.reasons[1].message,
        "build/r.xml: modified 2026-11-19T11:06:40Z, after the command ended (2026-11-18T11:06:40Z): not written by this run"
    );
    let outside = JunitFile {
        path: "build/r.xml".into(),
        pattern: "build/*.xml".into(),
        state: JunitState::OutsideProject {
            resolved: "/tmp/elsewhere/r.xml".into(),
        },
    };
    let v = run(&s, &evidence(Some(0), vec![outside]), &blobs);
    assert_eq!(codes(&v), ["junit-missing", "junit-outside-project"]);
    assert!(
        v.reasons[1].message.contains("/tmp/elsewhere/r.xml"),
        "{v:?}"
    );
}

#[test]
fn unparsable_too_large_and_lost_reports_are_red() {
    let mut blobs = MemBlobs::default();
    let good = fixture(&mut blobs, "nextest-passing.xml");
    let garbage = fresh(&mut blobs, "bad.xml", b"<testsuite><testcase name=\"x\">");
    let big = JunitFile {
        path: "big.xml".into(),
        pattern: "*.xml".into(),
        state: JunitState::TooLarge { size: 1 << 30 },
    };
    let lost = JunitFile {
        path: "lost.xml".into(),
        pattern: "*.xml".into(),
        state: JunitState::Fresh {
            sha256: sha256_hex(b"never stored"),
            size: 12,
        },
    };
    let ev = evidence(Some(0), vec![good, garbage, big, lost]);
    let v = run(&spec(&["*.xml"], None), &ev, &blobs);
    assert_eq!(
        codes(&v),
        ["junit-too-large", "junit-unparsable", "junit-unreadable"]
    );
    assert!(v.reasons.iter().all(|r| !r.message.contains('\n')));
}

#[test]
fn failing_names_are_capped() {
    let mut blobs = MemBlobs::default();
    let cases: String = (0..8)
        .map(|i| format!(r#"<testcase classname="c" name="t{i}"><failure/></testcase>"#))
        .collect();
    let xml = format!(r#"<testsuite name="s" failures="8">{cases}</testsuite>"#);
    let ev = evidence(Some(0), vec![fresh(&mut blobs, "r.xml", xml.as_bytes())]);
    let v = run(&spec(&["*.xml"], None), &ev, &blobs);
    assert_eq!(
        v.reasons[0].message,
        "8 tests failed: c::t0, c::t1, c::t2, c::t3, c::t4 and 3 more"
    );
    assert_eq!(v.outcome, Outcome::Red);
}

#[test]
fn evidence_round_trips_through_json() {
    let mut blobs = MemBlobs::default();
    let ev = evidence(Some(0), vec![fixture(&mut blobs, "nextest-passing.xml")]);
    let json = serde_json::to_value(&ev).unwrap();
    let back: RegressionEvidence = serde_json::from_value(json).unwrap();
    assert_eq!(back, ev);
}

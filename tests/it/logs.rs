//! `relgate logs VERSION GATE`: a gate's captured output, its failing tests with their message
//! and file:line, and its evidence digests, read from the verified release record; and refusal
//! lines that name the first failing assertion.

use crate::common::*;
use relgate::exit;

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/junit")
        .join(name);
    std::fs::read_to_string(p).expect("fixture")
}

/// A `unit` gate that prints to both streams, writes pytest's real failing report and exits 1.
fn red_unit() -> Project {
    let p = project_with(
        "  unit:\n    kind: regression\n    run: sh build.sh\n    junit: [build/*.xml]\n",
    );
    p.write("pytest-failing.xml", fixture("pytest-failing.xml"));
    p.write(
        "build.sh",
        "echo 'collected 3 items'\necho 'test_calc.py .Fs'\necho 'warning: calc.old is deprecated' >&2\nmkdir -p build && cp pytest-failing.xml build/junit.xml\necho '1 failed, 1 passed, 1 skipped'\nexit 1\n",
    );
    p
}

#[test]
fn the_refusal_of_a_red_regression_gate_names_the_first_failing_assertion() {
    let p = red_unit();
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("relgate: unit: red:"))
        .unwrap_or_else(|| panic!("no refusal line for unit:\n{err}"));
    assert!(line.contains("tests-failed"), "{line}");
    assert!(line.contains("test_calc::test_add_fails"), "{line}");
    assert!(line.contains("test_calc.py:7"), "{line}");
    assert!(line.contains("assert (1 + 1) == 3"), "{line}");
    assert!(
        err.contains("`relgate logs 1.0.0 unit` shows its output"),
        "{err}"
    );
    let status = stdout(&p.relgate(&["status", "1.0.0"]));
    assert!(
        status.contains("assert (1 + 1) == 3") && status.contains("relgate logs 1.0.0 unit"),
        "{status}"
    );
    // The record replays: the message is the judge's, derived again from the stored report.
    expect_code(
        &p.relgate(&["replay", p.record("1.0.0").to_str().expect("utf8")]),
        exit::SUCCESS,
    );
}

#[test]
fn logs_shows_output_tails_failures_with_file_and_line_and_evidence_digests() {
    let p = red_unit();
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    let out = p.relgate(&["logs", "1.0.0", "unit"]);
    expect_code(&out, exit::SUCCESS);
    let text = stdout(&out);
    for want in [
        "unit (regression): red",
        "the command exited with status 1",
        // The failing test, where it failed and what it asserted.
        "test_calc::test_add_fails",
        "test_calc.py:7",
        "assert (1 + 1) == 3",
        // The tails of both streams.
        "1 failed, 1 passed, 1 skipped",
        "warning: calc.old is deprecated",
        "build/junit.xml",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    // The evidence digest is the one the log's verdict names, and the file is there.
    let log = p.log("1.0.0");
    let verdict: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|v| v["type"] == "gate-verdict" && v["body"]["gate"] == "unit")
        .expect("verdict");
    let digest = verdict["body"]["evidence"].as_str().expect("digest");
    assert!(text.contains(digest), "{digest} not in:\n{text}");
    assert!(p.record("1.0.0").join("evidence").join(digest).is_file());

    let json = p.relgate(&["logs", "1.0.0", "unit", "--format", "json"]);
    expect_code(&json, exit::SUCCESS);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json document");
    assert_eq!(doc["gate"], "unit");
    assert_eq!(doc["outcome"], "red");
    assert_eq!(doc["evidence"]["digest"], digest);
    let path = doc["evidence"]["path"].as_str().expect("path");
    assert!(std::path::Path::new(path).is_file(), "{path}");
    let failures = doc["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{doc:#}");
    assert_eq!(failures[0]["name"], "test_calc::test_add_fails");
    assert_eq!(failures[0]["location"], "test_calc.py:7");
    assert_eq!(failures[0]["message"], "assert (1 + 1) == 3");
    assert!(
        doc["stdout"]["tail"]
            .as_str()
            .expect("tail")
            .contains("1 failed, 1 passed, 1 skipped"),
        "{doc:#}"
    );
    for stream in ["stdout", "stderr"] {
        for piece in doc[stream]["files"].as_array().expect("files") {
            let f = piece["path"].as_str().expect("path");
            assert!(std::path::Path::new(f).is_file(), "{f}");
        }
    }
    assert!(
        doc["junit"][0]["path"] == "build/junit.xml" && doc["junit"][0]["digest"].is_string(),
        "{doc:#}"
    );
}

#[test]
fn logs_shows_the_end_of_a_long_output_and_how_much_was_left_out() {
    let p = project_with("  chatty:\n    kind: regression\n    run: seq 1 300000\n");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    let out = p.relgate(&["logs", "1.0.0", "chatty", "--lines", "3"]);
    expect_code(&out, exit::SUCCESS);
    let text = stdout(&out);
    assert!(
        text.contains("299998\n") && text.contains("300000"),
        "{text}"
    );
    assert!(
        !text.contains("\n150000\n"),
        "only the tail is shown:\n{text}"
    );
    assert!(text.contains("omitted"), "{text}");
}

#[test]
fn logs_of_other_gate_kinds_shows_the_verdict_and_evidence() {
    let p = project_with("  unit:\n    kind: regression\n    run: \"true\"\n");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    let out = p.relgate(&["logs", "1.0.0", "sign"]);
    expect_code(&out, exit::SUCCESS);
    let text = stdout(&out);
    assert!(text.contains("sign (sign): green"), "{text}");
    assert!(text.contains("evidence"), "{text}");
}

#[test]
fn logs_refuses_unknown_gates_missing_records_and_records_that_do_not_verify() {
    let p = red_unit();
    // Nothing recorded yet.
    let out = p.relgate(&["logs", "1.0.0", "unit"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("no release record"),
        "{}",
        stderr(&out)
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    // A gate the pipeline does not have is a usage error, with a suggestion.
    let out = p.relgate(&["logs", "1.0.0", "unti"]);
    expect_code(&out, exit::CONFIG);
    assert!(stderr(&out).contains("unit"), "{}", stderr(&out));
    // A record altered after it was signed shows nothing.
    let log = p.record("1.0.0").join("log.jsonl");
    let text = std::fs::read_to_string(&log).expect("log");
    std::fs::write(&log, text.replace("status 1", "status 0")).expect("write");
    let out = p.relgate(&["logs", "1.0.0", "unit"]);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

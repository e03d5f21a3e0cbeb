//! What a CI job reads from relgate: a distinct exit code when the record is busy, gate
//! durations and evidence paths in `--format json`, `time` in JUnit, a Markdown summary in
//! `$GITHUB_STEP_SUMMARY`, and `::error` annotations for configuration errors under GitHub
//! Actions. (The workflows of docs/ci.md are run by tests/it/ci_docs.rs.)

use std::path::Path;

use crate::common::*;
use relgate::exit;

/// Tests, a QA sign-off after them, and the sign gate.
fn project() -> Project {
    let p = Project::new();
    let release = p.keygen("release");
    let alice = p.keygen("alice");
    let bob = p.keygen("bob");
    p.write(
        "keys/allowed_signers",
        format!("release@acme.test {release}\nalice@acme.test {alice}\nbob@acme.test {bob}\n"),
    );
    p.write("dist/a.txt", b"a\n");
    let gates = "  unit:\n    kind: regression\n    run: sleep 0.3; echo tested; echo oops >&2\n  manual:\n    kind: signoff\n    needs: [unit]\n    role: qa\n    segregation: [operator, signer]\n";
    let text = pipeline(gates).replace(
        "signers: keys/allowed_signers\n",
        "signers: keys/allowed_signers\nroles:\n  qa: [alice@acme.test, bob@acme.test]\n",
    );
    p.write("pipeline.yaml", text);
    p
}

#[test]
fn a_run_that_finds_the_record_held_by_another_run_exits_busy() {
    let p = project();
    let dir = p.record("1.0.0");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .expect("lock file");
    lock.try_lock().expect("the test holds the lock");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::BUSY);
    assert_eq!(exit::BUSY, 4);
    let err = stderr(&out);
    assert!(err.contains("another relgate run holds"), "{err}");
    assert!(!dir.join("log.jsonl").exists(), "nothing was run");
    drop(lock);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
}

#[test]
fn json_gives_each_gate_its_duration_evidence_path_and_output_files() {
    let p = project();
    let out = p.relgate(&["run", "1.0.0", "--format", "json"]);
    expect_code(&out, exit::PENDING);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let unit = json_gate(&doc, "unit");
    assert!(
        unit["duration_ms"].as_u64().expect("duration") >= 300,
        "{unit:#}"
    );
    let evidence = unit["evidence"]["path"].as_str().expect("evidence path");
    assert!(Path::new(evidence).is_file(), "{evidence}");
    assert_eq!(
        Path::new(evidence).file_name().and_then(|n| n.to_str()),
        unit["evidence"]["digest"].as_str()
    );
    for (stream, text) in [("stdout", "tested\n"), ("stderr", "oops\n")] {
        let files = unit["output"][stream].as_array().expect("output files");
        let first = files[0].as_str().expect("path");
        assert_eq!(std::fs::read_to_string(first).expect("captured"), text);
    }
    let manual = json_gate(&doc, "manual");
    assert!(manual["duration_ms"].is_u64(), "{manual:#}");
    assert_eq!(manual["may_still_sign"][0], "alice@acme.test", "{manual:#}");
    // The next run names the evidence too, whether it kept the result or ran the gate again.
    let again = p.relgate(&["run", "1.0.0", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    assert!(
        json_gate(&doc, "unit")["evidence"]["path"].is_string(),
        "{doc:#}"
    );
}

#[test]
fn junit_testcases_carry_their_time() {
    let p = project();
    expect_code(
        &p.relgate(&["run", "1.0.0", "--junit", "gates.xml"]),
        exit::PENDING,
    );
    let xml = p.read("gates.xml");
    let unit = xml
        .split("<testcase ")
        .find(|c| c.contains("name=\"unit\""))
        .expect("unit");
    let time: f64 = unit
        .split("time=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no time: {unit}"));
    assert!(time >= 0.3, "{xml}");
    for case in xml.split("<testcase ").skip(1) {
        assert!(case.contains(" time=\""), "a testcase without time: {case}");
    }
}

#[test]
fn a_markdown_summary_is_appended_to_the_github_step_summary() {
    let p = project();
    p.write("summary.md", "earlier step\n");
    let summary = p.join("summary.md");
    let summary = summary.to_str().expect("utf8");
    let out = p.relgate_env(&["run", "1.0.0"], &[("GITHUB_STEP_SUMMARY", summary)]);
    expect_code(&out, exit::PENDING);
    let md = p.read("summary.md");
    assert!(
        md.starts_with("earlier step\n"),
        "appended, not replaced:\n{md}"
    );
    for want in [
        "acme 1.0.0",
        "| gate |",
        "| unit | regression | green |",
        "| manual | signoff | pending |",
        "sha256:",
        "alice@acme.test, bob@acme.test",
        "relgate approve 1.0.0 --gate manual",
    ] {
        assert!(md.contains(want), "{want:?} not in:\n{md}");
    }
    // Without the variable, nothing is written anywhere.
    let out = p.relgate(&["run", "1.0.0", "--dry-run"]);
    expect_code(&out, exit::SUCCESS);
    assert_eq!(p.read("summary.md"), md);
}

#[test]
fn configuration_errors_are_github_annotations_under_github_actions() {
    let p = project();
    let text = p
        .read("pipeline.yaml")
        .replace("    role: qa\n", "    role: qa\n    quorm: 2\n");
    p.write("pipeline.yaml", text);
    let line = p
        .read("pipeline.yaml")
        .lines()
        .position(|l| l.contains("quorm"))
        .expect("line")
        + 1;
    let out = p.relgate_env(&["check"], &[("GITHUB_ACTIONS", "true")]);
    expect_code(&out, exit::CONFIG);
    let text = stdout(&out);
    let want = format!("::error file=pipeline.yaml,line={line},col=5,title=gates.manual.quorm::");
    let annotation = text
        .lines()
        .find(|l| l.starts_with(&want))
        .unwrap_or_else(|| panic!("{want} not in:\n{text}"));
    assert!(annotation.contains("did you mean `quorum`"), "{annotation}");
    // run and plan annotate too; outside GitHub Actions nothing is annotated.
    let out = p.relgate_env(&["run", "1.0.0"], &[("GITHUB_ACTIONS", "true")]);
    expect_code(&out, exit::CONFIG);
    assert!(stdout(&out).contains(&want), "{}", stdout(&out));
    let out = p.relgate(&["check"]);
    assert!(!stdout(&out).contains("::error"), "{}", stdout(&out));
    // Paths are named from the workspace root, where GitHub looks for them.
    let parent = p.path().parent().expect("parent");
    let name = p.path().file_name().and_then(|n| n.to_str()).expect("name");
    let out = p.relgate_env(
        &["check"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_WORKSPACE", parent.to_str().expect("utf8")),
        ],
    );
    let want = format!("::error file={name}/pipeline.yaml,line={line},");
    assert!(stdout(&out).contains(&want), "{}", stdout(&out));
}

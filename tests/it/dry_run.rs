//! Dry runs are faithful rehearsals: their JUnit, their JSON document and their exit code agree;
//! a gate blocked only by an awaited sign-off is pending (skipped in JUnit), never a failure; and
//! a sign gate that waits on a sign-off is still rehearsed, with a throwaway key and never the
//! release key, so the signing path runs every night.

use std::path::{Path, PathBuf};

use crate::common::*;
use relgate::exit;

/// The layout of the issue: tests, a QA sign-off after them, and the sign gate after both.
fn project(key: &str) -> Project {
    let p = Project::new();
    let release = p.keygen("release");
    let alice = p.keygen("alice");
    p.write(
        "keys/allowed_signers",
        format!("release@acme.test {release}\nalice@acme.test {alice}\n"),
    );
    p.write("dist/a.txt", b"a\n");
    p.write(
        "pipeline.yaml",
        format!(
            "version: 1
project: acme
artefacts: [dist/*]
signers: keys/allowed_signers
roles:
  qa: [alice@acme.test]
gates:
  unit:
    kind: regression
    run: \"true\"
  manual:
    kind: signoff
    needs: [unit]
    role: qa
    segregation: [operator, signer]
  docs:
    kind: regression
    needs: [manual]
    run: touch docs-ran
  sign:
    kind: sign
    needs: [unit, manual]
    key: {key}
    signer: release@acme.test
publish:
  to: published/{{project}}/{{version}}
"
        ),
    );
    p
}

/// failures + errors of a JUnit report, and each testcase's (name, status) as
/// `ok`/`skipped`/`failure`/`error`.
fn junit(xml: &str) -> (u64, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| -> u64 {
        let at = xml.find(tag).expect("tag");
        let rest = &xml[at..];
        let key = format!("{name}=\"");
        let from = rest.find(&key).expect("attr") + key.len();
        rest[from..]
            .split('"')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("number")
    };
    let bad = attr("<testsuites", "failures") + attr("<testsuites", "errors");
    let mut cases = Vec::new();
    for part in xml.split("<testcase ").skip(1) {
        let name = part
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("name")
            .to_string();
        let body = part.split("</testcase>").next().unwrap_or(part);
        let status = if part.trim_start().contains("/>") && !body.contains('<') {
            "ok"
        } else if body.contains("<failure") {
            "failure"
        } else if body.contains("<error") {
            "error"
        } else if body.contains("<skipped") {
            "skipped"
        } else {
            "ok"
        };
        cases.push((name, status.to_string()));
    }
    (bad, cases)
}

fn status_of<'a>(cases: &'a [(String, String)], name: &str) -> &'a str {
    cases
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s.as_str())
        .unwrap_or_else(|| panic!("no testcase {name}: {cases:?}"))
}

fn only_dry_run(p: &Project) -> PathBuf {
    let dir = p.join(".relgate/dry-runs/1.0.0");
    let runs: Vec<_> = std::fs::read_dir(&dir)
        .expect("dry-runs")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

/// The sign gate's evidence in a record: (throwaway, key fingerprint).
fn sign_evidence(record: &Path) -> serde_json::Value {
    let log = std::fs::read_to_string(record.join("log.jsonl")).expect("log");
    let digest = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|v| v["type"] == "gate-verdict" && v["body"]["gate"] == "sign")
        .and_then(|v| v["body"]["evidence"].as_str().map(str::to_string))
        .expect("the sign gate ran and has evidence");
    serde_json::from_slice(&std::fs::read(record.join("evidence").join(digest)).expect("evidence"))
        .expect("json")
}

#[test]
fn a_dry_run_waiting_on_a_signoff_has_no_junit_failure_and_agrees_with_json_and_exit_code() {
    // The nightly has no release key.
    let p = project("${RELGATE_TEST_NO_SUCH_KEY}");
    let out = p.relgate(&[
        "run",
        "1.0.0",
        "--dry-run",
        "--format",
        "json",
        "--junit",
        "gates.xml",
    ]);
    expect_code(&out, exit::SUCCESS);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["decision"], "dry-run");
    let (bad, cases) = junit(&p.read("gates.xml"));
    assert_eq!(bad, 0, "{}", p.read("gates.xml"));
    assert_eq!(status_of(&cases, "unit"), "ok");
    assert_eq!(status_of(&cases, "manual"), "skipped");
    // Waiting on the sign-off only: pending, not run, skipped in JUnit.
    assert_eq!(status_of(&cases, "docs"), "skipped");
    assert_eq!(json_gate(&doc, "docs")["state"], "pending");
    assert_eq!(json_gate(&doc, "docs")["waiting_on"][0], "manual");
    assert!(
        !p.join("docs-ran").exists(),
        "a gate waiting on a sign-off never runs"
    );
    // The sign gate is rehearsed all the same, with a throwaway key.
    assert_eq!(status_of(&cases, "sign"), "ok");
    assert_eq!(json_gate(&doc, "sign")["state"], "green");
    let ev = sign_evidence(&only_dry_run(&p));
    assert_eq!(ev["throwaway"], true, "{ev:#}");
    let err = stderr(&out);
    assert!(!err.contains("needs-not-green"), "{err}");
    // The display says what was rehearsed.
    let out = p.relgate(&["run", "1.0.0", "--dry-run"]);
    expect_code(&out, exit::SUCCESS);
    let err = stderr(&out);
    assert!(
        err.contains("sign: note: rehearsed with a throwaway key; a real run waits for manual"),
        "{err}"
    );
    assert!(err.contains("docs: pending: waiting on manual"), "{err}");
}

#[test]
fn a_dry_run_never_signs_with_the_release_key_before_the_signoff() {
    let p = project("keys/release");
    let out = p.relgate(&["run", "1.0.0", "--dry-run", "--junit", "gates.xml"]);
    expect_code(&out, exit::SUCCESS);
    let record = only_dry_run(&p);
    let ev = sign_evidence(&record);
    assert_eq!(ev["throwaway"], true, "{ev:#}");
    let release = std::process::Command::new("ssh-keygen")
        .args(["-l", "-f"])
        .arg(p.join("keys/release.pub"))
        .output()
        .expect("ssh-keygen -l");
    let release_fp = String::from_utf8_lossy(&release.stdout).to_string();
    let used = ev["key_fingerprint"].as_str().expect("fingerprint");
    assert!(!release_fp.contains(used), "{used} is the release key");
    // No signature by the release key over these bytes exists anywhere in the record.
    let sums = std::fs::read_dir(record.join("staged"))
        .expect("staged")
        .map(|e| e.expect("entry").path())
        .find(|d| d.join("SHA256SUMS.sig").is_file())
        .expect("the rehearsal wrote SHA256SUMS.sig");
    let verify = std::process::Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(p.join("keys/allowed_signers"))
        .args(["-I", "release@acme.test", "-n", "file", "-s"])
        .arg(sums.join("SHA256SUMS.sig"))
        .stdin(std::fs::File::open(sums.join("SHA256SUMS")).expect("sums"))
        .output()
        .expect("ssh-keygen -Y verify");
    assert!(
        !verify.status.success(),
        "the release key signed a rehearsal"
    );
    let (bad, _) = junit(&p.read("gates.xml"));
    assert_eq!(bad, 0);
    // The dry run's record is whole, but signed by a key anyone could make: replay says so
    // and does not call it verified.
    let out = p.relgate(&["replay", record.to_str().expect("utf8")]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("throwaway key, which anyone can make"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_real_run_waiting_on_a_signoff_reports_the_waiting_gates_as_pending_everywhere() {
    let p = project("keys/release");
    let out = p.relgate(&["run", "1.0.0", "--format", "json", "--junit", "gates.xml"]);
    expect_code(&out, exit::PENDING);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(json_gate(&doc, "sign")["state"], "pending");
    assert_eq!(json_gate(&doc, "sign")["waiting_on"][0], "manual");
    let (bad, cases) = junit(&p.read("gates.xml"));
    assert_eq!(bad, 0, "{}", p.read("gates.xml"));
    assert_eq!(status_of(&cases, "sign"), "skipped");
    assert_eq!(status_of(&cases, "docs"), "skipped");
    let err = stderr(&out);
    assert!(
        err.contains("relgate: sign: pending: needs-pending: waiting on manual"),
        "{err}"
    );
    // A real run never rehearses: the sign gate did not run.
    assert!(!p.log("1.0.0").contains("\"gate\":\"sign\",\"inputs\""));
    let status = stdout(&p.relgate(&["status", "1.0.0"]));
    let sign_line = status
        .lines()
        .find(|l| l.trim_start().starts_with("sign "))
        .expect("sign in status");
    assert!(sign_line.ends_with("pending"), "{status}");
}

#[test]
fn a_red_gate_makes_junit_json_and_the_exit_code_agree_on_failure() {
    let p = project("${RELGATE_TEST_NO_SUCH_KEY}");
    let text = p
        .read("pipeline.yaml")
        .replace("run: \"true\"", "run: exit 1");
    p.write("pipeline.yaml", text);
    let out = p.relgate(&[
        "run",
        "1.0.0",
        "--dry-run",
        "--format",
        "json",
        "--junit",
        "gates.xml",
    ]);
    expect_code(&out, exit::REFUSED);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["exit_code"], 1);
    let (bad, cases) = junit(&p.read("gates.xml"));
    assert!(bad >= 1);
    assert_eq!(status_of(&cases, "unit"), "failure");
    // Blocked behind a red gate is a failure: it can never pass this way.
    assert_eq!(status_of(&cases, "manual"), "failure");
    assert_eq!(json_gate(&doc, "manual")["state"], "blocked");
    assert_eq!(status_of(&cases, "sign"), "failure");
}

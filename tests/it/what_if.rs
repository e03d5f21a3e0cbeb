//! What-if replay: `relgate replay PATH --policy FILE` judges a release's recorded evidence
//! again under another pipeline and lists exactly the gates whose verdict would change — and
//! never says the release was verified under that policy.

use crate::common::*;
use relgate::exit;

const SARIF: &str = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"scanner","rules":[
 {"id":"R1","properties":{"security-severity":"7.5"}}]}},
 "results":[{"ruleId":"R1","message":{"text":"bad thing"},
 "locations":[{"physicalLocation":{"artifactLocation":{"uri":"src/x.c"},"region":{"startLine":3}}}]}]}]}"#;

fn date(offset_days: i64) -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(offset_days);
    d.to_string()
}

/// The pipeline with `quorum` QA sign-offs and `high` as the high-severity SLA.
fn policy(quorum: u32, high: &str) -> String {
    format!(
        "version: 1
project: acme
artefacts:
  - dist/*
signers: keys/allowed_signers
roles:
  qa: [alice@acme.test, bob@acme.test]
gates:
  unit-tests:
    kind: regression
    run: \"true\"
  security-review:
    kind: security-review
    findings: [reports/*.sarif]
    register: security/remediations.yaml
    sla: {{critical: 7d, high: {high}, medium: 90d, low: 365d}}
  manual-regression:
    kind: signoff
    role: qa
    quorum: {quorum}
    segregation: [operator, signer]
  sign:
    kind: sign
    key: keys/release
    signer: release@acme.test
publish:
  to: published/{{project}}/{{version}}
"
    )
}

/// A release published under quorum 1 and a 30-day SLA for high findings, with one high
/// finding due in 20 days and bob's sign-off.
fn published() -> Project {
    let p = Project::new();
    let release = p.keygen("release");
    let alice = p.keygen("alice");
    let bob = p.keygen("bob");
    p.write(
        "keys/allowed_signers",
        format!("release@acme.test {release}\nalice@acme.test {alice}\nbob@acme.test {bob}\n"),
    );
    p.write("dist/a.txt", b"a\n");
    p.write("reports/scan.sarif", SARIF);
    p.write(
        "security/remediations.yaml",
        format!(
            "- finding: R1\n  owner: dave@acme.test\n  ticket: SEC-1\n  plan: fix it\n  opened: {}\n  due: {}\n  status: open\n",
            date(0),
            date(20)
        ),
    );
    p.write("pipeline.yaml", policy(1, "30d"));
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    expect_code(
        &p.relgate(&[
            "approve",
            "1.0.0",
            "--gate",
            "manual-regression",
            "--key",
            "keys/bob",
            "--as",
            "bob@acme.test",
            "--comment",
            "ok",
        ]),
        exit::SUCCESS,
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    p
}

#[test]
fn a_stricter_policy_lists_exactly_the_gates_that_change_with_their_new_reasons() {
    let p = published();
    p.write("strict.yaml", policy(2, "7d"));
    let out = p.relgate(&["replay", "published/acme/1.0.0", "--policy", "strict.yaml"]);
    expect_code(&out, exit::REFUSED);
    let text = stdout(&out);
    // Every gate that changes, with its new reasons: the SLA, the quorum, and the sign gate,
    // which would not have run.
    assert!(text.contains("security-review: green -> red"), "{text}");
    assert!(text.contains("sla-exceeded"), "{text}");
    assert!(
        text.contains("manual-regression: green -> pending"),
        "{text}"
    );
    assert!(text.contains("quorum"), "{text}");
    assert!(text.contains("sign: green -> blocked"), "{text}");
    // And nothing else.
    assert!(!text.contains("unit-tests:"), "{text}");
    assert!(text.contains("3 of 4 gate(s) would change"), "{text}");
    assert!(text.contains("decision: published -> refused"), "{text}");
    // It never claims the release was verified under this policy.
    assert!(text.contains("not a verification"), "{text}");
    assert!(!text.to_lowercase().contains("verified under"), "{text}");

    // The same as JSON, for scripts.
    let out = p.relgate(&[
        "replay",
        "published/acme/1.0.0",
        "--policy",
        "strict.yaml",
        "--format",
        "json",
    ]);
    expect_code(&out, exit::REFUSED);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["what_if"], true);
    assert_eq!(doc["verified_under_policy"], false);
    let changed: Vec<&str> = doc["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .filter(|g| g["changed"] == true)
        .map(|g| g["gate"].as_str().expect("id"))
        .collect();
    assert_eq!(changed, ["security-review", "manual-regression", "sign"]);
}

#[test]
fn the_policy_it_was_released_under_changes_nothing() {
    let p = published();
    p.write("same.yaml", policy(1, "30d"));
    let out = p.relgate(&["replay", "published/acme/1.0.0", "--policy", "same.yaml"]);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stdout(&out).contains("no verdict would change"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_gate_the_record_never_ran_cannot_be_judged_and_says_so() {
    let p = published();
    let extra = policy(1, "30d").replace(
        "  sign:\n",
        "  lint:\n    kind: regression\n    run: \"true\"\n  sign:\n",
    );
    p.write("extra.yaml", extra);
    let out = p.relgate(&["replay", "published/acme/1.0.0", "--policy", "extra.yaml"]);
    expect_code(&out, exit::REFUSED);
    let text = stdout(&out);
    assert!(text.contains("lint: not a gate -> not judged"), "{text}");
    assert!(text.contains("no recorded evidence"), "{text}");
}

#[test]
fn an_invalid_policy_or_a_record_that_does_not_verify_judges_nothing() {
    let p = published();
    p.write("bad.yaml", "version: 1\nproject: acme\n");
    let out = p.relgate(&["replay", "published/acme/1.0.0", "--policy", "bad.yaml"]);
    expect_code(&out, exit::CONFIG);
    p.write("same.yaml", policy(1, "30d"));
    // A record altered after the fact is not judged under any policy.
    let log = p.join("published/acme/1.0.0/audit/log.jsonl");
    let text = std::fs::read_to_string(&log)
        .expect("log")
        .replace("\"dry_run\":false", "\"dry_run\":true ");
    std::fs::write(&log, text).expect("write");
    let out = p.relgate(&["replay", "published/acme/1.0.0", "--policy", "same.yaml"]);
    expect_code(&out, exit::CONFIG);
    assert!(
        stderr(&out).contains("nothing was judged"),
        "{}",
        stderr(&out)
    );
}

//! The security review through the binary: a SARIF report and its remediation register, the
//! refusal for an unassigned finding, and `relgate findings` over the recorded evidence.

mod common;

use common::*;
use relgate::exit;

const SARIF: &str = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"scanner","rules":[
 {"id":"R1","properties":{"security-severity":"7.5"}}]}},
 "results":[{"ruleId":"R1","message":{"text":"bad thing"},
 "locations":[{"physicalLocation":{"artifactLocation":{"uri":"src/x.c"},"region":{"startLine":3}}}]}]}]}"#;

fn project(register: &str) -> Project {
    let p = Project::new();
    p.release_key();
    p.write("dist/a.txt", b"a\n");
    p.write("reports/scan.sarif", SARIF);
    p.write("security/remediations.yaml", register);
    p.write(
        "pipeline.yaml",
        pipeline("  review:\n    kind: security-review\n    findings: [reports/*.sarif]\n    register: security/remediations.yaml\n"),
    );
    p
}

fn date(offset_days: i64) -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(offset_days);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[test]
fn an_unassigned_finding_is_refused() {
    let p = project("[]\n");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("finding-unassigned"),
        "{}",
        stderr(&out)
    );
    let f = p.relgate(&["findings", "1.0.0"]);
    expect_code(&f, exit::REFUSED);
    assert!(stdout(&f).contains("recorded"), "{}", stdout(&f));
}

#[test]
fn an_assigned_finding_is_green_and_listed_by_findings() {
    let register = format!(
        "- finding: R1\n  owner: dave@acme.test\n  ticket: SEC-1\n  plan: fix the bad thing\n  opened: {}\n  due: {}\n  status: open\n",
        date(0),
        date(20)
    );
    let p = project(&register);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    let f = p.relgate(&["findings", "1.0.0", "--format", "json"]);
    expect_code(&f, exit::SUCCESS);
    let doc: serde_json::Value = serde_json::from_slice(&f.stdout).expect("json");
    let text = doc.to_string();
    assert!(
        text.contains("SEC-1") && text.contains("dave@acme.test"),
        "{text}"
    );
    assert!(
        p.join("published/acme/1.0.0/audit/security-review.md")
            .is_file()
    );
}

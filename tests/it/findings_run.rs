//! The security review through the binary: a SARIF report and its remediation register, the
//! refusal for an unassigned finding, and `relgate findings` over the recorded evidence.

use crate::common::*;
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

// ---- issue 17: SARIF and registers a hostile or sloppy build writes ----
//
// Each test writes the SARIF text the way the attack writes it, runs the real release, expects
// the refusal with its own reason code, and replays the record: the verdict must follow again
// from the recorded SARIF bytes.

const CVSS_9_8: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";

/// A project whose review reads the SARIF `files` (path below `reports/`, text) and `register`.
fn review(files: &[(&str, &str)], register: &str) -> Project {
    let p = Project::new();
    p.release_key();
    p.write("dist/a.txt", b"a\n");
    for (name, text) in files {
        p.write(&format!("reports/{name}"), text);
    }
    p.write("security/remediations.yaml", register);
    p.write(
        "pipeline.yaml",
        pipeline("  review:\n    kind: security-review\n    findings: [reports/*.sarif]\n    register: security/remediations.yaml\n    block: [critical]\n"),
    );
    p
}

/// One register entry; `extra` is more YAML lines (indented by two spaces).
fn entry(finding: &str, extra: &str, status: &str, opened: i64, due: i64) -> String {
    format!(
        "- finding: {finding}\n{extra}  owner: dave@acme.test\n  plan: upgrade\n  opened: {}\n  due: {}\n  status: {status}\n",
        date(opened),
        date(due)
    )
}

/// Run the release: refused, naming every code on stderr; the record replays.
#[track_caller]
fn refused(p: &Project, codes: &[&str]) -> String {
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    for c in codes {
        assert!(err.contains(&format!("{c}: ")), "{c} missing:\n{err}");
    }
    let rec = p.record("1.0.0");
    expect_code(
        &p.relgate(&["replay", rec.to_str().expect("utf8")]),
        exit::SUCCESS,
    );
    err
}

#[test]
fn a_fixed_entry_for_a_finding_still_reported_is_open_and_refused() {
    // Issue 17, case 6: `status: fixed` with a past due date let a critical through.
    let sarif = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"depscan","rules":[
      {"id":"CVE-2026-0001","properties":{"security-severity":"9.8"}}]}},
      "results":[{"ruleId":"CVE-2026-0001","ruleIndex":0,"level":"error",
        "message":{"text":"remote code execution in libfoo 1.2"},
        "locations":[{"physicalLocation":{"artifactLocation":{"uri":"Cargo.lock"},"region":{"startLine":9}}}]}]}]}"#;
    let p = review(
        &[("deps.sarif", sarif)],
        &entry("CVE-2026-0001", "", "fixed", -10, -4),
    );
    let err = refused(
        &p,
        &[
            "fixed-still-reported",
            "remediation-overdue",
            "severity-blocks",
        ],
    );
    assert!(
        err.contains("says fixed, but the scanner still reports it"),
        "{err}"
    );
}

#[test]
fn a_scanner_that_says_it_failed_is_not_a_clean_scan() {
    // Issue 17, case 7: each of these was read as "no findings".
    for (what, sarif, code) in [
        (
            "results null",
            r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"semgrep"}},"results":null}]}"#,
            "scan-incomplete",
        ),
        (
            "execution failed",
            r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"semgrep"}},
               "invocations":[{"executionSuccessful":false,"exitCode":2}],"results":[]}]}"#,
            "scan-failed",
        ),
        (
            "no runs",
            r#"{"version":"2.1.0","runs":[]}"#,
            "scan-incomplete",
        ),
    ] {
        let p = review(&[("sast.sarif", sarif)], "[]\n");
        let err = refused(&p, &[code]);
        assert!(err.contains("reports/sast.sarif"), "{what}: {err}");
    }
}

#[test]
fn a_rule_index_that_names_another_rule_than_the_rule_id_is_refused() {
    // Issue 17, case 8: ruleIndex 1 (a 1.0 style rule) made the 9.9 finding low.
    let sarif = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"depscan","rules":[
      {"id":"CVE-2026-0002","properties":{"security-severity":"9.9"}},
      {"id":"STYLE-1","properties":{"security-severity":"1.0"}}]}},
      "results":[{"ruleId":"CVE-2026-0002","ruleIndex":1,"message":{"text":"heap overflow"}}]}]}"#;
    let p = review(
        &[("deps.sarif", sarif)],
        &entry("CVE-2026-0002", "", "open", 0, 200),
    );
    let err = refused(&p, &["sarif-rule-mismatch"]);
    assert!(
        err.contains("ruleId \"CVE-2026-0002\"") && err.contains("\"STYLE-1\""),
        "{err}"
    );
    assert!(!err.contains("low ("), "{err}");
}

#[test]
fn a_fingerprint_equal_to_an_accepted_rule_id_does_not_cover_a_critical() {
    // Issue 17, case 9: the critical result carries the accepted low finding's id as a
    // partial fingerprint, and was covered by its entry.
    let sarif = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"scanner","rules":[
      {"id":"INFO-1","properties":{"security-severity":"2.0"}},
      {"id":"RCE-1","properties":{"security-severity":"9.9"}}]}},
      "results":[
        {"ruleId":"INFO-1","message":{"text":"verbose banner"}},
        {"ruleId":"RCE-1","message":{"text":"command injection"},
         "partialFingerprints":{"primaryLocationLineHash":"INFO-1"}}]}]}"#;
    let p = review(
        &[("sast.sarif", sarif)],
        &entry("INFO-1", "", "accepted", -1, 5),
    );
    let err = refused(&p, &["register-ambiguous"]);
    assert!(err.contains("INFO-1"), "{err}");
}

#[test]
fn one_entry_does_not_cover_the_same_rule_id_from_another_tool() {
    // Issue 17, case 9: an entry for linter A's low R1 covered depscan's critical R1.
    let a = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"lint-a","rules":[{"id":"R1"}]}},
      "results":[{"ruleId":"R1","level":"note","message":{"text":"naming"}}]}]}"#;
    let b = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"depscan","rules":[
      {"id":"R1","properties":{"security-severity":"9.9"}}]}},
      "results":[{"ruleId":"R1","message":{"text":"remote code execution"}}]}]}"#;
    let p = review(
        &[("a.sarif", a), ("b.sarif", b)],
        &entry("R1", "", "accepted", -1, 5),
    );
    let err = refused(&p, &["register-ambiguous"]);
    assert!(err.contains("lint-a") && err.contains("depscan"), "{err}");
}

#[test]
fn duplicate_json_keys_in_sarif_are_refused() {
    // Issue 17, case 10: a second, empty "runs" hid every result (the last key won).
    let sarif = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"depscan","rules":[
      {"id":"CVE-2026-0003","properties":{"security-severity":"9.8"}}]}},
      "results":[{"ruleId":"CVE-2026-0003","message":{"text":"remote code execution"}}]}],
      "runs":[]}"#;
    let p = review(&[("deps.sarif", sarif)], "[]\n");
    let err = refused(&p, &["sarif-duplicate-key"]);
    assert!(err.contains("duplicate key \"runs\""), "{err}");
}

#[test]
fn no_source_can_lower_a_severity_another_source_gives() {
    // Issue 17, case 11: a rule's (or the result's) security-severity overrode the result's
    // own CVSS 9.8 vector.
    let sarif = format!(
        r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"depscan","rules":[
      {{"id":"CVE-A","properties":{{"security-severity":"2.0"}}}},
      {{"id":"CVE-B","properties":{{"cvss":"{CVSS_9_8}"}}}}]}}}},
      "results":[
        {{"ruleId":"CVE-A","message":{{"text":"a"}},"properties":{{"cvss":"{CVSS_9_8}"}}}},
        {{"ruleId":"CVE-B","message":{{"text":"b"}},"properties":{{"security-severity":"1.0"}}}}]}}]}}"#
    );
    let register = entry("CVE-A", "", "open", 0, 5) + &entry("CVE-B", "", "open", 0, 5);
    let p = review(&[("deps.sarif", &sarif)], &register);
    let err = refused(&p, &["severity-blocks"]);
    assert!(
        err.contains("CVE-A (depscan, critical (cvss-3.1 9.8))"),
        "{err}"
    );
    assert!(
        err.contains("CVE-B (depscan, critical (cvss-3.1 9.8))"),
        "{err}"
    );
}

#[test]
fn a_pass_result_with_level_error_is_refused() {
    // Issue 17, case 11: `kind: pass` hid an error-level 9.8 result.
    let sarif = format!(
        r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"depscan"}}}},
      "results":[{{"ruleId":"CVE-C","kind":"pass","level":"error","message":{{"text":"c"}},
        "properties":{{"cvss":"{CVSS_9_8}"}}}}]}}]}}"#
    );
    let p = review(&[("deps.sarif", &sarif)], "[]\n");
    refused(&p, &["sarif-kind-inconsistent"]);
}

//! Snapshots of each release-report reporter (Markdown and HTML) over one fixed report: what
//! an auditor reads, reviewed as a diff whenever a renderer changes. Review changes with
//! `cargo insta review`; a change here also changes FORMAT_VERSION's promise (see
//! `relgate::report::release::FORMAT_VERSION`).

use relgate::replay::{Problem, ReplayReport};
use relgate::report::release::*;

fn s(x: &str) -> String {
    x.to_string()
}

const D1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

/// A refused release: a red gate, a sign-off ignored beside one that counts, an overdue
/// finding, and text from the build holding markup and a right-to-left override.
fn report() -> ReleaseReport {
    ReleaseReport {
        project: s("acme"),
        version: s("1.0.0"),
        unauthenticated: None,
        release: ReleaseFacts {
            subject: format!("sha256:{D1}"),
            decision: s("refused"),
            decided_at: Some(s("2026-11-27 09:10:00 UTC")),
            operator: Some(s("alice@acme.test")),
            signer: Some(s("release@acme.test")),
            key_fingerprint: Some(s("SHA256:releasekeyfingerprint")),
            throwaway_key: false,
            dry_run: false,
            published_to: None,
            artefacts: vec![(s("acme-1.0.0.tar.gz"), 12, s(D2))],
            tool_version: s("0.1.0"),
        },
        checkpoint: Some(CheckpointFacts {
            size: 25,
            head: s(D2),
            time: s("2026-11-27 09:10:00 UTC"),
            signed_by: Some(s("SHA256:releasekeyfingerprint")),
        }),
        runs: vec![RunRow {
            run: 1,
            line: 1,
            started: s("2026-11-27 09:00:00 UTC"),
            operator: Some(s("alice@acme.test")),
            subject: format!("sha256:{D1}"),
            subject_changed: false,
            dry_run: false,
            decision: Some(s("refused")),
            ended: Some(s("2026-11-27 09:10:00 UTC")),
            exit_code: Some(1),
            message: None,
            tally: s("3 green, 2 red, 1 blocked"),
            notifications: vec![s(
                "refused to https://hooks.example.test/relgate (json, signed): not delivered: HTTP 500 after 4 attempt(s)",
            )],
        }],
        deciding_run: 1,
        gates: vec![
            GateRow {
                id: s("unit-tests"),
                kind: s("regression"),
                verdict: s("red"),
                reasons: vec![(s("command-failed"), s("the command exited with status 1"))],
                duration: Some(s("1.5 s")),
                line: Some(4),
                kept_from: None,
                evidence: vec![
                    EvidenceRef {
                        label: s("evidence"),
                        digest: s(D1),
                    },
                    EvidenceRef {
                        label: s("stdout.head"),
                        digest: s(D2),
                    },
                ],
            },
            GateRow {
                id: s("sign"),
                kind: s("sign"),
                verdict: s("blocked"),
                reasons: vec![(s("needs-not-green"), s("waiting on unit-tests"))],
                line: Some(9),
                ..GateRow::default()
            },
        ],
        signoffs: vec![SignoffSection {
            gate: s("manual-regression"),
            role: s("qa"),
            quorum: 1,
            verdict: s("green"),
            counted: vec![Statement {
                principal: s("bob@acme.test"),
                key: s("SHA256:bobkey"),
                time: s("2026-11-27 08:00:00 UTC"),
                comment: s("checklist passed"),
                name: s("manual-regression.bob.json"),
            }],
            rejected: vec![],
            ignored: vec![IgnoredStatement {
                name: s("manual-regression.alice.json"),
                signer: Some(s("alice@acme.test")),
                code: s("approval-by-operator"),
                reason: s("alice@acme.test is the operator of this run"),
            }],
            may_still_sign: vec![],
            problem: None,
        }],
        segregation: Segregation {
            authors: Some(vec![s("dave@acme.test")]),
            authors_source: s("the change record (v0.9.0..HEAD)"),
            operator: Some(s("alice@acme.test")),
            signer: Some(s("release@acme.test")),
            checks: vec![(
                s("manual-regression: sign-offs by these do not count"),
                s("the operator: ignored alice@acme.test (approval-by-operator)"),
            )],
        },
        changes: vec![ChangesSection {
            gate: s("changes"),
            range: Some(s("v0.9.0..HEAD")),
            verdict: s("green"),
            rows: vec![ChangeRow {
                commit: s("59ba9a9444ef"),
                description: s("<script>alert(1)</script></td> fix \u{202e}gpj.exe | *x*"),
                author: s("dave <dave@acme.test>"),
                reviewers: vec![s("Erin <erin@acme.test>")],
                tests: vec![s("tests/feature.txt")],
                date: s("2026-11-26T10:00:00Z"),
            }],
            error: None,
        }],
        findings: vec![FindingsSection {
            gate: s("security-review"),
            verdict: s("red"),
            rows: vec![FindingRow {
                finding: s("R1"),
                tool: s("scanner"),
                severity: Some(s("high")),
                severity_source: Some(s("security-severity 7.5")),
                location: s("src/evil\u{202e}txt.exe:3"),
                message: s("<img src=x onerror=alert(1)>"),
                owner: Some(s("dave@acme.test")),
                ticket: Some(s("SEC-101")),
                due: Some(s("2020-01-20")),
                sla: Some(s("30d")),
                status: Some(s("open")),
                verdict: vec![s("remediation-overdue")],
            }],
            reasons: vec![(s("remediation-overdue"), s("R1 was due 2020-01-20"))],
            warnings: vec![],
        }],
        scans: vec![ScanSection {
            gate: s("virus-scan"),
            verdict: s("green"),
            clamd: s("tcp://127.0.0.1:3310"),
            engine: Some(s("ClamAV 1.4.6")),
            db_version: Some(27777),
            db_date: Some(s("2026-11-27")),
            db_age: Some(s("0d 2h")),
            max_signature_age: Some(s("1d")),
            scanner_error: None,
            files: vec![ScanFile {
                path: s("acme-1.0.0.tar.gz"),
                method: s("instream"),
                size: 12,
                result: s("OK"),
            }],
        }],
        notes: vec![],
        evidence_links: true,
        verification: Verification::Replayed(ReplayReport {
            record: "published/acme/1.0.0/audit".into(),
            project: Some(s("acme")),
            version: Some(s("1.0.0")),
            ok: false,
            lines: 25,
            runs: 1,
            verdicts_rejudged: 5,
            published: false,
            folder_checked: false,
            checkpoints: 2,
            checkpoint_signer: Some(s("release@acme.test (SHA256:releasekeyfingerprint)")),
            trust_root: s("--signers keys/allowed_signers"),
            notes: vec![],
            problem: Some(Problem {
                line: 7,
                message: s("gate unit-tests: recorded verdict does not follow"),
            }),
        }),
    }
}

#[test]
fn markdown_reporter() {
    let md = String::from_utf8(Markdown.render(&report())).expect("utf-8");
    insta::assert_snapshot!(md);
}

#[test]
fn html_reporter() {
    let html = String::from_utf8(Html.render(&report())).expect("utf-8");
    insta::assert_snapshot!(html);
}

#[test]
fn an_embedded_report_says_replay_checks_it_and_names_no_machine() {
    let mut r = report();
    r.verification = Verification::Embedded {
        lines: 25,
        head: D2.to_string(),
    };
    let html = String::from_utf8(Html.render(&r)).expect("utf-8");
    assert!(html.contains("byte for byte"), "{html}");
    assert!(!html.contains("keys/allowed_signers"), "{html}");
}

//! The audited release the report tests read: every kind of gate, one of them red, a sign-off
//! that is ignored beside one that counts, an overdue finding, a real private clamd, a real git
//! history — and text an attacker controls (a commit message, a SARIF message and file name, a
//! sign-off comment) holding markup and a bidirectional control.

use std::path::Path;
use std::process::Command;

use super::common::*;
use relgate::exit;

/// Markup and a right-to-left override, as a hostile build or approver would write them.
pub const HOSTILE: &str = "<script>alert(1)</script></td><b>x";
/// U+202E RIGHT-TO-LEFT OVERRIDE: `evil<U+202E>txt.exe` reads as `evilexe.txt`.
pub const RLO: char = '\u{202E}';

const SARIF: &str = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"scanner","rules":[
 {"id":"R1","properties":{"security-severity":"7.5"}}]}},
 "results":[{"ruleId":"R1","message":{"text":"<script>alert(1)</script></td><b>x"},
 "locations":[{"physicalLocation":{"artifactLocation":{"uri":"src/evil\u202etxt.exe"},"region":{"startLine":3}}}]}]}]}"#;

fn git(p: &Project, args: &[&str], who: &str) {
    let out = Command::new("git")
        .current_dir(p.path())
        .args(args)
        .env("GIT_AUTHOR_NAME", who)
        .env("GIT_AUTHOR_EMAIL", format!("{who}@acme.test"))
        .env("GIT_COMMITTER_NAME", who)
        .env("GIT_COMMITTER_EMAIL", format!("{who}@acme.test"))
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// The project, before any run: keys for the release, alice and bob (QA), a git history with
/// one reviewed change by dave, a SARIF report, a register whose entry is long overdue.
pub fn project() -> Project {
    let p = Project {
        dir: tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir"),
    };
    let release = p.keygen("release");
    let alice = p.keygen("alice");
    let bob = p.keygen("bob");
    p.write(
        "keys/allowed_signers",
        format!("release@acme.test {release}\nalice@acme.test {alice}\nbob@acme.test {bob}\n"),
    );
    p.write("dist/acme-1.0.0.tar.gz", b"the release\n");
    p.write("dist/NOTES.txt", b"notes\n");
    p.write("reports/scan.sarif", SARIF);
    p.write(
        "security/remediations.yaml",
        "- finding: R1\n  owner: dave@acme.test\n  ticket: SEC-101\n  plan: escape the output\n  \
         opened: 2020-01-01\n  due: 2020-01-20\n  status: open\n",
    );
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clamav/dated"),
        &p.join("clamav-db"),
    );
    p.write(
        ".gitignore",
        ".relgate/\npublished/\nclamav-db/\nkeys/\nreports/\n",
    );
    git(&p, &["init", "-q", "-b", "main"], "carol");
    git(&p, &["add", "-A"], "carol");
    git(&p, &["commit", "-q", "-m", "initial"], "carol");
    git(&p, &["tag", "v0.9.0"], "carol");
    p.write("tests/feature.txt", b"test\n");
    git(&p, &["add", "-A"], "dave");
    git(
        &p,
        &[
            "commit",
            "-q",
            "-m",
            &format!("{HOSTILE} fix {RLO}gpj.exe\n\nReviewed-by: Erin <erin@acme.test>"),
        ],
        "dave",
    );
    p.write("pipeline.yaml", pipeline_text("exit 1"));
    p
}

/// The pipeline; `unit_tests` is the regression gate's command (`exit 1`: red).
pub fn pipeline_text(unit_tests: &str) -> String {
    format!(
        "version: 1
project: acme
artefacts:
  - dist/*
signers: keys/allowed_signers
roles:
  qa: [alice@acme.test, bob@acme.test]
changes:
  repo: .
  range: v0.9.0..HEAD
gates:
  unit-tests:
    kind: regression
    run: {unit_tests}
  changes:
    kind: change-record
    test_paths: [\"tests/**\"]
  virus-scan:
    kind: virus-scan
    clamd: {{database: clamav-db}}
  security-review:
    kind: security-review
    findings: [reports/*.sarif]
    register: security/remediations.yaml
    sla: {{critical: 7d, high: 30d, medium: 90d, low: 365d}}
  manual-regression:
    kind: signoff
    role: qa
    quorum: 1
  sign:
    kind: sign
    key: keys/release
    signer: release@acme.test
publish:
  to: published/{{project}}/{{version}}
"
    )
}

/// Run, have alice (who operates the release, so her sign-off cannot count) and bob sign off,
/// and run again: refused (the unit tests and the overdue finding are red).
pub fn refused_release() -> Project {
    let p = project();
    let run = |p: &Project| p.relgate(&["run", "1.0.0", "--as", "alice@acme.test"]);
    expect_code(&run(&p), exit::REFUSED);
    let approve = |who: &str, comment: &str, extra: &[&str]| {
        let mut args = vec![
            "approve",
            "1.0.0",
            "--gate",
            "manual-regression",
            "--as",
            who,
            "--comment",
            comment,
        ];
        let key = format!("keys/{}", who.split('@').next().expect("name"));
        args.extend(["--key", key.as_str()]);
        args.extend(extra);
        expect_code(&p.relgate(&args), exit::SUCCESS);
    };
    approve(
        "alice@acme.test",
        &format!("I ran it myself {HOSTILE} {RLO}"),
        &["--force"],
    );
    approve("bob@acme.test", "manual checklist passed", &[]);
    expect_code(&run(&p), exit::REFUSED);
    p
}

/// Text content of an HTML document as a browser shows it: tags dropped, the five entities
/// decoded. Good enough to look for facts in a DOM dump.
pub fn text_of(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Markdown as text: CommonMark's backslash escapes undone (`\<` is `<`).
pub fn md_text(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut chars = md.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n) = chars.peek()
            && n.is_ascii_punctuation()
        {
            out.push(n);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// The facts every rendering of [`refused_release`]'s report must state, as text.
pub fn assert_facts(text: &str) {
    let must = [
        // The release.
        "acme",
        "1.0.0",
        "refused",
        "alice@acme.test",
        "release@acme.test",
        "sha256:",
        "SHA256:",
        "checkpoint",
        // The timeline: two runs.
        "run 1",
        "run 2",
        // Gates, verdicts, reasons.
        "unit-tests",
        "command-failed",
        "security-review",
        "remediation-overdue",
        "virus-scan",
        "manual-regression",
        // Sign-offs: the one that counts, the one ignored and why.
        "bob@acme.test",
        "manual checklist passed",
        "approval-by-operator",
        // Segregation of duties.
        "dave@acme.test",
        // The change record.
        "Erin <erin@acme.test>",
        // Findings: severity and its source, owner, ticket, due, SLA.
        "high",
        "security-severity 7.5",
        "SEC-101",
        "2020-01-20",
        "30d",
        // Virus scan.
        "ClamAV 1.4.6",
        "27777",
        "2026-11-27",
        "fildes",
        "NOTES.txt",
        // Replay.
        "replay",
    ];
    let missing: Vec<&str> = must.iter().copied().filter(|m| !text.contains(m)).collect();
    assert!(missing.is_empty(), "missing {missing:?} in:\n{text}");
    // Hostile text is shown as text, and the override as a visible escape.
    assert!(text.contains("<script>alert(1)</script>"), "{text}");
    assert!(!text.contains(RLO), "a raw U+202E reached the page");
    assert!(text.contains("\\u{202e}"), "{text}");
}

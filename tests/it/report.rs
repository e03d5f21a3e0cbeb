//! `relgate report`: the auditor's report of a release record or a published release, as one
//! self-contained HTML file and as Markdown, through the real binary.

use std::sync::OnceLock;

use crate::common::*;
use crate::report_common::*;
use relgate::exit;

/// One refused release for the tests that only read it (building it runs clamd and git).
fn refused() -> &'static Project {
    static P: OnceLock<Project> = OnceLock::new();
    P.get_or_init(refused_release)
}

#[test]
fn the_markdown_report_states_every_fact_and_escapes_hostile_text() {
    let p = refused();
    let out = p.relgate(&["report", ".relgate/releases/1.0.0", "--format", "markdown"]);
    expect_code(&out, exit::SUCCESS);
    let md = stdout(&out);
    assert_facts(&md_text(&md));
    // Markup from the build stays text in any Markdown renderer.
    assert!(!md.contains("<script>"), "{md}");
    assert!(!md.contains("</td>"), "{md}");
}

#[test]
fn the_html_report_is_one_self_contained_file_stating_every_fact() {
    let p = refused();
    let out = p.relgate(&["report", ".relgate/releases/1.0.0", "-o", "report.html"]);
    expect_code(&out, exit::SUCCESS);
    let html = p.read("report.html");
    assert_facts(&text_of(&html));
    let lower = html.to_ascii_lowercase();
    // Hostile text never becomes markup.
    assert!(!lower.contains("<script"), "an element from the build");
    assert!(!html.contains(RLO));
    // Self-contained: no script, no external stylesheet, image or font; and a policy that
    // forbids them should anything slip through.
    for banned in [
        "<link", "<img", "<iframe", "src=", "@import", "url(", "http://", "https://",
    ] {
        assert!(!lower.contains(banned), "{banned} in the report");
    }
    assert!(lower.contains("content-security-policy"), "no CSP");
    assert!(lower.contains("@page"), "no print layout");
}

#[test]
fn the_report_is_the_same_bytes_every_time() {
    let p = refused();
    let a = p.relgate(&["report", ".relgate/releases/1.0.0"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = p.relgate(&["report", ".relgate/releases/1.0.0"]);
    expect_code(&a, exit::SUCCESS);
    assert_eq!(a.stdout, b.stdout, "the report depends on the clock");
}

#[test]
fn a_dry_run_report_says_plainly_that_it_is_unauthenticated() {
    let p = project_with("  unit-tests:\n    kind: regression\n    run: \"true\"\n");
    expect_code(&p.relgate(&["run", "1.0.0", "--dry-run"]), exit::SUCCESS);
    let runs = p.join(".relgate/dry-runs/1.0.0");
    let rec = std::fs::read_dir(&runs)
        .expect("dry runs")
        .next()
        .expect("one")
        .expect("entry")
        .path();
    let rec = rec.to_str().expect("utf-8");
    let out = p.relgate(&["report", rec, "--format", "markdown"]);
    // Written, but the record does not verify: exit 1, as replay's.
    expect_code(&out, exit::REFUSED);
    let md = stdout(&out);
    assert!(md.contains("UNAUTHENTICATED"), "{md}");
    assert!(md.contains("throwaway"), "{md}");
    assert!(md.contains("dry run"), "{md}");
}

#[test]
fn a_report_needs_a_trust_root_from_outside_the_record() {
    let p = refused();
    let elsewhere = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(BIN)
        .current_dir(elsewhere.path())
        .arg("report")
        .arg(p.record("1.0.0"))
        .output()
        .expect("run");
    expect_code(&out, exit::CONFIG);
    assert!(stderr(&out).contains("trust root"), "{}", stderr(&out));
    // With one given, it works from anywhere.
    let signers = p.join("keys/allowed_signers");
    let out = std::process::Command::new(BIN)
        .current_dir(elsewhere.path())
        .arg("report")
        .arg(p.record("1.0.0"))
        .args(["--signers"])
        .arg(&signers)
        .args(["--signer", "release@acme.test", "--format", "markdown"])
        .output()
        .expect("run");
    expect_code(&out, exit::SUCCESS);
    assert!(stdout(&out).contains("replay verified"), "{}", stdout(&out));
}

#[test]
fn a_published_release_carries_its_report_and_replay_checks_it_byte_for_byte() {
    let p = project_with("  unit-tests:\n    kind: regression\n    run: \"true\"\n");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    let folder = p.join("published/acme/1.0.0");
    let report = folder.join("audit/report.html");
    let html = std::fs::read_to_string(&report).expect("audit/report.html");
    assert!(text_of(&html).contains("acme 1.0.0 published"), "{html}");
    // It sits beside the evidence it links to.
    assert!(html.contains("href=\"evidence/"), "{html}");
    let replay = |p: &Project| p.relgate(&["replay", "published/acme/1.0.0"]);
    expect_code(&replay(&p), exit::SUCCESS);

    // Anything else in its place is refused: a changed word, a script added.
    let original = html.clone();
    for forged in [
        original.replace("published", "publishd"),
        original.replace("</body>", "<script>alert(1)</script></body>"),
        format!("{original}\n"),
    ] {
        std::fs::write(&report, &forged).expect("write");
        let out = replay(&p);
        expect_code(&out, exit::REFUSED);
        assert!(stderr(&out).contains("report.html"), "{}", stderr(&out));
    }
    // Removed, it is only noted: it is a view of the record, which replay checked.
    std::fs::remove_file(&report).expect("rm");
    let out = replay(&p);
    expect_code(&out, exit::SUCCESS);
    assert!(stdout(&out).contains("report.html"), "{}", stdout(&out));
    std::fs::write(&report, &original).expect("restore");
    expect_code(&replay(&p), exit::SUCCESS);
}

//! The HTML report as a real browser shows it: Debian's `chromium`, headless, with a fresh
//! profile and nothing that talks to the network, dumps the DOM it built from the file, takes a
//! screenshot and prints it to PDF. The DOM must state every fact of a release with a red gate,
//! an ignored sign-off and an overdue finding, and hold no element the build's text smuggled
//! in. (`scripts/install-prereqs.sh` installs chromium.)
//!
//! `RELGATE_REPORT_SCREENSHOT=docs/report.png cargo test --test it report_browser::` also keeps
//! the screenshot (that is how the one in docs/report.md is made).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::report_common::*;
use relgate::exit;

/// Run chromium headless on `page` with `mode` (`--dump-dom`, `--screenshot=…`, …); its stdout.
fn chromium(page: &Path, mode: &[String]) -> Vec<u8> {
    let profile = tempfile::tempdir().expect("profile");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(mode)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium is not installed: run scripts/install-prereqs.sh");
    // A browser that hangs must not hang the suite.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "chromium failed: {:?}", out.status);
    out.stdout
}

#[test]
fn chromium_shows_every_fact_of_the_report_and_no_element_from_the_build() {
    let p = refused_release();
    let out = p.relgate(&["report", ".relgate/releases/1.0.0", "-o", "report.html"]);
    expect_code(&out, exit::SUCCESS);
    let page = p.join("report.html");

    let dom = String::from_utf8(chromium(&page, &["--dump-dom".into()])).expect("utf-8 DOM");
    assert!(dom.contains("<table"), "no tables in the DOM:\n{dom}");
    assert_facts(&text_of(&dom));
    // The browser parsed hostile text as text: no element came of it.
    let lower = dom.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "a script element in the DOM");
    assert!(
        !lower.contains("<b>x"),
        "markup from the build became an element"
    );
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;/td&gt;&lt;b&gt;x"),
        "the hostile text is not shown as text"
    );

    let png = p.join("report.png");
    chromium(
        &page,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1000,3000".into(),
            "--hide-scrollbars".into(),
        ],
    );
    let bytes = std::fs::read(&png).expect("screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 20_000,
        "a blank screenshot? {} bytes",
        bytes.len()
    );
    if let Some(keep) = std::env::var_os("RELGATE_REPORT_SCREENSHOT") {
        std::fs::copy(&png, &keep).expect("keep the screenshot");
    }

    // Printed: A4 pages (595 × 842 points, as Chromium rounds them).
    let pdf = p.join("report.pdf");
    chromium(
        &page,
        &[
            format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer".into(),
        ],
    );
    let bytes = std::fs::read(&pdf).expect("pdf");
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    let text = String::from_utf8_lossy(&bytes);
    let boxes: Vec<&str> = text
        .match_indices("/MediaBox [0 0 ")
        .map(|(i, _)| &text[i..])
        .collect();
    assert!(!boxes.is_empty(), "no page in the PDF");
    for b in boxes {
        let dims: Vec<f64> = b["/MediaBox [0 0 ".len()..]
            .split(']')
            .next()
            .expect("box")
            .split_whitespace()
            .map(|n| n.parse().expect("number"))
            .collect();
        assert!(
            (dims[0] - 595.3).abs() < 2.0 && (dims[1] - 841.9).abs() < 2.0,
            "not an A4 page: {dims:?}"
        );
    }
}

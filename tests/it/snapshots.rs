//! Snapshots of what users and CI servers read: rendered configuration diagnostics, the JSON
//! document of a run and its JUnit report. Temp paths, digests and times are redacted.

use crate::common::*;
use relgate::exit;

/// Replace what differs between runs: the temp folder, sha256 digests, durations.
fn redact(p: &Project, text: &str) -> String {
    let root = p.path().to_str().expect("utf8");
    let mut out = text.replace(root, "[ROOT]");
    out = durations(&out);
    // 64-hex digests (subjects, evidence).
    let mut cleaned = String::new();
    let mut run = String::new();
    for c in out.chars() {
        if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
            run.push(c);
        } else {
            flush(&mut cleaned, &mut run);
            cleaned.push(c);
        }
    }
    flush(&mut cleaned, &mut run);
    out = cleaned;
    out
}

/// `"duration_ms": 123` and `time="0.123"` become `[MS]` and `[TIME]`.
fn durations(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let json = rest.find("\"duration_ms\": ");
        let xml = rest.find("time=\"");
        let (at, key, placeholder, end) = match (json, xml) {
            (Some(j), Some(x)) if x < j => (x, "time=\"", "[TIME]", '"'),
            (Some(j), _) => (j, "\"duration_ms\": ", "[MS]", ','),
            (None, Some(x)) => (x, "time=\"", "[TIME]", '"'),
            (None, None) => break,
        };
        let start = at + key.len();
        out.push_str(&rest[..start]);
        out.push_str(placeholder);
        let value_len = rest[start..]
            .find([end, '\n'])
            .unwrap_or(rest.len() - start);
        rest = &rest[start + value_len..];
    }
    out.push_str(rest);
    out
}

fn flush(out: &mut String, run: &mut String) {
    if run.len() == 64 {
        out.push_str("[SHA256]");
    } else {
        out.push_str(run);
    }
    run.clear();
}

#[test]
fn check_renders_every_problem_with_position_key_path_and_caret() {
    let p = Project::new();
    p.release_key();
    p.write("dist/a.txt", b"a\n");
    p.write(
        "pipeline.yaml",
        "version: 1
project: acme
artefacts: [dist/*]
signers: keys/allowed_signers
gates:
  unit:
    kind: regression
    run: cargo test
    timout: 30m
  manual:
    kind: signoff
    needs: [unti]
    role: qa
  sign:
    kind: sign
    key: keys/release
    signer: release@acme.test
",
    );
    let out = p.relgate(&["check"]);
    expect_code(&out, exit::CONFIG);
    insta::assert_snapshot!(redact(&p, &stderr(&out)));
}

#[test]
fn json_document_and_junit_report_of_a_refused_run() {
    let p = project_with(
        "  ok:\n    kind: regression\n    run: \"true\"\n  bad:\n    kind: regression\n    run: exit 2\n  after:\n    kind: regression\n    needs: [bad]\n    run: \"true\"\n",
    );
    let out = p.relgate(&["run", "1.0.0", "--format", "json", "--junit", "gates.xml"]);
    expect_code(&out, exit::REFUSED);
    insta::assert_snapshot!("run_json", redact(&p, &stdout(&out)));
    let xml = p.read("gates.xml");
    insta::assert_snapshot!("run_junit", redact(&p, &xml));
}

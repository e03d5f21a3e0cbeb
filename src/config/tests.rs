//! Validator tests through [`super::load`], asserting on the diagnostics as data.

use std::fs;

use super::{Diagnostic, load};

fn load_text(text: &str) -> Vec<Diagnostic> {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir_all(t.path().join("dist")).unwrap();
    fs::write(t.path().join("dist/a.tar.gz"), b"a").unwrap();
    fs::write(t.path().join("signers"), b"").unwrap();
    let file = t.path().join("pipeline.yaml");
    fs::write(&file, text).unwrap();
    load(&file, None).unwrap_err().0
}

fn find<'a>(d: &'a [Diagnostic], key_path: &str) -> &'a Diagnostic {
    d.iter()
        .find(|x| x.key_path == key_path)
        .unwrap_or_else(|| panic!("no problem at {key_path}: {d:#?}"))
}

const HEAD: &str = "version: 1\nproject: p\nartefacts: [dist/*.tar.gz]\nsigners: signers\n";

#[test]
fn every_problem_is_collected_with_position_and_help() {
    let d = load_text(&format!(
        "{HEAD}gates:\n  t:\n    kind: regression\n    run: x\n    timout: 5m\n  s:\n    kind: sign\n    key: k\n    signer: me\n    needs: [tt]\n"
    ));
    let typo = find(&d, "gates.t.timout");
    assert_eq!((typo.line, typo.column), (9, 5));
    assert_eq!(typo.help.as_deref(), Some("did you mean `timeout`?"));
    assert_eq!(typo.source_line.as_deref(), Some("    timout: 5m"));
    let need = find(&d, "gates.s.needs[0]");
    assert_eq!(need.help.as_deref(), Some("did you mean `t`?"));
    // The stubbed signers parser finds no principal, so the signer is reported too.
    assert!(d.len() >= 2);
}

#[test]
fn duplicates_keep_the_first_and_report_the_second() {
    let d = load_text(&format!("{HEAD}version: 1\ngates: {{}}\n"));
    let dup = find(&d, "version");
    assert_eq!(dup.line, 5);
    assert!(dup.message.contains("first written at line 1"), "{dup:?}");
    assert!(find(&d, "gates").message.contains("at least one gate"));
}

#[test]
fn cycles_are_named_once() {
    let d = load_text(&format!(
        "{HEAD}gates:\n  a:\n    kind: sign\n    key: k\n    signer: s\n    needs: [b]\n  b:\n    kind: regression\n    run: x\n    needs: [a]\n"
    ));
    let cycles: Vec<_> = d.iter().filter(|x| x.message.contains("cycle")).collect();
    assert_eq!(cycles.len(), 1, "{d:#?}");
    assert!(
        cycles[0].message.ends_with("a -> b -> a"),
        "{:?}",
        cycles[0]
    );
}

#[test]
fn empty_and_non_mapping_files() {
    let d = load_text("");
    assert!(d[0].message.contains("found an empty file"), "{d:?}");
    let d = load_text("- a\n- b\n");
    assert!(d[0].message.contains("found a list"), "{d:?}");
}

#[test]
fn a_config_file_over_the_limit_is_not_read() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("pipeline.yaml");
    let f = fs::File::create(&file).unwrap();
    f.set_len(super::MAX_FILE_BYTES + 1).unwrap();
    let d = load(&file, None).unwrap_err().0;
    assert!(d[0].message.contains("limited to"), "{d:?}");
    assert_eq!(d[0].line, 0);
}

#[test]
fn plan_lists_gates_with_needs_kinds_and_checks() {
    use crate::model::*;
    let gate = |id: &str, needs: &[&str], kind: GateKind| GateSpec {
        id: id.into(),
        needs: needs.iter().map(|s| s.to_string()).collect(),
        timeout_secs: 1800,
        when: None,
        kind,
    };
    let p = Pipeline {
        file: "/r/pipeline.yaml".into(),
        root: "/r".into(),
        project: "acme".into(),
        state_dir: "/r/.relgate".into(),
        artefacts: vec!["dist/*.tar.gz".into()],
        signers: Some("/r/keys/allowed_signers".into()),
        roles: Default::default(),
        changes: None,
        gates: vec![
            gate(
                "unit",
                &[],
                GateKind::Regression(RegressionSpec {
                    run: Command::Shell("cargo test".into()),
                    dir: "/r".into(),
                    env: Default::default(),
                    junit: vec!["j/*.xml".into()],
                    min_tests: Some(100),
                    inputs: None,
                }),
            ),
            gate(
                "scan",
                &["unit"],
                GateKind::VirusScan(VirusScanSpec {
                    clamd: ClamdAddr::Tcp("127.0.0.1:3310".into()),
                    max_signature_age_secs: Some(86_400),
                    max_size: 100 << 20,
                    concurrency: 4,
                }),
            ),
            gate(
                "sign",
                &["scan"],
                GateKind::Sign(SignSpec {
                    key: "${K}".into(),
                    signer: "rel@acme.test".into(),
                }),
            ),
        ],
        publish: None,
        share: None,
    };
    let text = super::plan_text(&p);
    let expected = [
        "1. unit (regression)",
        "   checks: `cargo test` (sh -c) in . exits 0; JUnit reports j/*.xml show no failure; at least 100 tests ran",
        "   timeout: 30m",
        "2. scan (virus-scan)",
        "   needs: unit",
        "   checks: clamd at tcp://127.0.0.1:3310 answers OK for every staged artefact (up to 100 MiB, 4 at a time); signatures newer than 1d",
        "   checks: SHA256SUMS is signed with ${K} and verifies for `rel@acme.test` under keys/allowed_signers",
    ];
    for line in expected {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
}

//! `approve` tells the truth at once (issue 9, point 5): a sign-off that will not count — an
//! author's, the operator's, the release signer's, one outside the role, with a key that is not
//! allowed now, for another subject — is refused with its reason and exit 1, and nothing is
//! written unless `--force` says so; `status` lists every statement that does not count, and why.

use std::path::Path;
use std::process::Command;

use crate::common::*;
use relgate::exit;

fn git(dir: &Path, who: &str, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            &format!("user.name={who}"),
            "-c",
            &format!("user.email={who}@acme.test"),
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// QA is alice, erin, dave (whose key expired) and the release signer; alice wrote the only
/// change of the range. The sign-off bars authors, the operator and the signer (the default).
fn project() -> Project {
    let p = Project::new();
    let mut signers = String::new();
    for who in ["release", "alice", "bob", "carol", "erin"] {
        let key = p.keygen(who);
        signers.push_str(&format!("{who}@acme.test {key}\n"));
    }
    let dave = p.keygen("dave");
    signers.push_str(&format!(
        "dave@acme.test valid-before=\"20200101\" {dave}\n"
    ));
    p.write("keys/allowed_signers", signers);
    p.write("dist/a.txt", b"a\n");
    let gates = "  unit-tests:\n    kind: regression\n    run: \"true\"\n  manual:\n    kind: signoff\n    needs: [unit-tests]\n    role: qa\n";
    let text = pipeline(gates).replace(
        "signers: keys/allowed_signers\n",
        "signers: keys/allowed_signers\nroles:\n  qa: [alice@acme.test, erin@acme.test, dave@acme.test, release@acme.test]\nchanges:\n  range: HEAD\n",
    );
    p.write("pipeline.yaml", text);
    p.write(".gitignore", ".relgate/\npublished/\n");
    git(p.path(), "alice", &["init", "-q"]);
    git(p.path(), "alice", &["add", "-A"]);
    git(p.path(), "alice", &["commit", "-q", "-m", "the release"]);
    p
}

fn approve(p: &Project, who: &str, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let key = format!("keys/{who}");
    let principal = format!("{who}@acme.test");
    let mut args = vec![
        "approve", "1.0.0", "--gate", "manual", "--key", &key, "--as", &principal,
    ];
    args.extend_from_slice(extra);
    p.relgate_env(&args, env)
}

fn approvals(p: &Project) -> usize {
    std::fs::read_dir(p.record("1.0.0").join("approvals"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[track_caller]
fn refused(out: &std::process::Output, code: &str, reason: &str) {
    expect_code(out, exit::REFUSED);
    let err = stderr(out);
    assert!(
        err.contains(&format!("relgate: approve refused: {code}: {reason}")),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
}

#[test]
fn a_sign_off_that_would_not_count_is_refused_with_its_reason() {
    let p = project();
    let bob = [("RELGATE_OPERATOR", "bob@acme.test")];
    expect_code(&p.relgate_env(&["run", "1.0.0"], &bob), exit::PENDING);

    refused(
        &approve(&p, "alice", &[], &[]),
        "approval-by-author",
        "alice@acme.test wrote (authored or co-authored) a change in changes.range",
    );
    refused(
        &approve(&p, "release", &[], &[]),
        "approval-by-release-signer",
        "release@acme.test is the sign gate's signer",
    );
    refused(
        &approve(&p, "carol", &[], &[]),
        "approval-outside-role",
        "carol@acme.test is not in role \"qa\" of gate \"manual\"",
    );
    refused(
        &approve(&p, "dave", &[], &[]),
        "approval-signer-not-allowed",
        "key SHA256:",
    );
    // The operator as this shell names it.
    refused(
        &approve(&p, "erin", &[], &[("RELGATE_OPERATOR", "erin@acme.test")]),
        "approval-by-operator",
        "erin@acme.test is the operator of this run",
    );
    // A subject other than the staged one.
    let other = format!("sha256:{}", "0".repeat(64));
    refused(
        &approve(&p, "erin", &["--subject", &other], &[]),
        "approval-other-subject",
        &format!("it is for subject {other}, not the staged"),
    );
    assert_eq!(approvals(&p), 0, "nothing was written");

    // erin may: not an author, not the operator (bob ran it), not the signer.
    expect_code(&approve(&p, "erin", &[], &[]), exit::SUCCESS);
    assert_eq!(approvals(&p), 2);
    expect_code(&p.relgate_env(&["run", "1.0.0"], &bob), exit::SUCCESS);
}

#[test]
fn the_operator_recorded_by_the_latest_run_cannot_approve() {
    let p = project();
    let erin = [("RELGATE_OPERATOR", "erin@acme.test")];
    expect_code(&p.relgate_env(&["run", "1.0.0"], &erin), exit::PENDING);
    // Another shell, without RELGATE_OPERATOR: the record says who ran the release.
    refused(
        &approve(&p, "erin", &[], &[]),
        "approval-by-operator",
        "erin@acme.test is the operator of this run",
    );
}

#[test]
fn force_writes_it_anyway_and_status_lists_every_statement_that_does_not_count() {
    let p = project();
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    let out = approve(&p, "alice", &["--force"], &[]);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stderr(&out)
            .contains("warning: written with --force, but it will not count: approval-by-author"),
        "{}",
        stderr(&out)
    );
    assert_eq!(approvals(&p), 2);
    // A statement dropped in without its signature.
    p.write(".relgate/releases/1.0.0/approvals/stray.json", "{}");

    let human = p.relgate(&["status", "1.0.0"]);
    expect_code(&human, exit::SUCCESS);
    let text = stdout(&human);
    assert!(
        text.contains(
            "sign-offs now: 0 of 1 counted; may still sign: dave@acme.test, erin@acme.test"
        ),
        "{text}"
    );
    assert!(
        text.contains("(alice@acme.test): approval-by-author: alice@acme.test wrote (authored or co-authored) a change in changes.range"),
        "{text}"
    );
    assert!(
        text.contains("ignored stray.json (unknown signer): approval-unpaired"),
        "{text}"
    );

    let json = p.relgate(&["status", "1.0.0", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let manual = doc["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .find(|g| g["id"] == "manual")
        .expect("manual");
    let codes: Vec<&str> = manual["signoffs"]["ignored"]
        .as_array()
        .expect("ignored")
        .iter()
        .filter_map(|i| i["code"].as_str())
        .collect();
    assert_eq!(
        codes,
        ["approval-unpaired", "approval-by-author"],
        "{manual}"
    );

    // The next run agrees: still pending, the author's sign-off ignored.
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::PENDING);
    assert!(
        stderr(&out).contains("approval-by-author"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn approve_takes_the_record_from_the_state_folder_run_used() {
    let p = project();
    let bob = [("RELGATE_OPERATOR", "bob@acme.test")];
    let state = p.join("elsewhere");
    let state = state.to_str().expect("utf8");
    expect_code(
        &p.relgate_env(&["--state", state, "run", "1.0.0"], &bob),
        exit::PENDING,
    );
    // Without --state there is no such release here.
    expect_code(&approve(&p, "erin", &[], &[]), exit::CONFIG);
    let out = p.relgate(&[
        "--state",
        state,
        "approve",
        "1.0.0",
        "--gate",
        "manual",
        "--key",
        "keys/erin",
        "--as",
        "erin@acme.test",
    ]);
    expect_code(&out, exit::SUCCESS);
    let written = std::fs::read_dir(p.join("elsewhere/releases/1.0.0/approvals"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(written, 2, "the pair is in the state folder's record");
    expect_code(
        &p.relgate_env(&["--state", state, "run", "1.0.0"], &bob),
        exit::SUCCESS,
    );
}

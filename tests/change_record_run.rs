//! The change record through the binary: a real git history in the project, the gate's verdict,
//! `change-record.md` in the record and in `audit/`, and the rows in `status`.

mod common;

use std::process::Command;

use common::*;
use relgate::exit;

fn git(p: &Project, args: &[&str], author: &str) {
    let out = Command::new("git")
        .current_dir(p.path())
        .args(args)
        .env("GIT_AUTHOR_NAME", author)
        .env("GIT_AUTHOR_EMAIL", format!("{author}@acme.test"))
        .env("GIT_COMMITTER_NAME", author)
        .env("GIT_COMMITTER_EMAIL", format!("{author}@acme.test"))
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn project() -> Project {
    let p = Project::new();
    p.release_key();
    p.write("dist/a.txt", b"a\n");
    p.write(".gitignore", ".relgate/\npublished/\n");
    git(&p, &["init", "-q", "-b", "main"], "carol");
    git(&p, &["add", "-A"], "carol");
    git(&p, &["commit", "-q", "-m", "initial"], "carol");
    git(&p, &["tag", "v1.0.0"], "carol");
    p.write("src/lib.txt", b"feature\n");
    p.write("tests/feature.txt", b"test\n");
    git(&p, &["add", "-A"], "dave");
    git(
        &p,
        &[
            "commit",
            "-q",
            "-m",
            "add the feature\n\nReviewed-by: Erin <erin@acme.test>",
        ],
        "dave",
    );
    p
}

fn with_gate(p: &Project) {
    let gates = "  changes:\n    kind: change-record\n    test_paths: [\"tests/**\"]\n";
    let text = pipeline(gates).replace(
        "gates:\n",
        "changes:\n  repo: .\n  range: v1.0.0..HEAD\ngates:\n",
    );
    p.write("pipeline.yaml", text);
}

#[test]
fn a_reviewed_and_tested_history_is_green_and_listed() {
    let p = project();
    with_gate(&p);
    let out = p.relgate(&["run", "1.1.0"]);
    expect_code(&out, exit::SUCCESS);
    let md = p.read(".relgate/releases/1.1.0/change-record.md");
    assert!(md.contains("add the feature"), "{md}");
    assert!(md.contains("erin@acme.test"), "{md}");
    assert!(
        p.join("published/acme/1.1.0/audit/change-record.md")
            .is_file()
    );
    let status = p.relgate(&["status", "1.1.0"]);
    expect_code(&status, exit::SUCCESS);
    assert!(
        stdout(&status).contains("add the feature"),
        "{}",
        stdout(&status)
    );
    let json = p.relgate(&["status", "1.1.0", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let gate = doc["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .find(|g| g["id"] == "changes")
        .expect("gate");
    assert_eq!(gate["changes"].as_array().expect("rows").len(), 1);
}

#[test]
fn an_unreviewed_change_and_a_packager_author_are_red() {
    let p = project();
    p.write("src/more.txt", b"more\n");
    git(&p, &["add", "-A"], "dave");
    git(&p, &["commit", "-q", "-m", "unreviewed change"], "dave");
    with_gate(&p);
    let out = p.relgate_env(&["run", "1.1.0"], &[("RELGATE_OPERATOR", "dave@acme.test")]);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(err.contains("change-unreviewed"), "{err}");
    assert!(err.contains("packager-authored"), "{err}");
    assert!(!p.join("published").exists());
    expect_code(
        &p.relgate(&["replay", p.record("1.1.0").to_str().expect("utf8")]),
        exit::SUCCESS,
    );
}

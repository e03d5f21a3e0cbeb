//! The change record through the binary: a real git history in the project, the gate's verdict,
//! `change-record.md` in the record and in `audit/`, and the rows in `status`; then the ways a
//! build could talk the gate into green (issue 17), each made with real git commands.

use std::process::Command;

use crate::common::*;
use relgate::exit;

fn git(p: &Project, args: &[&str], author: &str) -> String {
    git_as(p, args, author, author)
}

/// Run git in the project as `author` (`name` gives `name@acme.test`; a full address is used as
/// it is) with `committer` as the committer; returns stdout, trimmed.
fn git_as(p: &Project, args: &[&str], author: &str, committer: &str) -> String {
    let email = |who: &str| {
        if who.contains('@') {
            who.to_string()
        } else {
            format!("{who}@acme.test")
        }
    };
    let out = Command::new("git")
        .current_dir(p.path())
        .args(args)
        .env("GIT_AUTHOR_NAME", author)
        .env("GIT_AUTHOR_EMAIL", email(author))
        .env("GIT_COMMITTER_NAME", committer)
        .env("GIT_COMMITTER_EMAIL", email(committer))
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
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
    with_range(p, "v1.0.0..HEAD");
}

fn with_range(p: &Project, range: &str) {
    let gates = "  changes:\n    kind: change-record\n    test_paths: [\"tests/**\"]\n";
    let text = pipeline(gates).replace(
        "gates:\n",
        &format!("changes:\n  repo: .\n  range: {range}\ngates:\n"),
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

// ---- Issue 17: a history the gate must not be talked into accepting. ----

/// Review and test trailers that pass the gate.
const REVIEWED: &str = "\n\nReviewed-by: Erin <erin@acme.test>\nTest: covered";

/// Commit `file` (its content is the message) as `author`; returns the commit id.
fn commit(p: &Project, author: &str, file: &str, message: &str) -> String {
    p.write(file, format!("{message}\n"));
    git(p, &["add", "--", file], author);
    git(p, &["commit", "-q", "-m", message], author);
    git(p, &["rev-parse", "HEAD"], author)
}

/// `relgate run VERSION` is refused (exit 1), nothing is published, and replay derives the same
/// verdicts from the record; returns the run's stderr.
#[track_caller]
fn refused(p: &Project, version: &str, env: &[(&str, &str)]) -> String {
    let out = p.relgate_env(&["run", version], env);
    expect_code(&out, exit::REFUSED);
    assert!(!p.join("published").exists());
    let record = p.record(version);
    let replay = p.relgate(&["replay", record.to_str().expect("utf8")]);
    expect_code(&replay, exit::SUCCESS);
    stderr(&out)
}

/// A refusal reason with `code` names commit `hash`.
#[track_caller]
fn assert_reason(err: &str, code: &str, hash: &str) {
    let short = &hash[..12];
    assert!(
        err.split("; ")
            .any(|r| r.contains(&format!("{code}: ")) && r.contains(short)),
        "no {code} for {short} in\n{err}"
    );
}

/// Some evidence file of the release record holds `text`.
fn evidence_holds(p: &Project, version: &str, text: &str) -> bool {
    std::fs::read_dir(p.record(version).join("evidence"))
        .expect("evidence")
        .any(|e| std::fs::read_to_string(e.expect("entry").path()).is_ok_and(|s| s.contains(text)))
}

#[test]
fn a_merge_carrying_its_own_unreviewed_change_is_judged() {
    let p = project();
    git(&p, &["checkout", "-q", "-b", "topic"], "dave");
    commit(
        &p,
        "dave",
        "tests/topic.txt",
        &format!("topic work{REVIEWED}"),
    );
    git(&p, &["checkout", "-q", "main"], "dave");
    commit(&p, "frank", "src/main.txt", &format!("main work{REVIEWED}"));
    git(
        &p,
        &["merge", "-q", "--no-ff", "--no-commit", "topic"],
        "dave",
    );
    p.write("src/backdoor.txt", b"nobody reviewed this\n");
    git(&p, &["add", "src/backdoor.txt"], "dave");
    git(&p, &["commit", "-q", "-m", "Merge branch topic"], "dave");
    let merge = git(&p, &["rev-parse", "HEAD"], "dave");
    with_gate(&p);
    let err = refused(&p, "1.1.0", &[]);
    assert_reason(&err, "change-unreviewed", &merge);
    assert_reason(&err, "change-untested", &merge);
    let md = p.read(".relgate/releases/1.1.0/change-record.md");
    assert!(md.contains(&format!("`{}` (merge)", &merge[..12])), "{md}");

    // Reviewed and tested like any commit, the merge is accepted.
    let message = format!("Merge branch topic{REVIEWED}");
    git(&p, &["commit", "-q", "--amend", "-m", &message], "dave");
    expect_code(&p.relgate(&["run", "1.1.1"]), exit::SUCCESS);
}

#[test]
fn a_replace_ref_cannot_swap_an_unreviewed_commit_for_a_reviewed_copy() {
    let p = project();
    let sneaky = commit(&p, "dave", "src/sneaky.txt", "sneaky change");
    let text = git(&p, &["cat-file", "commit", &sneaky], "dave");
    p.write(
        "copy.txt",
        format!("{text}\n\nReviewed-by: Erin <erin@acme.test>\nTest: yes\n"),
    );
    let copy = git(
        &p,
        &["hash-object", "-t", "commit", "-w", "copy.txt"],
        "dave",
    );
    git(&p, &["replace", &sneaky, &copy], "dave");
    let seen = git(&p, &["log", "-1", "--format=%B"], "dave");
    assert!(seen.contains("Reviewed-by"), "plain git shows the copy");
    with_gate(&p);
    let err = refused(&p, "1.1.0", &[]);
    assert_reason(&err, "change-unreviewed", &sneaky);
    assert!(evidence_holds(&p, "1.1.0", "\"replace_objects\":false"));
    assert!(evidence_holds(&p, "1.1.0", "\"graft_file\":\"/dev/null\""));
}

#[test]
fn a_grafts_file_cannot_cut_an_unreviewed_commit_out_of_the_history() {
    let p = project();
    let before = git(&p, &["rev-parse", "HEAD"], "dave");
    let sneaky = commit(&p, "dave", "src/sneaky.txt", "sneaky change");
    let after = commit(&p, "dave", "tests/more.txt", &format!("more{REVIEWED}"));
    p.write(".git/info/grafts", format!("{after} {before}\n"));
    let seen = git(&p, &["log", "--format=%H"], "dave");
    assert!(!seen.contains(&sneaky), "plain git skips it");
    with_gate(&p);
    let err = refused(&p, "1.1.0", &[]);
    assert_reason(&err, "change-unreviewed", &sneaky);
}

#[test]
fn a_shallow_history_is_refused() {
    // A hand-written `shallow` file cuts the newest commit off from the unreviewed one.
    let p = project();
    commit(&p, "dave", "src/sneaky.txt", "sneaky change");
    let after = commit(&p, "dave", "tests/more.txt", &format!("more{REVIEWED}"));
    p.write(".git/shallow", format!("{after}\n"));
    with_gate(&p);
    let err = refused(&p, "1.1.0", &[]);
    assert!(err.contains("change-history-shallow: "), "{err}");

    // A shallow clone whose boundary lies above the unreviewed commit.
    std::fs::remove_file(p.join(".git/shallow")).expect("unshallow");
    let clone = Project::new();
    clone.release_key();
    clone.write("dist/a.txt", b"a\n");
    let url = format!("file://{}", p.path().display());
    let out = Command::new("git")
        .args(["clone", "-q", "--depth", "1", &url])
        .arg(clone.join("repo"))
        .output()
        .expect("git clone");
    assert!(out.status.success(), "{out:?}");
    let gates = "  changes:\n    kind: change-record\n    test_paths: [\"tests/**\"]\n";
    let text = pipeline(gates).replace(
        "gates:\n",
        "changes:\n  repo: repo\n  range: HEAD\ngates:\n",
    );
    clone.write("pipeline.yaml", text);
    let err = refused(&clone, "1.1.0", &[]);
    assert!(err.contains("change-history-shallow: "), "{err}");
}

#[test]
fn co_authors_committers_and_plus_addresses_count_as_the_same_people() {
    let p = project();
    let paired = commit(
        &p,
        "dave",
        "tests/pair.txt",
        "pair work\n\nCo-authored-by: Erin <erin@acme.test>\nReviewed-by: Erin <erin@acme.test>",
    );
    let with_operator = commit(
        &p,
        "dave",
        "tests/op.txt",
        "with the operator\n\nCo-authored-by: Olga <olga@acme.test>\nReviewed-by: Erin <erin@acme.test>\nTest: yes",
    );
    p.write("tests/applied.txt", b"applied\n");
    git(&p, &["add", "-A"], "dave");
    let message = format!("applied by the operator{REVIEWED}");
    git_as(&p, &["commit", "-q", "-m", &message], "dave", "olga");
    let committed = git(&p, &["rev-parse", "HEAD"], "dave");
    let plus = commit(
        &p,
        "olga+ci@acme.test",
        "tests/plus.txt",
        &format!("under a plus address{REVIEWED}"),
    );
    let with_signer = commit(
        &p,
        "dave",
        "tests/signer.txt",
        "with the release signer\n\nCo-authored-by: Release <Release@acme.test.>\nReviewed-by: Erin <erin@acme.test>\nTest: yes",
    );
    with_gate(&p);
    let err = refused(&p, "1.1.0", &[("RELGATE_OPERATOR", "olga@acme.test")]);
    assert_reason(&err, "change-self-reviewed", &paired);
    for hash in [&with_operator, &committed, &plus, &with_signer] {
        assert_reason(&err, "packager-authored", hash);
    }
}

#[test]
fn a_reviewer_must_be_a_well_formed_principal_other_than_the_author() {
    let p = project();
    let cases = [
        ("Reviewed-by: yes", "change-identity-malformed"),
        ("Reviewed-by: Erin", "change-identity-malformed"),
        ("Reviewed-by: erin@acme.test", "change-identity-malformed"),
        (
            "Reviewed-by: Erin <erin@acme.test",
            "change-identity-malformed",
        ),
        (
            "Reviewed-by: Erin <mailto:erin@acme.test>",
            "change-identity-malformed",
        ),
        (
            "Reviewed-by: Dave <dave+x@acme.test>",
            "change-self-reviewed",
        ),
        (
            "Reviewed-by: Dave <DAVE@acme.test.>",
            "change-self-reviewed",
        ),
    ];
    let commits: Vec<(String, &str)> = cases
        .iter()
        .enumerate()
        .map(|(i, (trailer, code))| {
            let message = format!("change {i}\n\n{trailer}\nTest: yes");
            (
                commit(&p, "dave", &format!("src/c{i}.txt"), &message),
                *code,
            )
        })
        .collect();
    with_gate(&p);
    let err = refused(&p, "1.1.0", &[]);
    for (hash, code) in &commits {
        assert_reason(&err, code, hash);
    }
}

#[test]
fn an_empty_or_reversed_range_is_red_and_a_symmetric_one_is_refused() {
    let p = project();
    with_range(&p, "HEAD..HEAD");
    let err = refused(&p, "1.1.0", &[]);
    assert!(err.contains("change-range-empty: "), "{err}");
    with_range(&p, "HEAD..v1.0.0");
    let err = refused(&p, "1.1.1", &[]);
    assert!(err.contains("change-range-start-not-ancestor: "), "{err}");
    with_range(&p, "v1.0.0...HEAD");
    let out = p.relgate(&["check"]);
    expect_code(&out, exit::CONFIG);
    assert!(stderr(&out).contains("changes.range"), "{}", stderr(&out));
}

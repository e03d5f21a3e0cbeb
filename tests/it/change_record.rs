//! The change-record gate over real git repositories made in temp folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::library;
use relgate::gates::change_record::MARKDOWN_FILE;
use relgate::gates::{self, JudgeContext, Outcome, Verdict};
use relgate::model::{ChangeRecordSpec, Changes, GateKind, GateSpec, Pipeline, SignSpec};
use relgate::record::Record;
use relgate::stage;

const VERSION: &str = "1.0.0";

struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    repo: PathBuf,
}

impl Repo {
    /// A repository with a tagged base commit `v0.9.0`.
    fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let repo = root.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        let r = Repo {
            _tmp: tmp,
            root,
            repo,
        };
        r.git(&["init", "-q", "-b", "main"], "ci");
        r.git(&["commit", "-q", "--allow-empty", "-m", "base"], "ci");
        r.git(&["tag", "v0.9.0"], "ci");
        r
    }

    fn git(&self, args: &[&str], author: &str) -> String {
        let out = Command::new("git")
            .current_dir(&self.repo)
            .args(args)
            .env("GIT_AUTHOR_NAME", author)
            .env("GIT_AUTHOR_EMAIL", format!("{author}@x.test"))
            .env("GIT_COMMITTER_NAME", "ci")
            .env("GIT_COMMITTER_EMAIL", "ci@x.test")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Commit `file` (written with unique content) by `author` with `message`; returns the hash.
    fn commit(&self, author: &str, file: &str, message: &str) -> String {
        let path = self.repo.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{message}\n")).unwrap();
        self.git(&["add", "--", file], author);
        self.git(&["commit", "-q", "-m", message], author);
        self.git(&["rev-parse", "HEAD"], author)
    }

    fn pipeline(&self) -> Pipeline {
        std::fs::create_dir_all(self.root.join("dist")).unwrap();
        std::fs::write(self.root.join("dist/app.txt"), b"app\n").unwrap();
        let gates = vec![
            GateSpec {
                id: "change-record".into(),
                needs: vec![],
                timeout_secs: 3600,
                when: None,
                kind: GateKind::ChangeRecord(ChangeRecordSpec {
                    require_reviewer: true,
                    require_tests: true,
                    test_paths: vec!["tests/**".into()],
                }),
            },
            GateSpec {
                id: "sign".into(),
                needs: vec![],
                timeout_secs: 3600,
                when: None,
                kind: GateKind::Sign(SignSpec {
                    key: "k".into(),
                    signer: "release@x.test".into(),
                }),
            },
        ];
        Pipeline {
            changes: Some(Changes {
                repo: self.repo.clone(),
                range: "v0.9.0..HEAD".into(),
            }),
            ..library::pipeline(&self.root, "acme", &["dist/*.txt"], gates)
        }
    }
    /// Collect and judge; returns the evidence, the verdict and the record.
    fn run(&self, operator: Option<&str>) -> (serde_json::Value, Verdict, Record) {
        let pipeline = self.pipeline();
        let record = Record::new(self.root.join(".relgate/releases").join(VERSION));
        let files = stage::resolve(&self.root, &pipeline.artefacts).unwrap();
        let staged = stage::stage(&self.root, &files, &record.dir.join("staging"), 1).unwrap();
        let (mut cx, _tx) =
            library::collect_context(pipeline.clone(), record.clone(), staged.clone(), VERSION);
        cx.operator = operator.map(str::to_string);
        let gate = pipeline.gate("change-record").unwrap().clone();
        let ev = library::collect(&gate, &cx);
        let v = judge(&pipeline, &gate, &ev, &record, &staged.subject, operator);
        (ev, v, record)
    }
}

fn judge(
    pipeline: &Pipeline,
    gate: &GateSpec,
    ev: &serde_json::Value,
    record: &Record,
    subject: &str,
    operator: Option<&str>,
) -> Verdict {
    let jcx = JudgeContext {
        project: "acme",
        version: VERSION,
        subject,
        operator,
        started_at: library::STARTED_AT,
        dry_run: false,
        signers: None,
        pipeline,
        policy: "",
        subject_since: 0,
        blobs: record,
    };
    gates::judge(gate, ev, &jcx)
}

fn short(hash: &str) -> &str {
    &hash[..12]
}

fn only_reason<'a>(v: &'a Verdict, code: &str) -> &'a str {
    assert_eq!(v.outcome, Outcome::Red, "{v:?}");
    assert_eq!(v.reasons.len(), 1, "{v:?}");
    assert_eq!(v.reasons[0].code, code, "{v:?}");
    &v.reasons[0].message
}

const GOOD: &str = "Add the parser\n\nIt reads the thing.\n\nReviewed-by: Bob <bob@x.test>\nTest: parser unit tests";

#[test]
fn a_clean_history_is_green_and_the_markdown_lists_every_change() {
    let r = Repo::new();
    let a = r.commit("alice", "src/a.rs", GOOD);
    let b = r.commit(
        "carol",
        "tests/b.rs",
        "Cover the edge case\n\nReviewed-by: Dave <dave@x.test>",
    );
    let c = r.commit(
        "dave",
        "src/c.rs",
        "Fix c\n\nReviewed-by: Alice <alice@x.test>\nTested-by: Erin <erin@x.test>",
    );
    let (ev, v, record) = r.run(Some("ops@x.test"));
    assert_eq!(v.outcome, Outcome::Green, "{v:?}");
    let rows = ev["changes"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["test_files"][0], "tests/b.rs");
    assert_eq!(rows[2]["reviewers"][0], "Bob <bob@x.test>");
    assert_eq!(rows[2]["author"], "alice <alice@x.test>");
    let md = std::fs::read_to_string(record.dir.join(MARKDOWN_FILE)).unwrap();
    for (hash, what) in [
        (&a, "Add the parser"),
        (&b, "Cover the edge case"),
        (&c, "Fix c"),
    ] {
        let line = md
            .lines()
            .find(|l| l.starts_with(&format!("| `{}`", short(hash))))
            .unwrap_or_else(|| panic!("{hash} missing from\n{md}"));
        assert!(line.contains(what), "{line}");
    }
}

#[test]
fn a_commit_without_reviewed_by_is_red_and_named() {
    let r = Repo::new();
    r.commit("alice", "src/a.rs", GOOD);
    let h = r.commit("carol", "tests/x.rs", "Quick fix");
    let (_, v, _) = r.run(None);
    let msg = only_reason(&v, "change-unreviewed");
    assert!(
        msg.contains(short(&h)) && msg.contains("Quick fix"),
        "{msg}"
    );
}

#[test]
fn a_commit_reviewed_by_its_own_author_is_red() {
    let r = Repo::new();
    let h = r.commit(
        "carol",
        "tests/x.rs",
        "Tweak\n\nReviewed-by: Carol C <CAROL@x.test>",
    );
    let (_, v, _) = r.run(None);
    let msg = only_reason(&v, "change-self-reviewed");
    assert!(msg.contains(short(&h)), "{msg}");
}

#[test]
fn a_commit_without_test_evidence_is_red() {
    let r = Repo::new();
    let h = r.commit(
        "carol",
        "src/x.rs",
        "Refactor\n\nReviewed-by: Bob <bob@x.test>",
    );
    let (_, v, _) = r.run(None);
    let msg = only_reason(&v, "change-untested");
    assert!(msg.contains(short(&h)), "{msg}");
}

#[test]
fn an_operator_or_release_signer_who_authored_a_commit_is_red() {
    let r = Repo::new();
    let h = r.commit("alice", "src/a.rs", GOOD);
    let (_, v, _) = r.run(Some("alice@x.test"));
    let msg = only_reason(&v, "packager-authored");
    assert!(msg.contains(short(&h)) && msg.contains("operator"), "{msg}");

    let r = Repo::new();
    let h = r.commit("release", "src/a.rs", GOOD);
    let (_, v, _) = r.run(Some("ops@x.test"));
    let msg = only_reason(&v, "packager-authored");
    assert!(msg.contains(short(&h)) && msg.contains("signer"), "{msg}");
}

#[test]
fn a_merge_without_a_change_of_its_own_is_left_out() {
    let r = Repo::new();
    r.git(&["checkout", "-q", "-b", "topic"], "alice");
    let a = r.commit("alice", "src/a.rs", GOOD);
    r.git(&["checkout", "-q", "main"], "ci");
    let c = r.commit(
        "carol",
        "tests/c.rs",
        "Other\n\nReviewed-by: Bob <bob@x.test>",
    );
    // The merge has no trailers; every file in it comes from one of its parents.
    r.git(
        &["merge", "-q", "--no-ff", "-m", "Merge topic", "topic"],
        "ci",
    );
    let merge = r.git(&["rev-parse", "HEAD"], "ci");
    let (ev, v, _) = r.run(None);
    assert_eq!(v.outcome, Outcome::Green, "{v:?}");
    let hashes: Vec<&str> = ev["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["hash"].as_str().unwrap())
        .collect();
    assert_eq!(hashes.len(), 2, "{hashes:?}");
    assert!(hashes.contains(&a.as_str()) && hashes.contains(&c.as_str()));
    assert_eq!(ev["merges_left_out"], serde_json::json!([merge]));
}

#[test]
fn a_merge_of_a_file_both_sides_changed_is_judged() {
    // The merged file is in neither parent: content nobody reviewed as such, even when git
    // merged it without a conflict. Such a merge needs its own trailers (docs/signoff.md).
    let r = Repo::new();
    let write = |first: &str, last: &str| {
        let mut l: Vec<String> = (1..=20).map(|i| format!("line {i}")).collect();
        l[0] = first.to_string();
        l[19] = last.to_string();
        std::fs::write(r.repo.join("src/shared.rs"), l.join("\n") + "\n").unwrap();
    };
    std::fs::create_dir_all(r.repo.join("src")).unwrap();
    write("line 1", "line 20");
    r.git(&["add", "-A"], "alice");
    r.git(&["commit", "-q", "-m", GOOD], "alice");
    r.git(&["checkout", "-q", "-b", "topic"], "alice");
    write("LINE 1", "line 20");
    r.git(&["commit", "-q", "-am", GOOD], "alice");
    r.git(&["checkout", "-q", "main"], "ci");
    write("line 1", "LINE 20");
    r.git(&["commit", "-q", "-am", GOOD], "carol");
    r.git(
        &["merge", "-q", "--no-ff", "-m", "Merge topic", "topic"],
        "ci",
    );
    let merge = r.git(&["rev-parse", "HEAD"], "ci");
    let (_, v, _) = r.run(None);
    let unreviewed: Vec<&str> = v
        .reasons
        .iter()
        .filter(|x| x.code == "change-unreviewed")
        .map(|x| x.message.as_str())
        .collect();
    assert!(
        unreviewed
            .iter()
            .any(|m| m.starts_with(&format!("merge {}", short(&merge)))),
        "{v:?}"
    );
}

#[test]
fn a_file_name_shaped_like_a_log_record_cannot_hide_a_merges_change() {
    // An evil merge whose only change is one file, named to look like a whole reviewed commit
    // record in a fixed-delimiter `git log` output. Delimiters are random per read, so it is
    // just a file name and the merge is judged.
    let r = Repo::new();
    r.git(&["checkout", "-q", "-b", "topic"], "alice");
    r.commit("alice", "tests/t.rs", GOOD);
    r.git(&["checkout", "-q", "main"], "ci");
    r.git(
        &["merge", "-q", "--no-ff", "--no-commit", "topic"],
        "mallory",
    );
    let fake = "f".repeat(40);
    let name = format!(
        "\x1e{fake}\x1f\x1fMallory\x1fm@x.test\x1f2026-01-01T00:00:00+00:00\x1fMallory\x1fm@x.test\x1fok\n\nReviewed-by: Bob <bob@x.test>\nTest: yes\n\x1f"
    );
    std::fs::write(r.repo.join(&name), "evil\n").unwrap();
    r.git(&["add", "--", &name], "mallory");
    r.git(&["commit", "-q", "-m", "Merge topic"], "mallory");
    let merge = r.git(&["rev-parse", "HEAD"], "mallory");
    let (ev, v, _) = r.run(None);
    let rows = ev["changes"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["hash"] != fake.as_str()), "{rows:?}");
    let row = rows
        .iter()
        .find(|r| r["hash"] == merge.as_str())
        .expect("the merge is a row");
    assert_eq!(row["test_files"], serde_json::json!([]));
    assert!(
        v.reasons
            .iter()
            .any(|x| x.code == "change-unreviewed" && x.message.contains(short(&merge))),
        "{v:?}"
    );
}

#[test]
fn evidence_without_the_history_guard_is_refused() {
    let r = Repo::new();
    r.commit("alice", "src/a.rs", GOOD);
    let (ev, v, record) = r.run(None);
    assert_eq!(v.outcome, Outcome::Green, "{v:?}");
    assert_eq!(ev["history"]["guard"]["graft_file"], "/dev/null");
    let pipeline = r.pipeline();
    let gate = pipeline.gate("change-record").unwrap();
    let subject = format!("sha256:{}", "0".repeat(64));
    // Evidence written before relgate recorded how it ran git has no `history`.
    let mut old = ev.clone();
    old.as_object_mut().unwrap().remove("history");
    let v = judge(&pipeline, gate, &old, &record, &subject, None);
    only_reason(&v, "change-history-unguarded");
    let mut unguarded = ev.clone();
    unguarded["history"]["guard"]["replace_objects"] = serde_json::json!(true);
    let v = judge(&pipeline, gate, &unguarded, &record, &subject, None);
    only_reason(&v, "change-history-unguarded");
}

#[test]
fn an_unknown_range_is_red() {
    let r = Repo::new();
    r.git(&["tag", "-d", "v0.9.0"], "ci");
    let (_, v, _) = r.run(None);
    only_reason(&v, "change-range-unreadable");
}

#[test]
fn editing_a_recorded_commit_row_changes_its_digest_and_is_refused() {
    let r = Repo::new();
    r.commit("alice", "src/a.rs", "Unreviewed change");
    let (ev, v, record) = r.run(None);
    assert_eq!(v.outcome, Outcome::Red);
    let mut edited = ev.clone();
    edited["changes"][0]["reviewers"] = serde_json::json!(["Bob <bob@x.test>"]);
    edited["changes"][0]["tests"] = serde_json::json!(["yes"]);
    assert_ne!(
        record.put_json(&ev).unwrap(),
        record.put_json(&edited).unwrap()
    );
    let pipeline = r.pipeline();
    let gate = pipeline.gate("change-record").unwrap();
    let subject = format!("sha256:{}", "0".repeat(64));
    let v = judge(&pipeline, gate, &edited, &record, &subject, None);
    only_reason(&v, "evidence-mismatch");
    // Editing the stored git log itself is caught by its digest.
    let log = ev["log"].as_str().unwrap();
    let path: &Path = &record.evidence_dir().join(log);
    let text = std::fs::read(path).unwrap();
    let forged = String::from_utf8_lossy(&text)
        .replace("Unreviewed change", "Unreviewed change\n\nReviewed-by: b@x");
    std::fs::write(path, forged).unwrap();
    let v = judge(&pipeline, gate, &ev, &record, &subject, None);
    only_reason(&v, "evidence-missing");
}

//! Replay fails for every kind of tampering with a release record, and passes untouched ones.

use std::path::{Path, PathBuf};

use crate::common::*;
use relgate::exit;

/// A small published release; returns the project and its record folder.
fn released() -> (Project, PathBuf) {
    let p = Project::new();
    p.release_key();
    p.write("dist/a.txt", b"a\n");
    p.write(
        "pipeline.yaml",
        pipeline("  unit-tests:\n    kind: regression\n    run: echo hello\n"),
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    let rec = p.record("1.0.0");
    (p, rec)
}

fn replay_ok(p: &Project, dir: &Path) -> bool {
    replay_in(p, dir).ok
}

#[test]
fn untouched_record_replays() {
    let (p, rec) = released();
    let r = replay_in(&p, &rec);
    assert!(r.ok, "{:?}", r.problem);
    assert!(r.verdicts_rejudged >= 2);
    assert!(r.published);
}

#[test]
fn every_single_byte_change_to_the_log_fails() {
    let (p, rec) = released();
    let work = tempfile::tempdir().expect("tmp");
    copy_dir(&rec, work.path());
    let log_path = work.path().join("log.jsonl");
    let original = std::fs::read(&log_path).expect("log");
    assert!(replay_ok(&p, work.path()));
    for i in 0..original.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bytes = original.clone();
            bytes[i] ^= flip;
            std::fs::write(&log_path, &bytes).expect("write");
            assert!(
                !replay_ok(&p, work.path()),
                "replay passed with byte {i} xor {flip:#x} ({:?})",
                original[i] as char
            );
        }
    }
    std::fs::write(&log_path, &original).expect("restore");
    assert!(replay_ok(&p, work.path()));
}

#[test]
fn deleted_duplicated_swapped_and_truncated_lines_fail() {
    let (p, rec) = released();
    let work = tempfile::tempdir().expect("tmp");
    copy_dir(&rec, work.path());
    let log_path = work.path().join("log.jsonl");
    let original = std::fs::read_to_string(&log_path).expect("log");
    let lines: Vec<&str> = original.lines().collect();
    let write = |ls: &[&str]| {
        let mut s = ls.join("\n");
        if !ls.is_empty() {
            s.push('\n');
        }
        std::fs::write(&log_path, s).expect("write");
    };
    for i in 0..lines.len() {
        let mut deleted = lines.clone();
        deleted.remove(i);
        write(&deleted);
        assert!(
            !replay_ok(&p, work.path()),
            "deleting line {} passed",
            i + 1
        );

        let mut dup = lines.clone();
        dup.insert(i, lines[i]);
        write(&dup);
        assert!(
            !replay_ok(&p, work.path()),
            "duplicating line {} passed",
            i + 1
        );

        if i + 1 < lines.len() {
            let mut swapped = lines.clone();
            swapped.swap(i, i + 1);
            write(&swapped);
            assert!(
                !replay_ok(&p, work.path()),
                "swapping lines {} and {} passed",
                i + 1,
                i + 2
            );
        }
        // A tail cut at a line boundary is only caught by the signed checkpoint.
        write(&lines[..i]);
        assert!(
            !replay_ok(&p, work.path()),
            "truncating to {i} lines passed"
        );
    }
    // A cut in the middle of the last line.
    std::fs::write(&log_path, &original.as_bytes()[..original.len() - 5]).expect("write");
    assert!(!replay_ok(&p, work.path()));
    write(&lines);
    assert!(replay_ok(&p, work.path()));
}

#[test]
fn an_altered_evidence_file_fails_replay() {
    let (p, rec) = released();
    let work = tempfile::tempdir().expect("tmp");
    copy_dir(&rec, work.path());
    let evidence: Vec<PathBuf> = std::fs::read_dir(work.path().join("evidence"))
        .expect("evidence")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(evidence.len() >= 3);
    for file in &evidence {
        let original = std::fs::read(file).expect("read");
        let mut bytes = original.clone();
        match bytes.first_mut() {
            Some(b) => *b ^= 0x01,
            None => bytes.push(b'x'),
        }
        std::fs::write(file, &bytes).expect("write");
        assert!(
            !replay_ok(&p, work.path()),
            "altering {} passed",
            file.display()
        );
        std::fs::remove_file(file).expect("rm");
        assert!(
            !replay_ok(&p, work.path()) || !is_referenced(work.path(), file),
            "deleting a referenced evidence file passed"
        );
        std::fs::write(file, &original).expect("restore");
    }
    assert!(replay_ok(&p, work.path()));
    // Through the binary: exit 1 and the problem named.
    let first = &evidence[0];
    std::fs::write(first, b"forged").expect("write");
    let out = p.relgate(&["replay", work.path().to_str().expect("utf8")]);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("replay failed"), "{}", stderr(&out));
}

fn is_referenced(dir: &Path, file: &Path) -> bool {
    let name = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    std::fs::read_to_string(dir.join("log.jsonl"))
        .expect("log")
        .contains(&name)
}

#[test]
fn a_forged_checkpoint_or_wrong_signers_fail() {
    let (p, rec) = released();
    let work = tempfile::tempdir().expect("tmp");
    copy_dir(&rec, work.path());
    let cp = std::fs::read_to_string(work.path().join("checkpoint")).expect("cp");
    std::fs::write(
        work.path().join("checkpoint"),
        cp.replace("size ", "size 1"),
    )
    .expect("w");
    assert!(!replay_ok(&p, work.path()));
    std::fs::write(work.path().join("checkpoint"), &cp).expect("w");
    std::fs::remove_file(work.path().join("checkpoint.sig")).expect("rm");
    assert!(!replay_ok(&p, work.path()));
    copy_dir(&rec, work.path());
    assert!(replay_ok(&p, work.path()));
    // An auditor's own signers file that does not list the release key.
    let other = p.keygen("stranger");
    p.write("auditor_signers", format!("release@acme.test {other}\n"));
    let out = p.relgate(&[
        "replay",
        work.path().to_str().expect("utf8"),
        "--signers",
        p.join("auditor_signers").to_str().expect("utf8"),
    ]);
    expect_code(&out, exit::REFUSED);
}

#[test]
fn a_recorded_verdict_that_does_not_follow_from_its_evidence_fails() {
    // Flip a red verdict to green and re-chain the whole log: only re-judging catches it
    // (the checkpoint is re-signed with the release key, as an insider could).
    let p = Project::new();
    p.release_key();
    p.write("dist/a.txt", b"a\n");
    p.write(
        "pipeline.yaml",
        pipeline("  unit-tests:\n    kind: regression\n    run: exit 4\n"),
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    let rec = p.record("1.0.0");
    let text = std::fs::read_to_string(rec.join("log.jsonl")).expect("log");
    let mut records = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let mut tagged = serde_json::Map::new();
        tagged.insert("type".into(), v["type"].clone());
        let mut body = v["body"].clone();
        if v["type"] == "gate-verdict" && body["gate"] == "unit-tests" {
            body["outcome"] = "green".into();
            body["reasons"] = serde_json::json!([]);
        }
        tagged.insert("body".into(), body);
        let rec: relgate::log::Record =
            serde_json::from_value(serde_json::Value::Object(tagged)).expect("record");
        records.push(rec);
    }
    std::fs::remove_file(rec.join("log.jsonl")).expect("rm");
    let (mut w, _) = relgate::log::LogWriter::open(&rec.join("log.jsonl")).expect("open");
    for r in records {
        w.append(r).expect("append");
    }
    // An insider with the release key rewrites the checkpoint history too.
    std::fs::remove_dir_all(rec.join("checkpoints")).expect("rm history");
    let key = relgate::sshsig::load_private_key(&p.join("keys/release")).expect("key");
    let cp = relgate::log::checkpoint::Checkpoint::new("relgate/acme/1.0.0", w.len(), w.head());
    relgate::log::checkpoint::write(&rec, &cp, Some(&key)).expect("cp");
    let r = replay_in(&p, &rec);
    assert!(!r.ok);
    let problem = r.problem.expect("problem");
    assert!(
        problem
            .message
            .contains("does not follow from its evidence"),
        "{problem:?}"
    );
    assert!(problem.line > 0);
}

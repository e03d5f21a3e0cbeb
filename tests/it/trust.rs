//! Trust that holds outside the project: every attack on a published folder or a release record
//! that once made relgate say "verified", reuse a forged verdict or count a forged sign-off,
//! tried against the real binary with keys from ssh-keygen and records rewritten with a valid
//! hash chain.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;
use relgate::exit;
use relgate::log::{Record, RunStarted};

/// `inputs: []` makes a green unit-tests result reusable (no file it reads is watched), so the
/// attacks below meet only the trust rules, not a changed-inputs rerun.
const TESTS_THEN_QA: &str = "  unit-tests:\n    kind: regression\n    run: test -f ok\n    inputs: []\n  manual:\n    kind: signoff\n    needs: [unit-tests]\n    role: qa\n    segregation: [operator, signer]\n";

/// A project with a release key and two QA approvers (alice, bob), `dist/a.txt`, and `gates`.
fn team(gates: &str) -> Project {
    let p = Project::new();
    let release = p.keygen("release");
    let alice = p.keygen("alice");
    let bob = p.keygen("bob");
    p.write(
        "keys/allowed_signers",
        format!("release@acme.test {release}\nalice@acme.test {alice}\nbob@acme.test {bob}\n"),
    );
    p.write("dist/a.txt", b"a\n");
    p.write("ok", b"");
    let text = pipeline(gates).replace(
        "signers: keys/allowed_signers\n",
        "signers: keys/allowed_signers\nroles:\n  qa: [alice@acme.test, bob@acme.test]\n",
    );
    p.write("pipeline.yaml", text);
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn approve(p: &Project, version: &str, who: &str, extra: &[&str]) -> std::process::Output {
    let key = format!("keys/{who}");
    let principal = format!("{who}@acme.test");
    let mut args = vec![
        "approve", version, "--gate", "manual", "--key", &key, "--as", &principal,
    ];
    args.extend_from_slice(extra);
    p.relgate(&args)
}

/// A published release 1.0.0 (unit-tests green, alice approved).
fn published(p: &Project) -> PathBuf {
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    expect_code(&approve(p, "1.0.0", "alice", &[]), exit::SUCCESS);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    p.join("published/acme/1.0.0")
}

/// `relgate replay PATH ARGS` from a folder that is no project.
fn replay_outside(p: &Project, path: &Path, args: &[&str]) -> std::process::Output {
    let elsewhere = tempfile::tempdir().expect("tmp");
    let signers = p.join("keys/allowed_signers");
    let mut cmd = Command::new("timeout");
    cmd.current_dir(elsewhere.path())
        .args(["60", BIN, "replay"])
        .arg(path)
        .args(["--signers", s(&signers), "--signer", "release@acme.test"])
        .args(args);
    cmd.output().expect("replay")
}

#[track_caller]
fn replay_fails(p: &Project, path: &Path, needle: &str) {
    let out = replay_outside(p, path, &[]);
    assert_eq!(
        code(&out),
        exit::REFUSED,
        "replay of {} did not fail (124 is a hang)\n{}\n{}",
        path.display(),
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(needle),
        "want {needle:?}:\n{}",
        stderr(&out)
    );
}

#[track_caller]
fn replay_passes(p: &Project, path: &Path) {
    let out = replay_outside(p, path, &[]);
    assert_eq!(
        code(&out),
        exit::SUCCESS,
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The records of a log, in order.
fn records(log: &Path) -> Vec<Record> {
    let bytes = std::fs::read(log).expect("log");
    relgate::log::read_log(&bytes)
        .expect("log reads")
        .0
        .into_iter()
        .map(|e| e.record)
        .collect()
}

/// Write `records` as a fresh, validly chained log.
fn rechain(log: &Path, records: Vec<Record>) {
    std::fs::remove_file(log).expect("rm log");
    let (mut w, _) = relgate::log::LogWriter::open(log).expect("open");
    for r in records {
        w.append(r).expect("append");
    }
}

/// Throw away every checkpoint and sign one over the whole log with `key` (a key file).
fn reseal(dir: &Path, key: &Path) {
    let _ = std::fs::remove_dir_all(dir.join("checkpoints"));
    let bytes = std::fs::read(dir.join("log.jsonl")).expect("log");
    let (entries, head) = relgate::log::read_log(&bytes).expect("log reads");
    let key = relgate::sshsig::load_private_key(key).expect("key");
    let cp =
        relgate::log::checkpoint::Checkpoint::new("relgate/acme/1.0.0", entries.len() as u64, head);
    relgate::log::checkpoint::write(dir, &cp, Some(&key)).expect("checkpoint");
}

fn first_run(log: &Path) -> RunStarted {
    records(log)
        .into_iter()
        .find_map(|r| match r {
            Record::RunStarted(r) => Some(*r),
            _ => None,
        })
        .expect("a run")
}

// --- 3. Replay checks the release, not only the log ------------------------------------------

#[test]
fn replay_refuses_artefacts_and_sums_other_than_the_log_recorded_even_when_signed_by_the_release_key()
 {
    let p = team(TESTS_THEN_QA);
    let out = published(&p);
    replay_passes(&p, &out);
    // Someone holding the release key (or a copy of an older signature) swaps the artefact and
    // signs the new SHA256SUMS: `verify` cannot tell, replay must.
    std::fs::write(out.join("a.txt"), b"not what was gated\n").expect("write");
    let sums = Command::new("sha256sum")
        .arg("a.txt")
        .current_dir(&out)
        .output()
        .expect("sha256sum");
    std::fs::write(out.join("SHA256SUMS"), sums.stdout).expect("sums");
    std::fs::remove_file(out.join("SHA256SUMS.sig")).expect("rm sig");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "file", "-f"])
        .arg(p.join("keys/release"))
        .arg(out.join("SHA256SUMS"))
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    // The key holder re-signs the attestation too, naming the new artefact.
    {
        use base64ct::Encoding;
        let vsa = out.join("attestation.intoto.jsonl");
        let text = std::fs::read_to_string(&vsa).expect("vsa");
        let env: serde_json::Value = serde_json::from_str(text.trim_end()).expect("envelope");
        let payload = base64ct::Base64::decode_vec(env["payload"].as_str().expect("payload"))
            .expect("base64");
        let mut st: serde_json::Value = serde_json::from_slice(&payload).expect("statement");
        let digest = relgate::digest::sha256_hex(b"not what was gated\n");
        st["subject"][0]["digest"]["sha256"] = digest.into();
        let key = relgate::signkey::load(&p.join("keys/release")).expect("key");
        let bytes = relgate::digest::canonical_json(&st).expect("json");
        let env =
            relgate::intoto::dsse::sign(&key, "application/vnd.in-toto+json", bytes.as_bytes())
                .expect("sign");
        std::fs::write(&vsa, format!("{env}\n")).expect("write");
    }
    expect_code(&p.relgate(&["verify", s(&out)]), exit::SUCCESS);
    replay_fails(&p, &out, "is not the one the log staged and gated");
}

#[test]
fn replay_refuses_any_file_in_audit_the_log_does_not_account_for() {
    let p = team(TESTS_THEN_QA);
    let out = published(&p);
    let audit = out.join("audit");
    // An extra approval: a real, valid pair by bob, dropped in after publishing.
    expect_code(&approve(&p, "1.0.0", "bob", &[]), exit::SUCCESS);
    let extra = std::fs::read_dir(p.record("1.0.0").join("approvals"))
        .expect("approvals")
        .map(|e| e.expect("entry").path())
        .find(|f| f.to_string_lossy().contains(".bob@"))
        .expect("bob's pair");
    for (what, rel, bytes) in [
        (
            "an extra approval",
            format!(
                "approvals/{}",
                extra.file_name().expect("name").to_string_lossy()
            ),
            std::fs::read(&extra).expect("read"),
        ),
        (
            "an edited allowed_signers copy",
            "allowed_signers".to_string(),
            b"release@acme.test ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n".to_vec(),
        ),
        ("a script", "run-me.sh".to_string(), b"#!/bin/sh\n".to_vec()),
        (
            "an evidence file nothing names",
            format!("evidence/{}", relgate::digest::sha256_hex(b"x")),
            b"x".to_vec(),
        ),
    ] {
        let path = audit.join(&rel);
        let before = std::fs::read(&path).ok();
        std::fs::write(&path, &bytes).expect("write");
        let out2 = replay_outside(&p, &out, &[]);
        assert_eq!(code(&out2), exit::REFUSED, "{what} passed: {}", stdout(&out2));
        assert!(
            stderr(&out2).contains("is not accounted for by the log"),
            "{what}: {}",
            stderr(&out2)
        );
        match before {
            Some(b) => std::fs::write(&path, b).expect("restore"),
            None => std::fs::remove_file(&path).expect("rm"),
        }
    }
    replay_passes(&p, &out);
}

#[test]
fn replay_opens_regular_files_only_never_a_symlink_fifo_or_device() {
    let p = team(TESTS_THEN_QA);
    let out = published(&p);
    let evidence = out.join("audit/evidence");
    let victim = std::fs::read_dir(&evidence)
        .expect("evidence")
        .map(|e| e.expect("entry").path())
        .next()
        .expect("an evidence file");
    let original = std::fs::read(&victim).expect("read");
    let outside = p.join("outside-copy");
    std::fs::write(&outside, &original).expect("write");

    // A symlink out of audit/ to a file with the very same bytes.
    std::fs::remove_file(&victim).expect("rm");
    std::os::unix::fs::symlink(&outside, &victim).expect("symlink");
    replay_fails(&p, &out, "is a symbolic link");

    // A symlink to /dev/zero, which would be read without end.
    std::fs::remove_file(&victim).expect("rm");
    std::os::unix::fs::symlink("/dev/zero", &victim).expect("symlink");
    replay_fails(&p, &out, "is a symbolic link");

    // A FIFO named like the evidence file, which would block any reader forever.
    std::fs::remove_file(&victim).expect("rm");
    let st = Command::new("mkfifo")
        .arg(&victim)
        .status()
        .expect("mkfifo");
    assert!(st.success());
    replay_fails(&p, &out, "not a regular file");

    std::fs::remove_file(&victim).expect("rm");
    std::fs::write(&victim, &original).expect("restore");
    replay_passes(&p, &out);
}

// --- 4. Replay judges under the policy the recorded source bytes say ---------------------------

#[test]
fn a_recorded_pipeline_that_is_not_what_its_sources_say_fails_replay() {
    let p = team(TESTS_THEN_QA);
    published(&p);
    let rec = p.record("1.0.0");
    // The forger makes a QA approver the release signer in the recorded policy (the JSON judges
    // read), leaves the sources and their digest as they were, and re-chains the log. Even the
    // release key's own signature over the result does not make it pass.
    let forged: Vec<Record> = records(&rec.join("log.jsonl"))
        .into_iter()
        .map(|r| match r {
            Record::RunStarted(mut run) => {
                for g in &mut run.pipeline.gates {
                    if let relgate::model::GateKind::Sign(s) = &mut g.kind {
                        s.signer = "alice@acme.test".into();
                    }
                }
                Record::RunStarted(run)
            }
            other => other,
        })
        .collect();
    rechain(&rec.join("log.jsonl"), forged);
    reseal(&rec, &p.join("keys/release"));
    replay_fails(&p, &rec, "is not what its recorded source bytes say");
}

#[test]
fn a_checkpoint_signed_by_anyone_but_the_release_signer_fails_replay() {
    let p = team(TESTS_THEN_QA);
    published(&p);
    let rec = p.record("1.0.0");
    // alice's key may sign in every namespace (no namespaces= option), but she is a QA approver.
    reseal(&rec, &p.join("keys/alice"));
    replay_fails(&p, &rec, "the key belongs to alice@acme.test");
    // Inside the project, its pipeline's sign gate names the release signer.
    let out = p.relgate(&["replay", s(&rec)]);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("alice@acme.test"), "{}", stderr(&out));
}

#[test]
fn replay_needs_a_trust_root_from_outside_the_record() {
    let p = team(TESTS_THEN_QA);
    let out = published(&p);
    let elsewhere = tempfile::tempdir().expect("tmp");
    let o = Command::new(BIN)
        .current_dir(elsewhere.path())
        .arg("replay")
        .arg(&out)
        .output()
        .expect("replay");
    expect_code(&o, exit::CONFIG);
    assert!(stderr(&o).contains("no trust root"), "{}", stderr(&o));
    assert!(stderr(&o).contains("UNTRUSTED"), "{}", stderr(&o));
    // Pinning the release key's fingerprint is enough.
    let fp = first_run(&out.join("audit/log.jsonl"))
        .checkpoint_key
        .expect("key")
        .fingerprint;
    let o = Command::new(BIN)
        .current_dir(elsewhere.path())
        .arg("replay")
        .arg(&out)
        .args(["--trust-key", &fp])
        .output()
        .expect("replay");
    expect_code(&o, exit::SUCCESS);
}

#[test]
fn a_verdict_placed_after_its_run_finished_fails_replay() {
    let p = team(TESTS_THEN_QA);
    p.relgate(&["run", "1.0.0"]);
    let rec = p.record("1.0.0");
    let mut recs = records(&rec.join("log.jsonl"));
    let green = recs
        .iter()
        .find(|r| matches!(r, Record::GateVerdict(v) if v.gate == "unit-tests"))
        .cloned()
        .expect("verdict");
    recs.push(green);
    rechain(&rec.join("log.jsonl"), recs);
    reseal(&rec, &p.join("keys/release"));
    replay_fails(&p, &rec, "after run 1 finished");
}

// --- 5. A record is verified before it is used -------------------------------------------------

/// Release 0.9.0 passes; then the tests break and 1.0.0 is red. The forger gives 1.0.0 a green
/// unit-tests verdict whose evidence is copied from 0.9.0, appended with a valid chain.
fn forged_green_after_red() -> (Project, PathBuf) {
    let p = team("  unit-tests:\n    kind: regression\n    run: test -f ok\n    inputs: []\n");
    p.write(
        "pipeline.yaml",
        p.read("pipeline.yaml")
            .replace("publish:\n  to: published/{project}/{version}\n", ""),
    );
    expect_code(&p.relgate(&["run", "0.9.0"]), exit::SUCCESS);
    std::fs::remove_file(p.join("ok")).expect("rm ok");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    let old = p.record("0.9.0");
    let rec = p.record("1.0.0");
    let old_green = records(&old.join("log.jsonl"))
        .into_iter()
        .find_map(|r| match r {
            Record::GateVerdict(v) if v.gate == "unit-tests" => Some(v),
            _ => None,
        })
        .expect("green verdict");
    let evidence = old_green.evidence.clone().expect("evidence");
    // Copy the old evidence and everything it names.
    for e in std::fs::read_dir(old.join("evidence")).expect("evidence") {
        let e = e.expect("entry");
        let dst = rec.join("evidence").join(e.file_name());
        if !dst.exists() {
            std::fs::copy(e.path(), dst).expect("copy");
        }
    }
    let run = first_run(&rec.join("log.jsonl"));
    let gate = run.pipeline.gate("unit-tests").expect("gate").clone();
    let signers = std::fs::read_to_string(p.join("keys/allowed_signers")).expect("signers");
    // What the gate ran against is the same for both versions (same command, environment and
    // state folder; `inputs: []`), so the forged verdict has exactly the inputs a resumed run
    // computes: only the trust rules keep it from being reused.
    let inputs = relgate::engine::inputs_digest(
        &gate,
        &run.subject,
        &run.project,
        &run.version,
        Some(&signers),
        old_green.depends_on.as_ref(),
    );
    let (mut w, _) = relgate::log::LogWriter::open(&rec.join("log.jsonl")).expect("open");
    w.append(Record::GateVerdict(relgate::log::GateVerdict {
        run: 1,
        gate: "unit-tests".into(),
        kind: "regression".into(),
        inputs,
        outcome: relgate::gates::Outcome::Green,
        reasons: Vec::new(),
        evidence: Some(evidence),
        reused_from: None,
        depends_on: old_green.depends_on.clone(),
    }))
    .expect("append");
    (p, rec)
}

#[test]
fn a_forged_green_verdict_appended_to_a_record_is_never_reused() {
    let (p, rec) = forged_green_after_red();
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        !stderr(&out).contains("kept from an earlier run"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("not covered by a signed checkpoint"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("unit-tests: red"), "{}", stderr(&out));
    let _ = rec;
}

#[test]
fn a_forged_record_with_its_signed_checkpoints_removed_is_never_reused() {
    let (p, rec) = forged_green_after_red();
    // The forger also drops the signed checkpoints and writes an unsigned one over everything.
    let _ = std::fs::remove_dir_all(rec.join("checkpoints"));
    let _ = std::fs::remove_file(rec.join("checkpoint.sig"));
    let bytes = std::fs::read(rec.join("log.jsonl")).expect("log");
    let (entries, head) = relgate::log::read_log(&bytes).expect("log");
    let cp =
        relgate::log::checkpoint::Checkpoint::new("relgate/acme/1.0.0", entries.len() as u64, head);
    relgate::log::checkpoint::write(&rec, &cp, None).expect("checkpoint");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("unit-tests: red"), "{}", stderr(&out));
}

#[test]
fn a_record_rewritten_under_its_checkpoint_is_refused_by_run_status_and_approve() {
    let p = team(TESTS_THEN_QA);
    std::fs::remove_file(p.join("ok")).expect("rm ok");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    let rec = p.record("1.0.0");
    // The red verdict turned green and the whole log re-chained: only the signed checkpoint
    // can tell.
    let forged: Vec<Record> = records(&rec.join("log.jsonl"))
        .into_iter()
        .map(|r| match r {
            Record::GateVerdict(mut v) if v.gate == "unit-tests" => {
                v.outcome = relgate::gates::Outcome::Green;
                v.reasons.clear();
                Record::GateVerdict(v)
            }
            other => other,
        })
        .collect();
    rechain(&rec.join("log.jsonl"), forged);
    let before = std::fs::read(rec.join("log.jsonl")).expect("log");
    for (args, what) in [
        (vec!["run", "1.0.0"], "run"),
        (vec!["status", "1.0.0"], "status"),
        (
            vec![
                "approve",
                "1.0.0",
                "--gate",
                "manual",
                "--key",
                "keys/alice",
                "--as",
                "alice@acme.test",
            ],
            "approve",
        ),
    ] {
        let out = p.relgate(&args);
        expect_code(&out, exit::REFUSED);
        assert!(
            stderr(&out).contains("does not verify"),
            "{what}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(".suspect"),
            "{what}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read(rec.join("log.jsonl")).expect("log"),
        before,
        "the suspect record is kept as it was"
    );
    assert!(!p.join("published").exists());
    assert!(!rec.join("approvals").exists());
    // Starting over as the message says works.
    std::fs::rename(&rec, rec.with_extension("0.suspect")).expect("mv");
    p.write("ok", b"");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
}

// --- 6. A rejection is not forgotten -----------------------------------------------------------

#[test]
fn a_rejection_stays_in_force_after_its_files_are_deleted() {
    let p = team(TESTS_THEN_QA);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    expect_code(
        &approve(
            &p,
            "1.0.0",
            "bob",
            &["--reject", "--comment", "crashes on start"],
        ),
        exit::SUCCESS,
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    // The rejection's files disappear; alice approves.
    std::fs::remove_dir_all(p.record("1.0.0").join("approvals")).expect("rm");
    expect_code(&approve(&p, "1.0.0", "alice", &[]), exit::SUCCESS);
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("signoff-rejected: rejected by bob@acme.test: crashes on start"),
        "{}",
        stderr(&out)
    );
    assert!(!p.join("published").exists());
    replay_passes(&p, &p.record("1.0.0"));
}

#[test]
fn a_removed_approval_is_reported_and_no_longer_counts() {
    let p = team(TESTS_THEN_QA);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    expect_code(&approve(&p, "1.0.0", "alice", &[]), exit::SUCCESS);
    // A quorum of two keeps the release from publishing, so that runs go on recording.
    p.write(
        "pipeline.yaml",
        p.read("pipeline.yaml")
            .replace("    role: qa\n", "    role: qa\n    quorum: 2\n"),
    );
    // The pipeline changed, so alice's approval (given under the old policy) is set aside
    // with its own reason; approve again under the new one.
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::PENDING);
    assert!(
        stderr(&out).contains("approval-other-policy"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(p.record("1.0.0").join("approvals")).expect("rm");
    expect_code(&approve(&p, "1.0.0", "alice", &[]), exit::SUCCESS);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    std::fs::remove_dir_all(p.record("1.0.0").join("approvals")).expect("rm");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::PENDING);
    assert!(
        stderr(&out).contains("approval-withdrawn"),
        "{}",
        stderr(&out)
    );
}

// --- 7. Backdating -----------------------------------------------------------------------------

/// Sign a hand-made statement for gate `manual` of 1.0.0 by `who`, dated `time`.
fn hand_statement(p: &Project, who: &str, time: &str) {
    let log = p.record("1.0.0").join("log.jsonl");
    let run = first_run(&log);
    let fp = {
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(p.join(&format!("keys/{who}.pub")))
            .output()
            .expect("ssh-keygen");
        String::from_utf8(out.stdout)
            .expect("utf8")
            .split_whitespace()
            .nth(1)
            .expect("fp")
            .to_string()
    };
    let text = format!(
        r#"{{"comment":"by hand","decision":"approve","gate":"manual","key":"{fp}","policy":"{}","project":"acme","signer":"{who}@acme.test","subject":"{}","time":"{time}","type":"relgate-approval/v1","version":"1.0.0"}}"#,
        relgate::digest::policy_digest(&run.sources),
        run.subject
    );
    let dir = p.record("1.0.0").join("approvals");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join(format!("{who}-by-hand.json"));
    std::fs::write(&file, text).expect("write");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "relgate-approval", "-f"])
        .arg(p.join(&format!("keys/{who}")))
        .arg(&file)
        .stderr(Stdio::null())
        .status()
        .expect("sign");
    assert!(st.success());
}

fn days_ago(days: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() - time::Duration::days(days)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

#[test]
fn a_statement_backdated_into_an_expired_keys_validity_does_not_count() {
    let p = team(TESTS_THEN_QA);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    // bob's key expired yesterday.
    let yesterday = days_ago(1);
    let signers = p.read("keys/allowed_signers").replace(
        "bob@acme.test ",
        &format!(
            "bob@acme.test valid-before=\"{:04}{:02}{:02}Z\" ",
            yesterday.year(),
            u8::from(yesterday.month()),
            yesterday.day()
        ),
    );
    p.write("keys/allowed_signers", signers);
    // The subject was staged "two days ago" as far as the statement claims: the run staged it
    // just now, so the date is also before the staging.
    hand_statement(&p, "bob", &rfc3339(days_ago(2)));
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::PENDING);
    assert!(
        stderr(&out).contains("approval-signer-not-allowed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_statement_dated_before_the_subject_was_first_staged_does_not_count() {
    let p = team(TESTS_THEN_QA);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    let staged_at = first_run(&p.record("1.0.0").join("log.jsonl")).started_at;
    let before = time::OffsetDateTime::from_unix_timestamp(staged_at - 3600).expect("time");
    hand_statement(&p, "alice", &rfc3339(before));
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::PENDING);
    assert!(
        stderr(&out).contains("approval-backdated"),
        "{}",
        stderr(&out)
    );
    // The same statement dated now counts.
    std::fs::remove_dir_all(p.record("1.0.0").join("approvals")).expect("rm");
    hand_statement(&p, "alice", &rfc3339(time::OffsetDateTime::now_utc()));
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
}

// --- 5. Checkpoint history: a record rolled back ------------------------------------------------

#[test]
fn a_record_rolled_back_is_caught_by_a_checkpoint_kept_from_later() {
    let p = team(TESTS_THEN_QA);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    let rec = p.record("1.0.0");
    let early = tempfile::tempdir().expect("tmp");
    copy_dir(&rec, early.path());
    expect_code(&approve(&p, "1.0.0", "alice", &[]), exit::SUCCESS);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    // An auditor keeps the final checkpoint.
    let kept = tempfile::tempdir().expect("tmp");
    std::fs::copy(rec.join("checkpoint"), kept.path().join("cp")).expect("cp");
    std::fs::copy(rec.join("checkpoint.sig"), kept.path().join("cp.sig")).expect("sig");
    let kept_cp = kept.path().join("cp");
    // Every checkpoint in the record itself must hold, so an earlier one in the history holds.
    let history: Vec<_> = std::fs::read_dir(rec.join("checkpoints"))
        .expect("history")
        .collect();
    assert!(history.len() >= 4, "every checkpoint is kept: {history:?}");
    let ok = replay_outside(&p, &rec, &["--checkpoint", s(&kept_cp)]);
    expect_code(&ok, exit::SUCCESS);
    // The record rolled back to its state before the approval: whole and signed, and caught
    // only by the kept checkpoint.
    replay_passes(&p, early.path());
    let out = replay_outside(&p, early.path(), &["--checkpoint", s(&kept_cp)]);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("rolled back"), "{}", stderr(&out));
    // A record rolled back in place, with the newer checkpoints removed, is caught by run too.
    let lines = std::fs::read_to_string(rec.join("log.jsonl")).expect("log");
    let cut: Vec<&str> = lines.lines().take(3).collect();
    std::fs::write(rec.join("log.jsonl"), cut.join("\n") + "\n").expect("cut");
    let out = p.relgate(&["status", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("rolled back"), "{}", stderr(&out));
}

// --- 8. Names ----------------------------------------------------------------------------------

#[test]
fn artefact_names_that_read_wrong_or_are_reserved_are_refused_by_check_and_run() {
    for (name, needle) in [
        ("dist/a\tb.txt", "control character U+0009"),
        (
            "dist/evil\u{202E}txt.exe",
            "bidirectional control character U+202E",
        ),
        ("dist/zero\u{200B}width.txt", "invisible character U+200B"),
        (
            "dist/SHA256SUMS",
            "SHA256SUMS is reserved for the release folder itself",
        ),
        (
            "dist/audit/x.txt",
            "audit is reserved for the release folder itself",
        ),
    ] {
        let p = team(TESTS_THEN_QA);
        p.write(
            "pipeline.yaml",
            p.read("pipeline.yaml")
                .replace("  - dist/*\n", "  - dist/**\n"),
        );
        p.write(name, b"x");
        for cmd in ["check", "run"] {
            let args: Vec<&str> = if cmd == "run" {
                vec!["run", "1.0.0"]
            } else {
                vec!["check"]
            };
            let out = p.relgate(&args);
            expect_code(&out, exit::CONFIG);
            assert!(
                stderr(&out).contains(needle),
                "{name:?} {cmd}: {}",
                stderr(&out)
            );
        }
        assert!(!p.join("published").exists());
    }
}

// --- Attacks found against the first version of these defences ------------------------------

/// A dry run's record (signed by its own throwaway key) copied into the release's record.
fn dry_run_record_as_release(p: &Project) {
    expect_code(&p.relgate(&["run", "1.0.0", "--dry-run"]), exit::SUCCESS);
    let dry = std::fs::read_dir(p.join(".relgate/dry-runs/1.0.0"))
        .expect("dry-runs")
        .next()
        .expect("one")
        .expect("entry")
        .path();
    copy_dir(&dry, &p.record("1.0.0"));
}

#[test]
fn a_record_signed_by_a_throwaway_key_is_trusted_by_nothing() {
    let p = team(TESTS_THEN_QA);
    dry_run_record_as_release(&p);
    for args in [
        vec!["run", "1.0.0"],
        vec!["status", "1.0.0"],
        vec![
            "approve",
            "1.0.0",
            "--gate",
            "manual",
            "--key",
            "keys/alice",
            "--as",
            "alice@acme.test",
        ],
    ] {
        let out = p.relgate(&args);
        expect_code(&out, exit::REFUSED);
        assert!(
            stderr(&out).contains("throwaway key, which anyone can make"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(!p.join("published").exists());
    replay_fails(
        &p,
        &p.record("1.0.0"),
        "throwaway key, which anyone can make",
    );
}

/// Append a forged run (a copy of run 1's start, numbered 2) with a green unit-tests verdict
/// whose evidence is run 1's own green evidence, chained validly.
fn append_forged_green_run(p: &Project, green_from: &Path) {
    let rec = p.record("1.0.0");
    let donor = records(&green_from.join("log.jsonl"));
    let green = donor
        .iter()
        .find_map(|r| match r {
            Record::GateVerdict(v)
                if v.gate == "unit-tests" && v.outcome == relgate::gates::Outcome::Green =>
            {
                Some(v.clone())
            }
            _ => None,
        })
        .expect("a green verdict to copy");
    for e in std::fs::read_dir(green_from.join("evidence")).expect("evidence") {
        let e = e.expect("entry");
        let dst = rec.join("evidence").join(e.file_name());
        if !dst.exists() {
            std::fs::copy(e.path(), dst).expect("copy");
        }
    }
    let mut run = first_run(&rec.join("log.jsonl"));
    let runs = records(&rec.join("log.jsonl"))
        .iter()
        .filter(|r| matches!(r, Record::RunStarted(_)))
        .count() as u32;
    run.run = runs + 1;
    let gate = run.pipeline.gate("unit-tests").expect("gate").clone();
    let signers = std::fs::read_to_string(p.join("keys/allowed_signers")).expect("signers");
    let inputs = relgate::engine::inputs_digest(
        &gate,
        &run.subject,
        &run.project,
        &run.version,
        Some(&signers),
        green.depends_on.as_ref(),
    );
    let n = run.run;
    let (mut w, _) = relgate::log::LogWriter::open(&rec.join("log.jsonl")).expect("open");
    w.append(Record::RunStarted(Box::new(run))).expect("append");
    w.append(Record::GateStarted(relgate::log::GateStarted {
        run: n,
        gate: "unit-tests".into(),
        inputs: inputs.clone(),
        depends_on: green.depends_on.clone(),
    }))
    .expect("append");
    w.append(Record::GateVerdict(relgate::log::GateVerdict {
        run: n,
        inputs,
        reused_from: None,
        ..green
    }))
    .expect("append");
    w.append(Record::RunFinished(relgate::log::RunFinished {
        run: n,
        decision: relgate::log::Decision::Refused,
        exit_code: 1,
        message: None,
    }))
    .expect("append");
}

#[test]
fn lines_a_later_run_sealed_are_never_reused_and_replay_refuses_a_reuse_of_them() {
    // A green record to take evidence from: an earlier version of the same project, whose
    // unit-tests ran against the same things (`inputs: []`).
    let p = team(TESTS_THEN_QA);
    expect_code(&p.relgate(&["run", "0.9.0"]), exit::PENDING);
    std::fs::remove_file(p.join("ok")).expect("break the tests");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    append_forged_green_run(&p, &p.record("0.9.0"));
    // The next run notes the unattested lines, stays red, and seals them with its checkpoint.
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("not covered by a signed checkpoint"),
        "{}",
        stderr(&out)
    );
    // Sealed now, but late: still never reused, whatever comes.
    expect_code(&approve(&p, "1.0.0", "alice", &[]), exit::SUCCESS);
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        !stderr(&out).contains("kept from an earlier run"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("sealed only by a later run"),
        "{}",
        stderr(&out)
    );
    assert!(!p.join("published").exists());
    replay_passes(&p, &p.record("1.0.0"));
    // An insider with the key who records a reuse of such a line anyway: replay refuses it.
    let rec = p.record("1.0.0");
    let mut recs = records(&rec.join("log.jsonl"));
    let forged_seq = {
        let bytes = std::fs::read(rec.join("log.jsonl")).expect("log");
        let (entries, _) = relgate::log::read_log(&bytes).expect("log");
        entries
            .iter()
            .find(|e| matches!(&e.record, Record::GateVerdict(v) if v.run == 2 && v.gate == "unit-tests"))
            .expect("the forged verdict")
            .seq
    };
    let last_run = recs
        .iter()
        .filter_map(|r| match r {
            Record::RunStarted(r) => Some(r.run),
            _ => None,
        })
        .max()
        .expect("runs");
    let pos = recs
        .iter()
        .position(
            |r| matches!(r, Record::GateVerdict(v) if v.run == last_run && v.gate == "unit-tests"),
        )
        .expect("last run's verdict");
    if let Record::GateVerdict(v) = &mut recs[pos] {
        v.outcome = relgate::gates::Outcome::Green;
        v.reasons.clear();
        v.reused_from = Some(forged_seq);
    }
    // The reused verdict has no gate-started of its own.
    recs.remove(pos - 1);
    rechain(&rec.join("log.jsonl"), recs);
    reseal(&rec, &p.join("keys/release"));
    replay_fails(
        &p,
        &rec,
        "which no checkpoint vouched for before a later run began",
    );
}

#[test]
fn a_rejection_whose_signature_was_spoiled_stays_in_force() {
    let p = team(TESTS_THEN_QA);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    expect_code(
        &approve(&p, "1.0.0", "alice", &["--reject", "--comment", "no"]),
        exit::SUCCESS,
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    let approvals = p.record("1.0.0").join("approvals");
    for e in std::fs::read_dir(&approvals).expect("approvals") {
        let path = e.expect("entry").path();
        if path.to_string_lossy().ends_with(".sig") {
            std::fs::write(&path, b"garbage\n").expect("spoil");
        }
    }
    expect_code(&approve(&p, "1.0.0", "bob", &[]), exit::SUCCESS);
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("rejected by alice@acme.test"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_release_signature_exists_before_every_other_gate_is_green() {
    let p = team(TESTS_THEN_QA);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    expect_code(
        &approve(&p, "1.0.0", "alice", &["--reject", "--comment", "broken"]),
        exit::SUCCESS,
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    let sigs: Vec<_> = walkdir::WalkDir::new(p.record("1.0.0"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == "SHA256SUMS.sig")
        .collect();
    assert!(
        sigs.is_empty(),
        "a signature exists for rejected bytes: {sigs:?}"
    );
    // And no gate may need the sign gate.
    p.write(
        "pipeline.yaml",
        p.read("pipeline.yaml").replace(
            "    needs: [unit-tests]\n",
            "    needs: [unit-tests, sign]\n",
        ),
    );
    let out = p.relgate(&["check"]);
    expect_code(&out, exit::CONFIG);
    assert!(
        stderr(&out).contains("is the sign gate"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_folder_cannot_be_its_own_trust_root_by_carrying_a_pipeline() {
    let p = team(TESTS_THEN_QA);
    let out = published(&p);
    // The forger ships a pipeline and signers inside the folder; someone runs verify there.
    std::fs::copy(p.join("pipeline.yaml"), out.join("pipeline.yaml")).expect("copy");
    std::fs::create_dir_all(out.join("keys")).expect("mkdir");
    std::fs::copy(
        p.join("keys/allowed_signers"),
        out.join("keys/allowed_signers"),
    )
    .expect("copy");
    for cmd in ["verify", "replay"] {
        let o = Command::new(BIN)
            .current_dir(&out)
            .args([cmd, "."])
            .output()
            .expect("run");
        expect_code(&o, exit::CONFIG);
        assert!(stderr(&o).contains("lies inside"), "{cmd}: {}", stderr(&o));
    }
}

#[test]
fn replay_names_the_release_and_notices_a_folder_renamed_to_another_version() {
    let p = team(TESTS_THEN_QA);
    let out = published(&p);
    let renamed = p.join("published/acme/2.0.0");
    copy_dir(&out, &renamed);
    let o = replay_outside(&p, &renamed, &[]);
    expect_code(&o, exit::SUCCESS);
    assert!(
        stdout(&o).contains("replay verified acme 1.0.0"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("the folder is named 2.0.0, but the release it holds is version 1.0.0"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn nothing_rides_along_in_audit_under_a_hidden_name_or_as_a_folder() {
    let p = team(TESTS_THEN_QA);
    let out = published(&p);
    std::fs::write(
        out.join("audit/checkpoints/.verify-release.sh"),
        b"#!/bin/sh\n",
    )
    .expect("w");
    replay_fails(&p, &out, "is not a checkpoint");
    std::fs::remove_file(out.join("audit/checkpoints/.verify-release.sh")).expect("rm");
    std::fs::create_dir_all(out.join("audit/approvals/.x")).expect("mkdir");
    replay_fails(
        &p,
        &out,
        "audit/approvals/.x/ is a folder the log does not account for",
    );
    std::fs::remove_dir(out.join("audit/approvals/.x")).expect("rm");
    replay_passes(&p, &out);
}

#[test]
fn more_names_that_read_wrong_are_refused() {
    for (name, needle) in [
        (
            "dist/release\u{2028}notes.txt",
            "separator character U+2028",
        ),
        ("dist/app\u{2065}.bin", "invisible character U+2065"),
        ("dist/a\u{00A0}b.txt", "separator character U+00A0"),
        ("dist/setup.exe ", "ends with a space, or ends with a dot"),
        ("dist/notes.", "ends with a space, or ends with a dot"),
    ] {
        let p = team(TESTS_THEN_QA);
        p.write(name, b"x");
        let out = p.relgate(&["check"]);
        expect_code(&out, exit::CONFIG);
        assert!(stderr(&out).contains(needle), "{name:?}: {}", stderr(&out));
    }
}

#[test]
fn hostile_numbers_in_a_resealed_record_never_panic_replay() {
    let p = team(TESTS_THEN_QA);
    published(&p);
    let rec = p.record("1.0.0");
    let original = records(&rec.join("log.jsonl"));
    type Mutation = Box<dyn Fn(&mut Record)>;
    let mutations: Vec<Mutation> = vec![
        Box::new(|r| {
            if let Record::RunStarted(run) = r {
                run.started_at = i64::MIN;
            }
        }),
        Box::new(|r| {
            if let Record::RunStarted(run) = r {
                run.started_at = i64::MAX;
            }
        }),
        Box::new(|r| {
            if let Record::GateVerdict(v) = r {
                v.reused_from = Some(u64::MAX);
            }
        }),
    ];
    for (i, m) in mutations.iter().enumerate() {
        let work = tempfile::tempdir().expect("tmp");
        copy_dir(&rec, work.path());
        let mut recs = original.clone();
        recs.iter_mut().for_each(m);
        rechain(&work.path().join("log.jsonl"), recs);
        reseal(work.path(), &p.join("keys/release"));
        let out = replay_outside(&p, work.path(), &[]);
        assert!(
            code(&out) == exit::REFUSED || code(&out) == exit::SUCCESS,
            "mutation {i}: exit {}\n{}",
            code(&out),
            stderr(&out)
        );
    }
}

#[test]
fn a_record_holding_links_or_fifos_is_refused_before_anything_is_written_through_them() {
    let p = team(TESTS_THEN_QA);
    std::fs::remove_file(p.join("ok")).expect("red");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    let rec = p.record("1.0.0");
    let victim_dir = p.join("victim");
    std::fs::create_dir_all(victim_dir.join("precious")).expect("mkdir");
    let victim = p.join("victim.txt");
    std::fs::write(&victim, b"keep me\n").expect("w");
    for (what, plant) in [
        ("staged", "dir"),
        ("allowed_signers", "file"),
        (".lock", "file"),
        ("security-review.md", "file"),
    ] {
        let path = rec.join(what);
        let saved = tempfile::tempdir().expect("tmp");
        if path.exists() {
            std::fs::rename(&path, saved.path().join("x")).expect("aside");
        }
        let target = if plant == "dir" { &victim_dir } else { &victim };
        std::os::unix::fs::symlink(target, &path).expect("symlink");
        let out = Command::new("timeout")
            .current_dir(p.path())
            .args(["60", BIN, "run", "1.0.0"])
            .env_remove("RELGATE_OPERATOR")
            .output()
            .expect("run");
        expect_code(&out, exit::REFUSED);
        assert!(
            stderr(&out).contains("is a symbolic link"),
            "{what}: {}",
            stderr(&out)
        );
        assert!(
            victim_dir.join("precious").is_dir(),
            "{what}: a folder was deleted"
        );
        assert_eq!(
            std::fs::read(&victim).expect("victim"),
            b"keep me\n",
            "{what}"
        );
        std::fs::remove_file(&path).expect("rm link");
        if saved.path().join("x").exists() {
            std::fs::rename(saved.path().join("x"), &path).expect("back");
        }
    }
    // A FIFO where the lock or a record file belongs: refused, never waited on.
    for what in [".lock", "allowed_signers"] {
        let path = rec.join(what);
        let _ = std::fs::remove_file(&path);
        assert!(
            Command::new("mkfifo")
                .arg(&path)
                .status()
                .expect("mkfifo")
                .success()
        );
        let out = Command::new("timeout")
            .current_dir(p.path())
            .args(["60", BIN, "run", "1.0.0"])
            .env_remove("RELGATE_OPERATOR")
            .output()
            .expect("run");
        assert_ne!(code(&out), 124, "{what}: run hung on a FIFO");
        expect_code(&out, exit::REFUSED);
        std::fs::remove_file(&path).expect("rm fifo");
    }
}

#[test]
fn hostile_files_in_approvals_are_refused_unread() {
    let p = team(TESTS_THEN_QA);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    let approvals = p.record("1.0.0").join("approvals");
    std::fs::create_dir_all(&approvals).expect("mkdir");
    // A name that would draw on the terminal, and a pair far too big to be a statement.
    std::fs::write(
        approvals.join("x\u{1b}[2K\u{1b}[32mpublished\u{1b}[0m"),
        b"x",
    )
    .expect("w");
    let huge = std::fs::File::create(approvals.join("huge")).expect("create");
    huge.set_len(1 << 30).expect("sparse");
    let huge_sig = std::fs::File::create(approvals.join("huge.sig")).expect("create");
    huge_sig.set_len(1 << 30).expect("sparse");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::PENDING);
    assert!(
        !stderr(&out).contains('\u{1b}'),
        "a raw escape reached the terminal"
    );
    assert!(
        stderr(&out).contains("approval-file-refused"),
        "{}",
        stderr(&out)
    );
    let biggest = std::fs::read_dir(p.record("1.0.0").join("evidence"))
        .expect("evidence")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .max()
        .unwrap_or(0);
    assert!(
        biggest < 1 << 20,
        "a huge approval file was stored as evidence"
    );
}

#[test]
fn a_published_artefact_of_another_size_is_refused_before_it_is_hashed() {
    let p = team(TESTS_THEN_QA);
    let out = published(&p);
    // A 1 TiB sparse file in place of the artefact: refused by its size, at once.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(out.join("a.txt"))
        .expect("open");
    f.set_len(1 << 40).expect("sparse");
    let o = replay_outside(&p, &out, &[]);
    assert_ne!(code(&o), 124, "replay hashed the sparse file");
    expect_code(&o, exit::REFUSED);
    assert!(
        stderr(&o).contains("bytes where the gated artefact had"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_record_rolled_back_whole_is_caught_by_the_checkpoint_this_machine_pinned() {
    let p = team(TESTS_THEN_QA);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    let rec = p.record("1.0.0");
    let early = tempfile::tempdir().expect("tmp");
    copy_dir(&rec, early.path());
    expect_code(
        &approve(&p, "1.0.0", "bob", &["--reject", "--comment", "crashes"]),
        exit::SUCCESS,
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    // Someone who can write the record puts back its whole earlier state (log, checkpoints,
    // history), forgetting the rejection: a valid, signed record.
    std::fs::remove_dir_all(&rec).expect("rm");
    copy_dir(early.path(), &rec);
    replay_passes(&p, &rec);
    for args in [vec!["run", "1.0.0"], vec!["status", "1.0.0"]] {
        let out = p.relgate(&args);
        expect_code(&out, exit::REFUSED);
        assert!(
            stderr(&out).contains("does not extend the checkpoint this machine saw for it last"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // A machine without the pin (a fresh CI runner) has nothing to compare with: documented.
    std::fs::remove_dir_all(p.join(".relgate/.pins")).expect("rm pins");
    expect_code(&p.relgate(&["status", "1.0.0"]), exit::SUCCESS);
}

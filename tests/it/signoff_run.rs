//! Sign-offs through the binary: `run` exits 3 while approvals are awaited, `approve` writes a
//! pair that stock ssh-keygen verifies, the next run counts it without re-running green gates,
//! and a rejection is red.

use std::process::Command;

use crate::common::*;
use relgate::exit;

fn project() -> Project {
    let p = Project::new();
    let release = p.keygen("release");
    let alice = p.keygen("alice");
    let bob = p.keygen("bob");
    p.write(
        "keys/allowed_signers",
        format!("release@acme.test {release}\nalice@acme.test {alice}\nbob@acme.test {bob}\n"),
    );
    p.write("dist/a.txt", b"a\n");
    // No change range here, so commit authors cannot be barred: the segregation says so.
    let gates = "  unit-tests:\n    kind: regression\n    run: echo x >> runs.txt\n    inputs: []\n  manual:\n    kind: signoff\n    needs: [unit-tests]\n    role: qa\n    quorum: 2\n    segregation: [operator, signer]\n";
    let text = pipeline(gates).replace(
        "signers: keys/allowed_signers\n",
        "signers: keys/allowed_signers\nroles:\n  qa: [alice@acme.test, bob@acme.test]\n",
    );
    p.write("pipeline.yaml", text);
    p
}

fn approve(p: &Project, who: &str, extra: &[&str]) -> std::process::Output {
    let key = format!("keys/{who}");
    let principal = format!("{who}@acme.test");
    let mut args = vec![
        "approve", "1.0.0", "--gate", "manual", "--key", &key, "--as", &principal,
    ];
    args.extend_from_slice(extra);
    p.relgate(&args)
}

#[test]
fn quorum_of_two_waits_with_exit_3_then_publishes() {
    let p = project();
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::PENDING);
    assert!(
        stderr(&out).contains("relgate: manual: pending: quorum-not-met"),
        "{}",
        stderr(&out)
    );
    assert!(!p.join("published").exists());

    expect_code(
        &approve(&p, "alice", &["--comment", "checklist passed"]),
        exit::SUCCESS,
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    // The same person approving again still counts once.
    expect_code(&approve(&p, "alice", &[]), exit::SUCCESS);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);

    let status = p.relgate(&["status", "1.0.0"]);
    expect_code(&status, exit::SUCCESS);
    assert!(stdout(&status).contains("1 of 2"), "{}", stdout(&status));

    expect_code(&approve(&p, "bob", &[]), exit::SUCCESS);
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
    assert!(p.join("published/acme/1.0.0/SHA256SUMS").is_file());
    assert_eq!(
        p.read("runs.txt").lines().count(),
        1,
        "green automated gates were kept"
    );

    // Every approval file verifies with stock ssh-keygen.
    let approvals = p.record("1.0.0").join("approvals");
    let mut checked = 0;
    for e in std::fs::read_dir(&approvals).expect("approvals") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "sig") {
            continue;
        }
        let stmt: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        let signer = stmt["signer"].as_str().expect("signer");
        let ok = Command::new("sh")
            .arg("-c")
            .arg("ssh-keygen -Y verify -f \"$1\" -I \"$2\" -n relgate-approval -s \"$3.sig\" < \"$3\"")
            .args(["sh", p.join("keys/allowed_signers").to_str().expect("utf8"), signer])
            .arg(&path)
            .output()
            .expect("ssh-keygen");
        assert!(ok.status.success(), "{path:?}: {ok:?}");
        checked += 1;
    }
    assert_eq!(checked, 3);
    let published = p.join("published/acme/1.0.0");
    expect_code(
        &p.relgate(&["replay", published.to_str().expect("utf8")]),
        exit::SUCCESS,
    );
}

#[test]
fn a_rejection_is_red_and_a_dry_run_does_not_count_awaited_signoffs() {
    let p = project();
    expect_code(&p.relgate(&["run", "1.0.0", "--dry-run"]), exit::SUCCESS);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    expect_code(&approve(&p, "bob", &["--reject"]), exit::CONFIG);
    expect_code(
        &approve(&p, "bob", &["--reject", "--comment", "crashes on start"]),
        exit::SUCCESS,
    );
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("signoff-rejected"),
        "{}",
        stderr(&out)
    );
    expect_code(
        &p.relgate(&["replay", p.record("1.0.0").to_str().expect("utf8")]),
        exit::SUCCESS,
    );
}

#[test]
fn an_operator_cannot_approve_their_own_release_and_edited_approvals_fail_replay() {
    let p = project();
    let env = [("RELGATE_OPERATOR", "alice@acme.test")];
    expect_code(&p.relgate_env(&["run", "1.0.0"], &env), exit::PENDING);
    // approve refuses it (the latest run says alice operates it); written anyway, the run
    // does not count it either.
    expect_code(&approve(&p, "alice", &[]), exit::REFUSED);
    expect_code(&approve(&p, "alice", &["--force"]), exit::SUCCESS);
    expect_code(&approve(&p, "bob", &[]), exit::SUCCESS);
    let out = p.relgate_env(&["run", "1.0.0"], &env);
    expect_code(&out, exit::PENDING);
    assert!(stderr(&out).contains("1 of 2"), "{}", stderr(&out));

    // The recorded approval of a green run, edited afterwards: replay fails.
    expect_code(&approve(&p, "alice", &["--force"]), exit::SUCCESS);
    let rec = p.record("1.0.0");
    let work = tempfile::tempdir().expect("tmp");
    let status = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", rec.display()))
        .arg(work.path())
        .status()
        .expect("cp");
    assert!(status.success());
    assert!(replay_in(&p, work.path()).ok);
    let log = std::fs::read_to_string(work.path().join("log.jsonl")).expect("log");
    let last_signoff = log
        .lines()
        .rfind(|l| l.contains("\"gate-verdict\"") && l.contains("\"manual\""))
        .expect("verdict");
    let v: serde_json::Value = serde_json::from_str(last_signoff).expect("json");
    let ev_digest = v["body"]["evidence"]
        .as_str()
        .expect("evidence")
        .to_string();
    let ev_path = work.path().join("evidence").join(&ev_digest);
    let ev = std::fs::read_to_string(&ev_path).expect("ev");
    let approvals_digest: Vec<String> = serde_json::from_str::<serde_json::Value>(&ev)
        .expect("json")
        .to_string()
        .split('"')
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
        .collect();
    let target = approvals_digest
        .iter()
        .map(|d| work.path().join("evidence").join(d))
        .find(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains("relgate-approval")))
        .expect("a recorded statement");
    let text = std::fs::read_to_string(&target).expect("stmt");
    std::fs::write(&target, text.replace("approve", "reject")).expect("write");
    let r = replay_in(&p, work.path());
    assert!(!r.ok, "an edited recorded approval must fail replay");
}

#[test]
fn approve_refuses_clear_mistakes_and_works_offline_with_subject() {
    let p = project();
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    let not_signoff = p.relgate(&[
        "approve",
        "1.0.0",
        "--gate",
        "unit-tests",
        "--key",
        "keys/alice",
        "--as",
        "alice@acme.test",
    ]);
    expect_code(&not_signoff, exit::CONFIG);
    assert!(
        stderr(&not_signoff).contains("unit-tests"),
        "{}",
        stderr(&not_signoff)
    );
    let wrong_key = p.relgate(&[
        "approve",
        "1.0.0",
        "--gate",
        "manual",
        "--key",
        "keys/bob",
        "--as",
        "alice@acme.test",
    ]);
    // Signed with a key allowed_signers does not list for alice: it would never count.
    expect_code(&wrong_key, exit::REFUSED);
    assert!(
        stderr(&wrong_key).contains("approve refused: approval-signer-not-allowed"),
        "{}",
        stderr(&wrong_key)
    );
    let unknown = p.relgate(&[
        "approve",
        "9.9.9",
        "--gate",
        "manual",
        "--key",
        "keys/alice",
        "--as",
        "alice@acme.test",
    ]);
    expect_code(&unknown, exit::CONFIG);
    assert!(stderr(&unknown).contains("9.9.9"), "{}", stderr(&unknown));

    // An approver on another machine signs the subject they were given; the pair lands in the
    // current folder and counts once the release engineer drops it into approvals/.
    let status = p.relgate(&["status", "1.0.0", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    let subject = doc["subject"].as_str().expect("subject").to_string();
    let inbox = p.join("inbox");
    std::fs::create_dir_all(&inbox).expect("mkdir");
    for who in ["alice", "bob"] {
        let out = Command::new(BIN)
            .current_dir(&inbox)
            .args([
                "-p",
                p.join("pipeline.yaml").to_str().expect("utf8"),
                "approve",
                "1.0.0",
                "--gate",
                "manual",
                "--key",
                p.join(&format!("keys/{who}")).to_str().expect("utf8"),
                "--as",
                &format!("{who}@acme.test"),
                "--subject",
                &subject,
            ])
            .output()
            .expect("approve");
        expect_code(&out, exit::SUCCESS);
    }
    let approvals = p.record("1.0.0").join("approvals");
    std::fs::create_dir_all(&approvals).expect("mkdir");
    for e in std::fs::read_dir(&inbox).expect("inbox") {
        let path = e.expect("entry").path();
        std::fs::copy(&path, approvals.join(path.file_name().expect("name"))).expect("copy");
    }
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
}

#[test]
fn segregation_can_be_narrowed_for_a_gate() {
    // A two-person team: the operator may sign off the manual regression, but only with
    // `segregation` saying so explicitly.
    let p = project();
    let text = p.read("pipeline.yaml").replace(
        "    segregation: [operator, signer]\n",
        "    segregation: [signer]\n",
    );
    p.write("pipeline.yaml", text);
    let env = [("RELGATE_OPERATOR", "alice@acme.test")];
    expect_code(&p.relgate_env(&["run", "1.0.0"], &env), exit::PENDING);
    expect_code(&approve(&p, "alice", &[]), exit::SUCCESS);
    expect_code(&approve(&p, "bob", &[]), exit::SUCCESS);
    expect_code(&p.relgate_env(&["run", "1.0.0"], &env), exit::SUCCESS);

    let bad = project();
    let text = bad.read("pipeline.yaml").replace(
        "    segregation: [operator, signer]\n",
        "    segregation: [signer, operater]\n",
    );
    bad.write("pipeline.yaml", text);
    let out = bad.relgate(&["check"]);
    expect_code(&out, exit::CONFIG);
    assert!(
        stderr(&out).contains("gates.manual.segregation[1]"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("did you mean `operator`"),
        "{}",
        stderr(&out)
    );
}

//! A release across machines (issue 11): the release engineer, QA approvers with only the
//! relgate binary, their key and the share's URL, and a real Apache WebDAV share between them.

use crate::common::*;
use crate::team_setup::*;
use relgate::exit;

#[test]
fn an_approver_with_only_a_key_and_the_url_approves_and_the_next_run_publishes() {
    let t = Team::new();
    let out = t.run(&[]);
    expect_code(&out, exit::PENDING);
    let err = stderr(&out);
    // The exact command for each eligible signer (carol runs the release: not eligible).
    for who in ["alice", "bob"] {
        let cmd = format!(
            "relgate approve --from {} --release acme/1.0.0 --gate manual --key KEY --as \
             {who}@acme.test --trust-key {}",
            t.share, t.release
        );
        assert!(err.contains(&cmd), "{cmd}\n{err}");
    }
    assert!(!err.contains("--as carol@acme.test --trust-key"), "{err}");
    let tree = t.share_tree();
    let runs = files_in(&tree, "acme/releases/1.0.0/runs/", ".json");
    assert_eq!(runs.len(), 1, "{tree:?}");
    assert!(
        tree.contains(&format!("{}.sig", runs[0])),
        "the request is signed: {tree:?}"
    );

    // Without --yes and no terminal to ask on: refused, nothing uploaded.
    let out = t.approve(&t.alice, "alice", &[]);
    expect_code(&out, exit::CONFIG);
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert!(files_in(&t.share_tree(), "acme/releases/1.0.0/statements/", ".json").is_empty());

    let out = t.approve(
        &t.alice,
        "alice",
        &["--yes", "--comment", "checklist passed"],
    );
    expect_code(&out, exit::SUCCESS);
    let shown = stdout(&out);
    let subject = relgate_subject(&t);
    let a_sha = sha256_hex(b"a\n");
    for want in [
        subject.as_str(),
        "a.txt",
        a_sha.as_str(),
        "unit",
        "green",
        "manual",
        "pending",
        "quorum-not-met",
        "carol@acme.test",
    ] {
        assert!(shown.contains(want), "{want} in\n{shown}");
    }
    let statements = files_in(&t.share_tree(), "acme/releases/1.0.0/statements/", ".json");
    assert_eq!(statements.len(), 1, "{statements:?}");
    // The statement on the share checks with stock ssh-keygen.
    let path = t.on_share(&statements[0]);
    let verify = std::process::Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(t.project.join("keys/allowed_signers"))
        .args(["-I", "alice@acme.test", "-n", "relgate-approval", "-s"])
        .arg(format!("{}.sig", path.display()))
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");

    let out = t.run(&[]);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stderr(&out).contains("alice@acme.test approve of manual"),
        "{}",
        stderr(&out)
    );
    assert!(t.project.join("published/acme/1.0.0/SHA256SUMS").is_file());

    // Published: the request is closed, and bob is told so.
    let out = t.approve(&t.bob, "bob", &["--yes"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("request-closed") && stderr(&out).contains("published"),
        "{}",
        stderr(&out)
    );
}

/// The subject the engineer's record staged.
fn relgate_subject(t: &Team) -> String {
    let log = t.project.log("1.0.0");
    let at = log.find("\"subject\":\"sha256:").expect("subject") + 11;
    log[at..at + 71].to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    relgate::digest::sha256_hex(bytes)
}

#[track_caller]
fn refused(out: &std::process::Output, code: &str) {
    expect_code(out, exit::REFUSED);
    let err = stderr(out);
    assert!(
        err.contains(&format!("relgate: approve refused: {code}: ")),
        "{code}\n{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
}

#[test]
fn approve_from_refuses_a_sign_off_that_could_not_count_and_uploads_nothing() {
    let t = Team::new();
    expect_code(&t.run(&[]), exit::PENDING);
    // carol runs the release; dave's key expired; erin is not in the QA role.
    refused(
        &t.approve(&t.alice, "carol", &["--yes"]),
        "approval-by-operator",
    );
    refused(
        &t.approve(&t.alice, "dave", &["--yes"]),
        "approval-signer-not-allowed",
    );
    refused(
        &t.approve(&t.alice, "erin", &["--yes"]),
        "approval-outside-role",
    );
    // A rejection says why.
    let out = t.approve(&t.alice, "alice", &["--yes", "--reject"]);
    expect_code(&out, exit::CONFIG);
    assert!(stderr(&out).contains("--comment"), "{}", stderr(&out));
    // No trust root: nothing is fetched.
    let out = t.alice.relgate(&[
        "approve",
        "--from",
        &t.share,
        "--release",
        "acme/1.0.0",
        "--gate",
        "manual",
        "--key",
        "keys/alice",
        "--as",
        "alice@acme.test",
        "--yes",
    ]);
    expect_code(&out, exit::CONFIG);
    assert!(stderr(&out).contains("no trust root"), "{}", stderr(&out));
    // Another key as the trust root: the request is not the release signer's.
    let other = fingerprint(&t.bob.join("keys/bob.pub"));
    let out = t.alice.relgate(&[
        "approve",
        "--from",
        &t.share,
        "--release",
        "acme/1.0.0",
        "--gate",
        "manual",
        "--key",
        "keys/alice",
        "--as",
        "alice@acme.test",
        "--yes",
        "--trust-key",
        &other,
    ]);
    refused(&out, "request-missing");
    assert!(
        stderr(&out).contains("which is not a trusted key"),
        "{}",
        stderr(&out)
    );
    assert!(
        files_in(&t.share_tree(), "acme/releases/1.0.0/statements/", "").is_empty(),
        "{:?}",
        t.share_tree()
    );
}

#[test]
fn a_request_signed_by_another_key_is_never_shown_to_an_approver() {
    let t = Team::new();
    // Someone with a copy of the project but a release key of their own leaves a request.
    let (_dir, forger) = t.second_engineer();
    let public = forger.keygen("release-forged");
    std::fs::copy(
        forger.join("keys/release-forged"),
        forger.join("keys/release"),
    )
    .unwrap();
    let signers = std::fs::read_to_string(forger.join("keys/allowed_signers")).unwrap();
    let first = signers.lines().next().unwrap().to_string();
    std::fs::write(
        forger.join("keys/allowed_signers"),
        signers.replace(&first, &format!("release@acme.test {public}")),
    )
    .unwrap();
    expect_code(
        &forger.relgate(&["run", "1.0.0", "--as", "carol@acme.test"]),
        exit::PENDING,
    );
    assert_eq!(
        files_in(&t.share_tree(), "acme/releases/1.0.0/runs/", ".json").len(),
        1
    );
    let out = t.approve(&t.alice, "alice", &["--yes"]);
    refused(&out, "request-missing");
    assert!(stderr(&out).contains("ignored"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("you sign"), "{}", stdout(&out));
}

#[test]
fn a_tampered_statement_on_the_share_is_ignored_and_reported() {
    let t = Team::new();
    expect_code(&t.run(&[]), exit::PENDING);
    expect_code(&t.approve(&t.alice, "alice", &["--yes"]), exit::SUCCESS);
    let dir = "acme/releases/1.0.0/statements/";
    let name = files_in(&t.share_tree(), dir, ".json").remove(0);
    let path = t.on_share(&name);
    let good = std::fs::read(&path).unwrap();
    // 1. Its bytes changed under its name (a decision turned around).
    let text = String::from_utf8(good.clone()).unwrap();
    std::fs::write(&path, text.replace("\"approve\"", "\"reject\"")).unwrap();
    // 2. A statement of its own, under its right name, claiming alice but signed by another key.
    let forged = text.replace("\"comment\":\"\"", "\"comment\":\"forged\"");
    let forged_name = format!("{}.json", sha256_hex(forged.as_bytes()));
    let forged_path = t.on_share(&format!("{dir}{forged_name}"));
    std::fs::write(&forged_path, &forged).unwrap();
    let sign = std::process::Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "relgate-approval", "-f"])
        .arg(t.alice.join("keys/erin"))
        .arg(&forged_path)
        .output()
        .unwrap();
    assert!(sign.status.success(), "{sign:?}");

    let out = t.run(&[]);
    expect_code(&out, exit::PENDING);
    let err = stderr(&out);
    let short = name.rsplit('/').next().unwrap();
    assert!(
        err.contains(&format!(
            "share: ignored statements/{short}: its content does not match its name"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "share: ignored statements/{forged_name}: approval-key-mismatch"
        )),
        "{err}"
    );
    let approvals = std::fs::read_dir(t.project.record("1.0.0").join("approvals"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(approvals, 0, "nothing tampered reaches the record");
    // Bob's good sign-off still counts.
    expect_code(&t.approve(&t.bob, "bob", &["--yes"]), exit::SUCCESS);
    expect_code(&t.run(&[]), exit::SUCCESS);
}

#[test]
fn a_sign_off_given_for_other_bytes_than_the_staged_ones_does_not_count() {
    let t = Team::new();
    expect_code(&t.run(&[]), exit::PENDING);
    let first = relgate_subject(&t);
    expect_code(&t.approve(&t.alice, "alice", &["--yes"]), exit::SUCCESS);
    // The artefacts change before the next run: alice saw other bytes than those staged now.
    t.project.write("dist/a.txt", b"a, rebuilt\n");
    let out = t.run(&[]);
    expect_code(&out, exit::PENDING);
    assert!(
        stderr(&out).contains("approval-other-subject"),
        "{}",
        stderr(&out)
    );
    assert!(!t.project.join("published").exists());
    // The new request shows the new subject; signing it counts.
    let out = t.approve(&t.alice, "alice", &["--yes"]);
    expect_code(&out, exit::SUCCESS);
    let shown = stdout(&out);
    assert!(!shown.contains(&format!("subject: {first}")), "{shown}");
    assert!(
        shown.contains(&format!("subject: {}", relgate_subject_latest(&t))),
        "{shown}"
    );
    expect_code(&t.run(&[]), exit::SUCCESS);
}

/// The subject of the record's latest run.
fn relgate_subject_latest(t: &Team) -> String {
    let log = t.project.log("1.0.0");
    let at = log.rfind("\"subject\":\"sha256:").expect("subject") + 11;
    log[at..at + 71].to_string()
}

#[test]
fn a_record_rolled_back_on_the_release_machine_is_caught_by_the_share() {
    let t = Team::new();
    expect_code(&t.run(&[]), exit::PENDING);
    // A copy of the record as it stands now, then a run that seals more lines.
    let old = tempfile::tempdir().unwrap();
    copy_dir(&t.project.record("1.0.0"), old.path());
    expect_code(&t.run(&[]), exit::PENDING);
    let tree = t.share_tree();
    let checkpoints = files_in(&tree, "acme/releases/1.0.0/records/", ".sig");
    assert!(checkpoints.len() >= 2, "{tree:?}");

    // The record is put back to its earlier, whole and signed state, on a machine that never
    // saw the newer one (no pin can tell): the share can.
    let record = t.project.record("1.0.0");
    std::fs::remove_dir_all(&record).unwrap();
    copy_dir(old.path(), &record);
    let fresh = Machine::at(t.project.path());
    let out = fresh.relgate(&["run", "1.0.0", "--as", "carol@acme.test"]);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(
        err.contains("does not extend the checkpoint") && err.contains("rolled back"),
        "{err}"
    );
    assert!(err.contains("acme/releases/1.0.0/records/"), "{err}");
}

const NO_SIGNOFF: &str = "  unit:\n    kind: regression\n    run: \"true\"\n";

#[test]
fn a_held_lease_stops_a_second_publisher_and_names_the_holder() {
    let t = Team::with(NO_SIGNOFF, "");
    t.lease(1, "dave@acme.test", "build-07", 3600);
    let out = t.run(&[]);
    expect_code(&out, exit::BUSY);
    let err = stderr(&out);
    assert!(
        err.contains("the lease is held by dave@acme.test on build-07 (pid 4242)"),
        "{err}"
    );
    assert!(err.contains("acme/releases/1.0.0/lease/000001"), "{err}");
    assert!(!t.project.join("published").exists());
    // The holder's lease expired (a crashed run): the next run takes the following one,
    // publishes, and gives it back; nothing on the share was replaced or removed.
    t.lease(2, "dave@acme.test", "build-07", -1);
    let out = t.run(&[]);
    expect_code(&out, exit::SUCCESS);
    assert!(t.project.join("published/acme/1.0.0/SHA256SUMS").is_file());
    let tree = t.share_tree();
    for want in [
        "acme/releases/1.0.0/lease/000001/lease.json",
        "acme/releases/1.0.0/lease/000002/lease.json",
        "acme/releases/1.0.0/lease/000003/lease.json",
        "acme/releases/1.0.0/lease/000003/released.json",
    ] {
        assert!(tree.contains(&want.to_string()), "{want}: {tree:?}");
    }
    let lease =
        std::fs::read_to_string(t.on_share("acme/releases/1.0.0/lease/000003/lease.json")).unwrap();
    assert!(lease.contains("\"holder\":\"carol@acme.test\""), "{lease}");
}

#[test]
fn two_engineers_racing_on_two_machines_publish_one_release() {
    let t = Team::with(NO_SIGNOFF, "");
    t.publish_to_server();
    let (_dir, second) = t.second_engineer();
    let runs: Vec<std::process::Child> = [&t.eng, &second]
        .iter()
        .map(|m| {
            m.command(&["run", "1.0.0", "--as", "carol@acme.test"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<std::process::Output> = runs
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won: Vec<&std::process::Output> =
        outs.iter().filter(|o| code(o) == exit::SUCCESS).collect();
    assert_eq!(won.len(), 1, "exactly one publishes: {outs:?}");
    let lost = outs.iter().find(|o| code(o) != exit::SUCCESS).unwrap();
    let err = stderr(lost);
    // Told who holds the release while it is being published, or, once it is out, that it is.
    assert!(
        (code(lost) == exit::BUSY && err.contains("the lease is held by carol@acme.test"))
            || (code(lost) == exit::REFUSED
                && (err.contains("already published")
                    || err.contains("already exists")
                    || err.contains("appeared while publishing"))),
        "{err}"
    );
    let release = t.server().tree("rel/acme/1.0.0");
    assert!(
        release.contains(&"SHA256SUMS.sig".to_string()),
        "{release:?}"
    );
    let tree = t.share_tree();
    assert!(
        !files_in(&tree, "acme/releases/1.0.0/lease/", "released.json").is_empty(),
        "{tree:?}"
    );
}

#[test]
fn a_nightly_dry_run_survives_its_runner_and_history_lists_it() {
    let t = Team::new();
    expect_code(&t.run(&[]), exit::PENDING);
    {
        // A nightly CI runner: a checkout without the release key, gone once the job ends.
        let (dir, ci) = t.second_engineer();
        std::fs::remove_file(ci.join("keys/release")).unwrap();
        let out = ci.relgate(&["run", "0.0.0-nightly", "--dry-run"]);
        expect_code(&out, exit::SUCCESS);
        let text = std::fs::read_to_string(ci.join("pipeline.yaml")).unwrap();
        std::fs::write(
            ci.join("pipeline.yaml"),
            text.replace("run: \"true\"", "run: \"false\""),
        )
        .unwrap();
        let out = ci.relgate(&["run", "0.0.0-nightly", "--dry-run"]);
        expect_code(&out, exit::REFUSED);
        drop(dir);
    }
    let tree = t.share_tree();
    let logs = files_in(&tree, "acme/dry-runs/0.0.0-nightly/records/", "/log.jsonl");
    assert_eq!(logs.len(), 2, "both records outlive the runner: {tree:?}");
    let log = std::fs::read_to_string(t.on_share(&logs[0])).unwrap();
    assert!(log.contains("\"dry_run\":true"), "{log}");

    // An auditor, from anywhere, with the release key's fingerprint.
    let auditor = Machine::bare();
    let out = auditor.relgate(&["history", &t.share, "--trust-key", &t.release]);
    expect_code(&out, exit::SUCCESS);
    let shown = stdout(&out);
    let lines: Vec<&str> = shown.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(lines.len(), 3, "{shown}");
    // Oldest first (runs started within one second may come in either order).
    let dates: Vec<&str> = lines.iter().map(|l| &l[..20]).collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "{shown}");
    for want in [
        "acme 1.0.0  run 1  pending  first red: -",
        "acme 0.0.0-nightly  dry run 1  dry-run  first red: -",
        "acme 0.0.0-nightly  dry run 1  refused  first red: unit: command-failed",
    ] {
        assert_eq!(
            lines.iter().filter(|l| l.contains(want)).count(),
            1,
            "{want}\n{shown}"
        );
    }
    assert!(shown.contains("signed by pinned key"), "{shown}");
    assert_eq!(shown.matches("UNAUTHENTICATED").count(), 2, "{shown}");
    assert!(shown.contains(&relgate_subject(&t)), "{shown}");
    assert!(
        shown.contains("/share/acme/dry-runs/0.0.0-nightly/records/"),
        "{shown}"
    );

    let out = auditor.relgate(&[
        "history",
        &t.share,
        "acme",
        "--trust-key",
        &t.release,
        "--format",
        "json",
    ]);
    expect_code(&out, exit::SUCCESS);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    for run in runs {
        assert_eq!(run["authenticated"], run["dry_run"] == false, "{run}");
    }
    assert!(
        runs.iter()
            .any(|r| r["decision"] == "refused" && r["first_red"] == "unit: command-failed")
    );

    // With no trust root nothing is vouched for: refused, as verify and replay are.
    let out = auditor.relgate(&["history", &t.share]);
    expect_code(&out, exit::CONFIG);
    assert!(stderr(&out).contains("no trust root"), "{}", stderr(&out));
}

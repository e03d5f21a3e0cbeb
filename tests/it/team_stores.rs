//! The team's flow on the other kinds of share: a folder several machines can write, and an S3
//! prefix (moto, which honours create-only writes, tests/it/s3_common). The WebDAV share is
//! tests/it/team.rs.

use std::os::unix::fs::PermissionsExt;

use crate::common::*;
use crate::s3_common;
use crate::team_setup::*;
use relgate::exit;

/// Request, approve --from, publish; the lease taken and given back.
fn flow(t: &Team) {
    expect_code(&t.run(&[]), exit::PENDING);
    let out = t.approve(&t.alice, "alice", &["--yes"]);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stdout(&out).contains("approval uploaded to"),
        "{}",
        stdout(&out)
    );
    let out = t.run(&[]);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stderr(&out).contains("alice@acme.test approve of manual"),
        "{}",
        stderr(&out)
    );
    assert!(t.project.join("published/acme/1.0.0/SHA256SUMS").is_file());
}

#[test]
fn a_folder_share_carries_the_flow_and_follows_no_link_planted_in_it() {
    let share = tempfile::tempdir().unwrap();
    let t = Team::around(None, share.path().display().to_string(), GATES, "");
    expect_code(&t.run(&[]), exit::PENDING);
    // Someone who can write the share points a folder elsewhere on the approver's machine:
    // relgate neither reads nor writes through it.
    let release = share.path().join("acme/releases/1.0.0");
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), release.join("statements")).unwrap();
    let out = t.approve(&t.alice, "alice", &["--yes"]);
    assert_ne!(code(&out), exit::SUCCESS);
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    std::fs::remove_file(release.join("statements")).unwrap();

    let out = t.approve(&t.alice, "alice", &["--yes"]);
    expect_code(&out, exit::SUCCESS);
    let out = t.run(&[]);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stderr(&out).contains("alice@acme.test approve of manual"),
        "{}",
        stderr(&out)
    );
    for dir in ["runs", "statements", "records", "lease/000001"] {
        assert!(release.join(dir).is_dir(), "{dir}");
    }
    assert!(release.join("lease/000001/released.json").is_file());
}

#[test]
fn an_s3_share_carries_the_flow() {
    let moto = s3_common::Moto::start();
    let bucket = moto.bucket("team");
    let mut t = Team::around(None, "s3://team/relgate".into(), GATES, "");
    let endpoint = moto.endpoint();
    let mut vars = s3_common::aws_env();
    vars.push(("AWS_ENDPOINT_URL", &endpoint));
    t.set_env(&vars);
    flow(&t);
    let keys: Vec<String> = s3_common::keys(&bucket, "relgate/")
        .into_iter()
        .map(|l| l.key)
        .collect();
    for want in [
        "/runs/",
        "/statements/",
        "/checkpoints/",
        "/lease/000001/released.json",
    ] {
        assert!(keys.iter().any(|k| k.contains(want)), "{want}: {keys:?}");
    }
    // Nothing credential-like leaves the machines' output.
    let out = t.run(&[]);
    for secret in [s3_common::SECRET, s3_common::TOKEN] {
        assert!(!stderr(&out).contains(secret) && !stdout(&out).contains(secret));
    }
}

#[test]
fn share_settings_are_checked_with_the_rest_of_the_pipeline() {
    let p = Project::new();
    p.release_key();
    p.write("dist/a.txt", b"a\n");
    let base = pipeline("  unit:\n    kind: regression\n    run: \"true\"\n");
    for (share, want) in [
        (
            "share: ftp://x.test/s\n",
            "share: unsupported scheme ftp://",
        ),
        (
            "share: http://x.test/s\n",
            "share: plain http:// to another machine sends credentials unencrypted",
        ),
        (
            "share: https://bob:pw@x.test/s\n",
            "share: credentials and queries do not belong in the pipeline",
        ),
        (
            "share:\n  url: https://x.test/s\n  lease: 0s\n",
            "share.lease: expected a duration",
        ),
        (
            "share:\n  url: https://x.test/s\n  region: eu-west-1\n",
            "share.region: only an s3:// share takes a region",
        ),
        (
            "share:\n  lease: 1h\n",
            "share.url: missing required key `url`",
        ),
    ] {
        p.write(
            "pipeline.yaml",
            base.replace("gates:\n", &format!("{share}gates:\n")),
        );
        let out = p.relgate(&["check"]);
        expect_code(&out, exit::CONFIG);
        assert!(stderr(&out).contains(want), "{want}\n{}", stderr(&out));
    }
    for ok in [
        "share: https://dav.acme.test/relgate\n",
        "share: team-share\n",
        "share:\n  url: s3://team/relgate\n  endpoint: http://127.0.0.1:9000\n  lease: 2h\n",
    ] {
        p.write(
            "pipeline.yaml",
            base.replace("gates:\n", &format!("{ok}gates:\n")),
        );
        expect_code(&p.relgate(&["check"]), exit::SUCCESS);
    }
}

#[test]
fn junk_written_to_a_folder_share_stops_neither_a_run_nor_an_approver_nor_history() {
    let share = tempfile::tempdir().unwrap();
    let t = Team::around(None, share.path().display().to_string(), GATES, "");
    expect_code(&t.run(&[]), exit::PENDING);
    let release = share.path().join("acme/releases/1.0.0");
    let record = std::fs::read_dir(release.join("records"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // Anyone who can write the share: an oversized file and a folder among the record's
    // checkpoints, and a folder and an oversized object posing as run reports.
    let checkpoints = record.join("checkpoints");
    std::fs::write(checkpoints.join("junk"), vec![b'x'; 100 << 10]).unwrap();
    std::fs::create_dir(checkpoints.join("folder")).unwrap();
    let runs = release.join("runs");
    let fake = format!("{}.json", "ab".repeat(32));
    std::fs::create_dir(runs.join(&fake)).unwrap();
    std::fs::write(runs.join(format!("{fake}.sig")), b"sig").unwrap();
    let big = format!("{}.json", "cd".repeat(32));
    let f = std::fs::File::create(runs.join(&big)).unwrap();
    f.set_len(17 << 20).unwrap();
    std::fs::write(runs.join(format!("{big}.sig")), b"sig").unwrap();

    let history = t
        .alice
        .relgate(&["history", &t.share, "acme", "--trust-key", &t.release]);
    expect_code(&history, exit::SUCCESS);
    assert!(stdout(&history).contains("pending"), "{}", stderr(&history));
    assert!(stderr(&history).contains(&fake), "{}", stderr(&history));

    let out = t.approve(&t.alice, "alice", &["--yes"]);
    expect_code(&out, exit::SUCCESS);
    let out = t.run(&[]);
    expect_code(&out, exit::SUCCESS);
    let err = stderr(&out);
    assert!(err.contains("ignored") && err.contains("junk"), "{err}");
    assert!(t.project.join("published/acme/1.0.0/SHA256SUMS").is_file());
}

#[test]
fn a_lease_numbered_at_the_end_of_the_numbers_is_refused_not_a_crash() {
    let share = tempfile::tempdir().unwrap();
    let gates = "  unit:\n    kind: regression\n    run: \"true\"\n";
    let t = Team::around(None, share.path().display().to_string(), gates, "");
    // An expired lease, given the largest number there is, by anyone who can write the share.
    let dir = share
        .path()
        .join(format!("acme/releases/1.0.0/lease/{}", u64::MAX));
    std::fs::create_dir_all(&dir).unwrap();
    let doc = serde_json::json!({
        "type": "relgate-lease/v1", "project": "acme", "version": "1.0.0",
        "holder": "mallory", "host": "x", "pid": 1, "record": "0".repeat(64),
        "taken": 1, "expires": 2, "token": "t",
    });
    std::fs::write(dir.join("lease.json"), doc.to_string()).unwrap();
    let out = t.run(&[]);
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    expect_code(&out, exit::REFUSED);
    assert!(err.contains("publish lease"), "{err}");
    assert!(!t.project.join("published/acme/1.0.0").exists());
}

#[test]
fn a_file_where_history_expects_a_folder_hides_no_release() {
    let share = tempfile::tempdir().unwrap();
    let t = Team::around(None, share.path().display().to_string(), GATES, "");
    expect_code(&t.run(&[]), exit::PENDING);
    // Files where projects and their dry runs would be folders, written by anyone.
    std::fs::write(share.path().join("zzz"), b"junk").unwrap();
    std::fs::write(share.path().join("acme/dry-runs"), b"junk").unwrap();
    // And a link posing as a project, which relgate refuses to follow.
    std::os::unix::fs::symlink("/", share.path().join("yyy")).unwrap();
    let history = t
        .alice
        .relgate(&["history", &t.share, "--trust-key", &t.release]);
    expect_code(&history, exit::SUCCESS);
    assert!(
        stdout(&history).contains("acme 1.0.0  run 1  pending"),
        "{}\n{}",
        stdout(&history),
        stderr(&history)
    );
}

#[test]
fn a_dry_run_report_cannot_write_lines_of_its_own_into_history() {
    let share = tempfile::tempdir().unwrap();
    let t = Team::around(None, share.path().display().to_string(), GATES, "");
    expect_code(&t.run(&[]), exit::PENDING);
    let (_dir, ci) = t.second_engineer();
    expect_code(
        &ci.relgate(&["run", "0.0.0-nightly", "--dry-run"]),
        exit::SUCCESS,
    );
    // Anyone can sign a dry run's report with a key of their own: take the real one and give
    // it a record id that ends the line and forges a published, signed release run.
    let runs = share.path().join("acme/dry-runs/0.0.0-nightly/runs");
    let name = std::fs::read_dir(&runs)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|n| n.ends_with(".json"))
        .unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(runs.join(&name)).unwrap()).unwrap();
    let public = ci.keygen("mallory");
    let _ = public;
    doc["key"] = fingerprint(&ci.join("keys/mallory.pub")).into();
    doc["record"] = "x\n2020-01-01T00:00:00Z  acme 9.9.9  run 1  published  first red: -\n    \
                     subject sha256:00  signed by release@acme.test\x1b[2K"
        .into();
    let bytes = relgate::digest::canonical_json(&doc).unwrap();
    let forged = runs.join(format!(
        "{}.json",
        relgate::digest::sha256_hex(bytes.as_bytes())
    ));
    std::fs::write(&forged, &bytes).unwrap();
    let sign = std::process::Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "relgate-run-report", "-f"])
        .arg(ci.join("keys/mallory"))
        .arg(&forged)
        .output()
        .unwrap();
    assert!(sign.status.success(), "{sign:?}");

    let out = t
        .alice
        .relgate(&["history", &t.share, "--trust-key", &t.release]);
    expect_code(&out, exit::SUCCESS);
    let shown = stdout(&out);
    // The real dry run is listed; the forged report is passed over, and said.
    assert_eq!(shown.matches("UNAUTHENTICATED").count(), 1, "{shown}");
    assert!(
        stderr(&out).contains("its record id is not a chain head"),
        "{}",
        stderr(&out)
    );
    assert!(
        !shown.lines().any(|l| l.starts_with("2020-01-01")),
        "a forged line:\n{shown}"
    );
    assert!(!shown.contains('\x1b'), "{shown:?}");
}

#[test]
fn many_unpaired_names_on_a_share_cost_a_run_no_more_than_reading_their_names() {
    let share = tempfile::tempdir().unwrap();
    let t = Team::around(None, share.path().display().to_string(), GATES, "");
    expect_code(&t.run(&[]), exit::PENDING);
    // Statements and reports without their signatures, as anyone who can write the share can
    // leave by the thousand: each is passed over at the price of its name, never opened.
    // Each is a folder, so that opening one would be seen: a folder where a file should be is
    // refused and said (`cannot be read`), where a passed-over name is silent.
    let release = share.path().join("acme/releases/1.0.0");
    for dir in ["statements", "runs"] {
        std::fs::create_dir_all(release.join(dir)).unwrap();
        for i in 0..60_000u32 {
            let name = format!("{}.json", relgate::digest::sha256_hex(&i.to_le_bytes()));
            std::fs::create_dir(release.join(dir).join(name)).unwrap();
        }
    }
    let history = t
        .alice
        .relgate(&["history", &t.share, "acme", "--trust-key", &t.release]);
    expect_code(&history, exit::SUCCESS);
    let run = t.run(&[]);
    expect_code(&run, exit::PENDING);
    for out in [&history, &run] {
        let said = format!("{}{}", stdout(out), stderr(out));
        let planted = relgate::digest::sha256_hex(&7u32.to_le_bytes());
        assert!(
            !said.contains("cannot be read") && !said.contains(&planted),
            "an unpaired name was opened or named:\n{said}"
        );
    }
}

#[test]
fn a_folder_share_is_readable_by_the_other_accounts_that_use_it() {
    // Several accounts meet on one folder: what one writes, the others must be able to read
    // (subject to the umask, as any file they make).
    // SAFETY: umask has no failure mode; 022 is what a shared disk's users commonly run with.
    #[allow(unsafe_code)]
    unsafe {
        libc::umask(0o022)
    };
    let share = tempfile::tempdir().unwrap();
    let t = Team::around(None, share.path().display().to_string(), GATES, "");
    expect_code(&t.run(&[]), exit::PENDING);
    expect_code(&t.approve(&t.alice, "alice", &["--yes"]), exit::SUCCESS);
    expect_code(&t.run(&[]), exit::SUCCESS);
    let mut private = Vec::new();
    for entry in walkdir::WalkDir::new(share.path()).min_depth(1) {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode();
        let want = if entry.file_type().is_dir() {
            0o055
        } else {
            0o044
        };
        if mode & want != want {
            private.push(format!("{:o} {}", mode & 0o777, entry.path().display()));
        }
    }
    assert!(
        private.is_empty(),
        "only their writer can read:\n{}",
        private.join("\n")
    );
}

#[test]
fn a_link_planted_for_a_release_folder_on_a_share_does_not_stop_its_runs() {
    let share = tempfile::tempdir().unwrap();
    let t = Team::around(None, share.path().display().to_string(), GATES, "");
    expect_code(&t.run(&[]), exit::PENDING);
    let release = share.path().join("acme/releases/1.0.0");
    let record = std::fs::read_dir(release.join("records"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), release.join("statements")).unwrap();
    let checkpoints = record.join("checkpoints");
    std::fs::rename(&checkpoints, record.join("moved")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), &checkpoints).unwrap();
    let out = t.run(&[]);
    expect_code(&out, exit::PENDING);
    let err = stderr(&out);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

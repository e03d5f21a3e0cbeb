//! Evidence from CI (issue 11, point 4): CI "machines" upload their JUnit reports for a commit
//! to a real Apache WebDAV share with only the relgate binary, their key and the share's URL;
//! the release engineer's regression gate with `from_share:` counts them, and replay judges
//! them again from the record alone.

use std::process::Command;

use crate::common::*;
use crate::team_setup::*;
use relgate::exit;

const GATES: &str = "  unit:\n    kind: regression\n    from_share:\n      jobs: [linux, macos]\n      signed_by: ci\n    min_tests: 2\n";

const PASSING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="calc" tests="2" failures="0" errors="0" skipped="0">
  <testcase classname="calc" name="adds" time="0.01"/>
  <testcase classname="calc" name="subtracts" time="0.01"/>
</testsuite>
"#;

const FAILING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="calc" tests="2" failures="1" errors="0" skipped="0">
  <testcase classname="calc" name="adds" time="0.01"/>
  <testcase classname="calc" name="divides" time="0.01">
    <failure message="expected 2, got 3">calc.rs:12</failure>
  </testcase>
</testsuite>
"#;

/// A team whose regression gate takes its reports from CI, with a CI machine whose key the
/// project lists for `ci@acme.test` (role `ci`), and the project in git.
struct CiTeam {
    t: Team,
    ci: Machine,
    commit: String,
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@acme.test")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@acme.test")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl CiTeam {
    fn new() -> CiTeam {
        CiTeam::around(Team::with(GATES, ""))
    }

    fn around(t: Team) -> CiTeam {
        let ci = Machine::bare();
        let line = format!("ci@acme.test {}\n", ci.keygen("ci"));
        let signers = t.project.read("keys/allowed_signers") + &line;
        t.project.write("keys/allowed_signers", signers);
        let text = t
            .project
            .read("pipeline.yaml")
            .replace("roles:\n", "roles:\n  ci: [ci@acme.test]\n");
        t.project.write("pipeline.yaml", text);
        t.project.write(".gitignore", ".relgate/\npublished/\n");
        let dir = t.project.path();
        git(dir, &["init", "-q"]);
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", "release 1.0.0"]);
        let commit = git(dir, &["rev-parse", "HEAD"]);
        CiTeam { t, ci, commit }
    }

    /// The CI machine uploads `junit` as job `job`'s report for `commit`, signed with `key`
    /// as `principal`.
    fn upload_as(
        &self,
        job: &str,
        commit: &str,
        junit: &str,
        key: &str,
        principal: &str,
    ) -> std::process::Output {
        let file = format!("{job}-junit.xml");
        std::fs::write(self.ci.join(&file), junit).expect("write report");
        let key = format!("keys/{key}");
        let mut cmd = self.ci.command(&[
            "ci-upload",
            "--share",
            &self.t.share,
            "--project",
            "acme",
            "--commit",
            commit,
            "--job",
            job,
            "--key",
            &key,
            "--as",
            principal,
            &file,
        ]);
        cmd.env("GITHUB_RUN_ID", format!("9000{job}"))
            .env("GITHUB_WORKFLOW", "tests")
            .env("RUNNER_NAME", format!("runner-{job}"));
        cmd.output().expect("run relgate")
    }

    fn upload(&self, job: &str, junit: &str) -> std::process::Output {
        let out = self.upload_as(job, &self.commit.clone(), junit, "ci", "ci@acme.test");
        expect_code(&out, exit::SUCCESS);
        out
    }

    fn statements(&self, commit: &str) -> Vec<String> {
        files_in(
            &self.t.share_tree(),
            &format!("acme/ci/{commit}/statements/"),
            ".json",
        )
    }

    fn replay(&self) -> std::process::Output {
        let record = self.t.project.record("1.0.0");
        self.t
            .eng
            .relgate(&["replay", record.to_str().expect("utf8")])
    }
}

#[test]
fn reports_two_ci_jobs_uploaded_count_for_the_release_and_replay_verifies_them() {
    let c = CiTeam::new();
    let out = c.upload("linux", PASSING);
    assert!(stdout(&out).contains("acme/ci/"), "{}", stdout(&out));
    c.upload("macos", PASSING);
    let statements = c.statements(&c.commit);
    assert_eq!(statements.len(), 2, "{:?}", c.t.share_tree());
    // The statement checks with stock ssh-keygen, in its own namespace.
    let path = c.t.on_share(&statements[0]);
    let verify = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(c.t.project.join("keys/allowed_signers"))
        .args(["-I", "ci@acme.test", "-n", "relgate-ci-evidence", "-s"])
        .arg(format!("{}.sig", path.display()))
        .stdin(std::fs::File::open(&path).expect("statement"))
        .output()
        .expect("ssh-keygen");
    assert!(verify.status.success(), "{verify:?}");
    let text = std::fs::read_to_string(&path).expect("statement");
    assert!(
        text.contains(&c.commit) && text.contains("GITHUB_RUN_ID"),
        "{text}"
    );

    let out = c.t.run(&[]);
    expect_code(&out, exit::SUCCESS);
    let err = stderr(&out);
    for want in [
        "job linux: 1 report(s) signed by ci@acme.test",
        "job macos: 1 report(s) signed by ci@acme.test",
        "GITHUB_RUN_ID=9000linux",
        "RUNNER_NAME=runner-macos",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    assert!(
        c.t.project
            .join("published/acme/1.0.0/SHA256SUMS")
            .is_file()
    );
    // The reports are in the record: replay judges them again with nothing but the record.
    let out = c.replay();
    expect_code(&out, exit::SUCCESS);
}

#[test]
fn a_job_that_uploaded_nothing_keeps_the_gate_red_until_it_does() {
    let c = CiTeam::new();
    c.upload("linux", PASSING);
    let out = c.t.run(&[]);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(
        err.contains("ci-job-missing") && err.contains("job macos"),
        "{err}"
    );
    assert!(!c.t.project.join("published/acme/1.0.0").exists());
    // Once the job has uploaded, the next run counts it and publishes; replay agrees with both.
    c.upload("macos", PASSING);
    expect_code(&c.t.run(&[]), exit::SUCCESS);
    assert!(
        c.t.project
            .join("published/acme/1.0.0/SHA256SUMS")
            .is_file()
    );
    expect_code(&c.replay(), exit::SUCCESS);
}

#[test]
fn a_report_for_another_commit_is_not_counted() {
    let c = CiTeam::new();
    c.upload("linux", PASSING);
    let other = "b".repeat(40);
    let out = c.upload_as("macos", &other, PASSING, "ci", "ci@acme.test");
    expect_code(&out, exit::SUCCESS);
    // Its statement copied into the release commit's folder still names its own commit.
    let theirs = c.statements(&other);
    assert_eq!(theirs.len(), 1);
    let from = c.t.on_share(&theirs[0]);
    let into = c.t.on_share(&theirs[0].replace(&other, &c.commit));
    for suffix in ["", ".sig"] {
        std::fs::copy(
            format!("{}{suffix}", from.display()),
            format!("{}{suffix}", into.display()),
        )
        .expect("copy");
    }
    c.t.server().own("share");
    let out = c.t.run(&[]);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(
        err.contains("ci-job-missing") && err.contains("job macos"),
        "{err}"
    );
    assert!(err.contains("ci-other-commit"), "{err}");
}

#[test]
fn a_statement_by_a_key_not_allowed_or_a_report_altered_on_the_share_is_ignored_and_said() {
    let c = CiTeam::new();
    // erin is in signers but not in the ci role; mallory is in neither.
    let erin = c.t.project.read("keys/allowed_signers");
    assert!(erin.contains("erin@acme.test"));
    std::fs::copy(c.t.alice.join("keys/erin"), c.ci.join("keys/erin")).expect("erin's key");
    c.ci.keygen("mallory");
    expect_code(
        &c.upload_as(
            "linux",
            &c.commit.clone(),
            PASSING,
            "erin",
            "erin@acme.test",
        ),
        exit::SUCCESS,
    );
    expect_code(
        &c.upload_as(
            "linux",
            &c.commit.clone(),
            PASSING,
            "mallory",
            "ci@acme.test",
        ),
        exit::SUCCESS,
    );
    // macos is uploaded by the CI key, then its report is altered on the share.
    c.upload("macos", PASSING);
    let report = files_in(
        &c.t.share_tree(),
        &format!("acme/ci/{}/junit/", c.commit),
        ".xml",
    );
    assert_eq!(report.len(), 1, "one report, the same bytes for all");
    std::fs::write(c.t.on_share(&report[0]), PASSING.replace("adds", "adda")).expect("alter");
    c.t.server().own("share");

    let out = c.t.run(&[]);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    for want in [
        "ci-signer-not-in-signed-by",
        "ci-signer-not-allowed",
        "ci-report-altered",
        "job linux",
        "job macos",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    assert!(!c.t.project.join("published/acme/1.0.0").exists());
}

#[test]
fn a_failing_test_in_an_uploaded_report_is_red() {
    let c = CiTeam::new();
    c.upload("linux", PASSING);
    c.upload("macos", FAILING);
    let out = c.t.run(&[]);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(
        err.contains("tests-failed")
            && err.contains("divides")
            && err.contains("expected 2, got 3"),
        "{err}"
    );
    // Replay reaches the same verdict from the record.
    expect_code(&c.replay(), exit::SUCCESS);
    // `logs` shows where the reports came from and where the record keeps them.
    let out = c.t.eng.relgate(&["logs", "1.0.0", "unit"]);
    expect_code(&out, exit::SUCCESS);
    let shown = stdout(&out);
    for want in [
        "tests-failed",
        &format!("CI reports on {} for commit {}", c.t.share, c.commit),
        "job macos: 1 report(s) signed by ci@acme.test",
        "macos/macos-junit.xml",
    ] {
        assert!(shown.contains(want), "{want}\n{shown}");
    }
}

#[test]
fn ci_upload_refuses_a_short_commit_and_a_file_that_is_not_junit() {
    let c = CiTeam::new();
    let out = c.upload_as("linux", "abc123", PASSING, "ci", "ci@acme.test");
    expect_code(&out, exit::CONFIG);
    assert!(stderr(&out).contains("full commit id"), "{}", stderr(&out));
    let out = c.upload_as("linux", &c.commit.clone(), "not xml", "ci", "ci@acme.test");
    expect_code(&out, exit::CONFIG);
    assert!(
        stderr(&out).contains("not a JUnit report"),
        "{}",
        stderr(&out)
    );
    assert!(c.statements(&c.commit).is_empty());
}

#[test]
fn a_folder_share_carries_ci_evidence_too() {
    let folder = tempfile::tempdir().expect("share folder");
    let share = folder.path().to_str().expect("utf8").to_string();
    let c = CiTeam::around(Team::around(None, share, GATES, ""));
    c.upload("linux", PASSING);
    c.upload("macos", PASSING);
    let out = c.t.run(&[]);
    expect_code(&out, exit::SUCCESS);
    assert!(
        folder
            .path()
            .join(format!("acme/ci/{}/statements", c.commit))
            .is_dir()
    );
    expect_code(&c.replay(), exit::SUCCESS);
}

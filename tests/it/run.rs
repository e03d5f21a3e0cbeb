//! End to end: `relgate run` stages, runs gates along `needs`, signs, publishes all or nothing,
//! and resumes; the published folder checks with stock tools.

use std::process::Command;

use crate::common;
use crate::common::*;
use relgate::exit;

fn entries(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn ts(v: &serde_json::Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        v["ts"].as_str().expect("ts"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("rfc3339")
}

fn find<'a>(es: &'a [serde_json::Value], kind: &str, gate: &str) -> Vec<&'a serde_json::Value> {
    es.iter()
        .filter(|e| e["type"] == kind && e["body"]["gate"] == gate)
        .collect()
}

fn green_project(gates: &str) -> Project {
    let p = Project::new();
    p.release_key();
    p.write("dist/acme-1.0.0.tar.gz", b"pretend tarball\n");
    p.write("dist/notes.txt", b"release notes\n");
    p.write("pipeline.yaml", pipeline(gates));
    p
}

const PASSING: &str = "  unit-tests:\n    kind: regression\n    run: \"true\"\n";

#[test]
fn green_release_is_published_and_checks_with_stock_tools() {
    let p = green_project(PASSING);
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
    let pubdir = p.join("published/acme/1.0.0");
    assert!(pubdir.join("acme-1.0.0.tar.gz").is_file());
    assert!(pubdir.join("audit/log.jsonl").is_file());
    assert!(
        !pubdir.join("audit/staged").exists(),
        "staged copies stay out of audit/"
    );

    let sums = Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&pubdir)
        .output()
        .expect("sha256sum");
    assert!(sums.status.success(), "sha256sum -c: {sums:?}");

    let sig = Command::new("sh")
        .arg("-c")
        .arg("ssh-keygen -Y verify -f \"$1\" -I release@acme.test -n file -s SHA256SUMS.sig < SHA256SUMS")
        .arg("sh")
        .arg(p.join("keys/allowed_signers"))
        .current_dir(&pubdir)
        .output()
        .expect("ssh-keygen");
    assert!(sig.status.success(), "ssh-keygen -Y verify: {sig:?}");

    let pubdir_s = pubdir.to_str().expect("utf8");
    expect_code(&p.relgate(&["verify", pubdir_s]), exit::SUCCESS);
    expect_code(&p.relgate(&["replay", pubdir_s]), exit::SUCCESS);
    let record = p.record("1.0.0");
    expect_code(
        &p.relgate(&["replay", record.to_str().expect("utf8")]),
        exit::SUCCESS,
    );
    expect_code(
        &p.relgate(&[
            "replay",
            pubdir_s,
            "--signers",
            p.join("keys/allowed_signers").to_str().expect("utf8"),
        ]),
        exit::SUCCESS,
    );

    // An altered artefact or signature in the published folder fails verify.
    let tarball = pubdir.join("acme-1.0.0.tar.gz");
    let original = std::fs::read(&tarball).expect("read");
    std::fs::write(&tarball, b"tampered").expect("write");
    let out = p.relgate(&["verify", pubdir_s]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("acme-1.0.0.tar.gz"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&tarball, &original).expect("restore");
    let sig = pubdir.join("SHA256SUMS.sig");
    let good_sig = std::fs::read_to_string(&sig).expect("sig");
    let lines: Vec<&str> = good_sig.lines().collect();
    let mut forged: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let mid = forged.len() / 2;
    forged[mid] = forged[mid].chars().rev().collect();
    std::fs::write(&sig, forged.join("\n") + "\n").expect("write");
    expect_code(&p.relgate(&["verify", pubdir_s]), exit::REFUSED);
    std::fs::write(&sig, good_sig).expect("restore");
    expect_code(&p.relgate(&["verify", pubdir_s]), exit::SUCCESS);
}

#[test]
fn failing_command_is_refused_and_nothing_is_published() {
    let p = green_project("  unit-tests:\n    kind: regression\n    run: exit 3\n");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("relgate: unit-tests: red: command-failed"),
        "{}",
        stderr(&out)
    );
    assert!(!p.join("published").exists());
    // The refused run still replays: every decision follows from its evidence.
    expect_code(
        &p.relgate(&["replay", p.record("1.0.0").to_str().expect("utf8")]),
        exit::SUCCESS,
    );
}

#[test]
fn a_gate_whose_needs_are_not_green_is_blocked_and_never_started() {
    let p = green_project(
        "  a:\n    kind: regression\n    run: exit 1\n  b:\n    kind: regression\n    needs: [a]\n    run: touch b-ran\n",
    );
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("relgate: b: blocked: needs-not-green: waiting on a"),
        "{}",
        stderr(&out)
    );
    assert!(!p.join("b-ran").exists(), "a blocked gate must not run");
    let es = entries(&p.log("1.0.0"));
    assert_eq!(find(&es, "gate-blocked", "b").len(), 1);
    assert!(find(&es, "gate-started", "b").is_empty());
}

#[test]
fn independent_gates_overlap_in_time() {
    let p = green_project(
        // Each gate finishes only once the other has started: run one after the other, the
        // first would wait for the second until it timed out, red.
        "  slow-a:\n    kind: regression\n    run: touch a.started; until test -f b.started; do sleep 0.05; done\n    timeout: 30s\n  slow-b:\n    kind: regression\n    run: touch b.started; until test -f a.started; do sleep 0.05; done\n    timeout: 30s\n",
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    let es = entries(&p.log("1.0.0"));
    let start_a = ts(find(&es, "gate-started", "slow-a")[0]);
    let start_b = ts(find(&es, "gate-started", "slow-b")[0]);
    let end_a = ts(find(&es, "gate-verdict", "slow-a")[0]);
    let end_b = ts(find(&es, "gate-verdict", "slow-b")[0]);
    assert!(
        start_a < end_b && start_b < end_a,
        "the two gates did not overlap"
    );
}

#[test]
fn an_existing_release_folder_is_never_overwritten() {
    let p = green_project(PASSING);
    p.write("published/acme/1.0.0/keep.txt", b"someone else's");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("already published"),
        "{}",
        stderr(&out)
    );
    assert_eq!(p.read("published/acme/1.0.0/keep.txt"), "someone else's");
    assert!(!p.join("published/acme/1.0.0/SHA256SUMS").exists());
}

#[test]
fn a_second_run_of_a_published_version_is_refused() {
    let p = green_project(PASSING);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    let before = p.read("published/acme/1.0.0/SHA256SUMS");
    p.write("dist/notes.txt", b"changed\n");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    assert_eq!(p.read("published/acme/1.0.0/SHA256SUMS"), before);
}

#[test]
fn dry_run_never_publishes_and_signs_with_a_throwaway_key_when_none_is_available() {
    let p = green_project(PASSING);
    p.write(
        "pipeline.yaml",
        pipeline(PASSING).replace("key: keys/release", "key: ${RELGATE_TEST_NO_SUCH_KEY}"),
    );
    let out = p.relgate(&["run", "1.0.0", "--dry-run"]);
    expect_code(&out, exit::SUCCESS);
    assert!(!p.join("published").exists());
    assert!(
        !p.record("1.0.0").exists(),
        "a dry run keeps its record apart"
    );
    assert!(stderr(&out).contains("throwaway"), "{}", stderr(&out));
    let dry = p.join(".relgate/dry-runs/1.0.0");
    let runs: Vec<_> = std::fs::read_dir(&dry).expect("dry-runs").collect();
    assert_eq!(runs.len(), 1);
    let rec = runs[0].as_ref().expect("entry").path();
    // Its checkpoints are signed by a throwaway key, which anyone can make: replay checks the
    // chain and says plainly that nothing vouches for who made the record.
    let out = p.relgate(&["replay", rec.to_str().expect("utf8")]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("a dry run's throwaway key, which anyone can make"),
        "{}",
        stderr(&out)
    );
    // The same record without a key is refused in a real run.
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("key-unavailable"), "{}", stderr(&out));
}

#[test]
fn resume_keeps_green_automated_gates_and_reruns_the_rest() {
    let p = green_project(
        "  counted:\n    kind: regression\n    run: echo x >> runs.txt\n    inputs: []\n  flaky:\n    kind: regression\n    run: test -f fixed\n",
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    p.write("fixed", b"");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
    assert_eq!(
        p.read("runs.txt").lines().count(),
        1,
        "the green gate was not run again"
    );
    let es = entries(&p.log("1.0.0"));
    let verdicts = find(&es, "gate-verdict", "counted");
    assert_eq!(verdicts.len(), 2);
    assert_eq!(verdicts[1]["body"]["reused_from"], verdicts[0]["seq"]);
    assert_eq!(find(&es, "gate-verdict", "flaky").len(), 2);
    expect_code(
        &p.relgate(&["replay", p.record("1.0.0").to_str().expect("utf8")]),
        exit::SUCCESS,
    );
}

#[test]
fn rerun_forces_automated_gates_and_changed_artefacts_change_the_subject() {
    let p = green_project(
        "  counted:\n    kind: regression\n    run: echo x >> runs.txt\n  red:\n    kind: regression\n    run: exit 1\n",
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    expect_code(&p.relgate(&["run", "1.0.0", "--rerun"]), exit::REFUSED);
    assert_eq!(
        p.read("runs.txt").lines().count(),
        2,
        "--rerun runs green gates again"
    );
    p.write("dist/notes.txt", b"new notes\n");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert_eq!(
        p.read("runs.txt").lines().count(),
        3,
        "new artefacts, new inputs"
    );
    let es = entries(&p.log("1.0.0"));
    let starts: Vec<_> = es.iter().filter(|e| e["type"] == "run-started").collect();
    assert_eq!(starts.len(), 3);
    assert_ne!(starts[1]["body"]["subject"], starts[2]["body"]["subject"]);
    assert_eq!(starts[2]["body"]["subject_changed"], true);
    let staged: Vec<_> = std::fs::read_dir(p.record("1.0.0").join("staged"))
        .expect("staged")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        staged.len(),
        1,
        "only the current subject's copy is kept: {staged:?}"
    );
    assert!(stderr(&out).contains("new subject"), "{}", stderr(&out));
}

#[test]
fn json_and_junit_reports_describe_every_gate() {
    let p = green_project(
        "  ok:\n    kind: regression\n    run: \"true\"\n  bad:\n    kind: regression\n    run: exit 2\n",
    );
    let out = p.relgate(&["run", "1.0.0", "--format", "json", "--junit", "gates.xml"]);
    expect_code(&out, exit::REFUSED);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["decision"], "refused");
    assert!(
        doc["subject"]
            .as_str()
            .expect("subject")
            .starts_with("sha256:")
    );
    let gates = doc["gates"].as_array().expect("gates");
    assert_eq!(gates.len(), 3);
    let bad = gates.iter().find(|g| g["id"] == "bad").expect("bad");
    assert_eq!(bad["state"], "red");
    assert_eq!(bad["reasons"][0]["code"], "command-failed");
    let xml = p.read("gates.xml");
    assert!(xml.contains("<testcase name=\"bad\""), "{xml}");
    assert!(xml.contains("<failure"), "{xml}");
    assert!(xml.contains("tests=\"3\""), "{xml}");
}

#[test]
fn exit_codes_for_usage_and_configuration_errors() {
    let p = Project::new();
    expect_code(&p.relgate(&["run"]), exit::CONFIG);
    expect_code(&p.relgate(&["no-such-command"]), exit::CONFIG);
    expect_code(&p.relgate(&["check"]), exit::CONFIG);
    let p = green_project(PASSING);
    expect_code(&p.relgate(&["check"]), exit::SUCCESS);
    expect_code(&p.relgate(&["run", "../escape"]), exit::CONFIG);
    assert!(!p.join("published").exists());
}

#[test]
fn when_bump_skips_a_gate_for_other_bumps_and_replay_agrees() {
    let p = green_project(
        "  pentest:\n    kind: regression\n    run: echo ran >> pentest.txt\n    when: {bump: [major]}\n",
    );
    let text = p.read("pipeline.yaml").replace(
        "gates:\n",
        "changes:\n  repo: .\n  range: v1.3.0..HEAD\ngates:\n",
    );
    p.write("pipeline.yaml", text);
    let out = p.relgate(&["run", "1.3.1"]);
    expect_code(&out, exit::SUCCESS);
    assert!(
        !p.join("pentest.txt").exists(),
        "a patch release skips the gate"
    );
    assert!(p.log("1.3.1").contains("\"gate-skipped\""));
    expect_code(
        &p.relgate(&["replay", p.record("1.3.1").to_str().expect("utf8")]),
        exit::SUCCESS,
    );
    expect_code(&p.relgate(&["run", "2.0.0"]), exit::SUCCESS);
    assert_eq!(
        p.read("pentest.txt").lines().count(),
        1,
        "a major release runs it"
    );
}

#[test]
fn secret_values_printed_by_a_gate_stay_out_of_the_record() {
    let secret = "tok-3f9a/77+Zq";
    let p = green_project(
        "  leaky:\n    kind: regression\n    run: |\n      echo \"token: $DEPLOY_TOKEN\"\n      printf %s \"$DEPLOY_TOKEN\" | base64\n      printf 'https://x.test/?t=%s\\n' \"$(printf %s \"$DEPLOY_TOKEN\" | sed 's#/#%2F#g; s#+#%2B#g')\" >&2\n",
    );
    let out = p.relgate_env(&["run", "1.0.0"], &[("DEPLOY_TOKEN", secret)]);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stderr(&out).contains("secret value(s) cut"),
        "{}",
        stderr(&out)
    );
    let encoded = [
        "tok-3f9a/77+Zq",
        "dG9rLTNmOWEvNzcrWnE",
        "tok-3f9a%2F77%2BZq",
    ];
    let published = p.join("published/acme/1.0.0");
    let mut redacted_seen = false;
    for e in walkdir::WalkDir::new(&published) {
        let e = e.expect("walk");
        if !e.file_type().is_file() {
            continue;
        }
        let bytes = std::fs::read(e.path()).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        for form in encoded {
            assert!(!text.contains(form), "{} holds {form}", e.path().display());
        }
        redacted_seen |= text.contains("[REDACTED:DEPLOY_TOKEN]");
    }
    assert!(redacted_seen, "the captured output was not kept at all");
    expect_code(
        &p.relgate(&["replay", published.to_str().expect("utf8")]),
        exit::SUCCESS,
    );
}

#[test]
fn a_passing_command_with_a_failing_junit_test_or_too_few_tests_is_red() {
    let junit = r#"<testsuite name="s" tests="2" failures="1"><testcase classname="calc" name="adds"/><testcase classname="calc" name="divides"><failure message="boom"/></testcase></testsuite>"#;
    let p = green_project(
        "  unit:\n    kind: regression\n    run: cp report.xml build/junit.xml\n    junit: [build/*.xml]\n",
    );
    p.write("report.xml", junit);
    std::fs::create_dir_all(p.join("build")).expect("mkdir");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("tests-failed"), "{}", stderr(&out));
    assert!(stderr(&out).contains("divides"), "{}", stderr(&out));

    let passing = r#"<testsuites><testsuite name="s" tests="1"><testcase classname="calc" name="adds"/></testsuite></testsuites>"#;
    let p = green_project(
        "  unit:\n    kind: regression\n    run: cp report.xml build/junit.xml\n    junit: [build/*.xml]\n    min_tests: 5\n",
    );
    p.write("report.xml", passing);
    std::fs::create_dir_all(p.join("build")).expect("mkdir");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("too-few-tests"), "{}", stderr(&out));
    assert!(!p.join("published").exists());
}

#[test]
fn published_files_are_readable_by_everyone_under_the_usual_umask() {
    use std::os::unix::fs::PermissionsExt;
    let p = green_project(PASSING);
    let out = std::process::Command::new("sh")
        .current_dir(p.path())
        .args([
            "-c",
            &format!("umask 022 && exec {} run 1.0.0", common::BIN),
        ])
        .env_remove("RELGATE_OPERATOR")
        .output()
        .expect("run");
    expect_code(&out, exit::SUCCESS);
    for f in [
        "SHA256SUMS",
        "SHA256SUMS.sig",
        "audit/log.jsonl",
        "audit/checkpoint",
    ] {
        let mode = std::fs::metadata(p.join(&format!("published/acme/1.0.0/{f}")))
            .expect("published file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o044, 0o044, "{f} is {mode:o}");
    }
}

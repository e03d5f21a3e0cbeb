//! Reuse that cannot lie (issue 9, point 2): a green regression result is kept by the next run
//! only when the git commit, the work tree, the declared `inputs:`, the command, its
//! environment and the artefacts are all unchanged; otherwise, or when relgate cannot tell,
//! the gate runs again. `plan` and `status` say which results would be kept and why.

use std::path::Path;
use std::process::Command;

use crate::common::*;
use relgate::exit;

/// A QA sign-off keeps every run pending (exit 3), so that runs of 1.0.0 can follow each other.
const GATES: &str = "  unit-tests:\n    kind: regression\n    run: sh test.sh\n  manual:\n    kind: signoff\n    needs: [unit-tests]\n    role: qa\n    segregation: [operator, signer]\n";

/// A project whose test script passes and counts its runs in `runs.txt` (ignored by git).
fn project(gates: &str) -> Project {
    let p = Project::new();
    let release = p.keygen("release");
    let alice = p.keygen("alice");
    p.write(
        "keys/allowed_signers",
        format!("release@acme.test {release}\nalice@acme.test {alice}\n"),
    );
    p.write("dist/a.txt", b"a\n");
    p.write("test.sh", "echo run >> runs.txt\nexit 0\n");
    let text = pipeline(gates).replace(
        "signers: keys/allowed_signers\n",
        "signers: keys/allowed_signers\nroles:\n  qa: [alice@acme.test]\n",
    );
    p.write("pipeline.yaml", text);
    p
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Dev",
            "-c",
            "user.email=dev@acme.test",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// The project as a git repository with everything committed; the record, the run counter
/// and what a release writes are ignored.
fn in_git(p: &Project) {
    p.write(".gitignore", ".relgate/\nruns.txt\npublished/\n");
    git(p.path(), &["init", "-q"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "first"]);
}

fn runs(p: &Project) -> usize {
    std::fs::read_to_string(p.join("runs.txt"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// The `gate-verdict` bodies of `gate`, in order.
fn verdicts(p: &Project, gate: &str) -> Vec<serde_json::Value> {
    p.log("1.0.0")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .filter(|v| v["type"] == "gate-verdict" && v["body"]["gate"] == gate)
        .map(|v| v["body"].clone())
        .collect()
}

fn status_of(p: &Project, gate: &str) -> serde_json::Value {
    let out = p.relgate(&["status", "1.0.0", "--format", "json"]);
    expect_code(&out, exit::SUCCESS);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    doc["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .find(|g| g["id"] == gate)
        .cloned()
        .expect("gate")
}

/// The report: a test broken after a green run, with the artefacts unchanged, was
/// kept green, and one approval would have published it.
#[test]
fn a_test_broken_after_a_green_run_is_run_again_and_red() {
    let p = project(GATES);
    in_git(&p);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    p.write(
        "test.sh",
        "echo run >> runs.txt\necho 'assert 1 == 2' >&2\nexit 1\n",
    );

    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(err.contains("unit-tests: red: command-failed"), "{err}");
    assert!(!err.contains("kept"), "{err}");
    assert_eq!(runs(&p), 2);

    // An approval changes nothing: the broken test stays red.
    let approve = p.relgate(&[
        "approve",
        "1.0.0",
        "--gate",
        "manual",
        "--key",
        "keys/alice",
        "--as",
        "alice@acme.test",
    ]);
    expect_code(&approve, exit::SUCCESS);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    assert!(!p.join("published").exists());
}

#[test]
fn an_unchanged_work_tree_keeps_the_result_and_the_record_says_what_it_rested_on() {
    let p = project(GATES);
    in_git(&p);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::PENDING);
    assert_eq!(runs(&p), 1, "the green result was kept");
    let err = stderr(&out);
    assert!(err.contains("kept the green result of log line"), "{err}");

    let head = String::from_utf8(
        Command::new("git")
            .current_dir(p.path())
            .args(["rev-parse", "HEAD"])
            .output()
            .expect("git")
            .stdout,
    )
    .expect("utf8");
    let v = verdicts(&p, "unit-tests");
    assert_eq!(v.len(), 2);
    let first_seq = p
        .log("1.0.0")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|l| l["type"] == "gate-verdict" && l["body"]["gate"] == "unit-tests")
        .map(|l| l["seq"].clone())
        .expect("first verdict");
    assert_eq!(v[1]["reused_from"], first_seq, "{}", v[1]);
    assert_eq!(v[0]["depends_on"], v[1]["depends_on"]);
    assert_eq!(v[1]["depends_on"]["git"]["head"], head.trim());
    assert_eq!(v[1]["depends_on"]["git"]["changed"], 0);
    assert!(v[1]["depends_on"]["environment"].is_string());
    assert!(v[1]["depends_on"].get("unsure").is_none());

    // status tells whether the next run would keep it, and why.
    let st = status_of(&p, "unit-tests");
    assert_eq!(st["next_run"]["kept"], true, "{st}");
    p.write("test.sh", "echo run >> runs.txt\nexit 1\n");
    let st = status_of(&p, "unit-tests");
    assert_eq!(st["next_run"]["kept"], false, "{st}");
    assert!(
        st["next_run"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("the work tree changed")),
        "{st}"
    );
    let human = p.relgate(&["status", "1.0.0"]);
    assert!(
        stdout(&human).contains("next run: runs again: the work tree changed"),
        "{}",
        stdout(&human)
    );

    // The record replays: the kept verdict had equal inputs.
    assert!(replay_in(&p, &p.record("1.0.0")).ok);
}

#[test]
fn a_commit_an_untracked_file_or_the_environment_runs_the_gate_again() {
    let p = project(GATES);
    in_git(&p);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    assert_eq!(runs(&p), 1);

    // A new, untracked test file.
    p.write("tests/test_new.py", "def test_x(): pass\n");
    let out = p.relgate(&["run", "1.0.0"]);
    assert_eq!(runs(&p), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ran again: the work tree changed"),
        "{}",
        stderr(&out)
    );
    // Committed: the tree is clean again but HEAD moved.
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "a test"]);
    let out = p.relgate(&["run", "1.0.0"]);
    assert_eq!(runs(&p), 3);
    assert!(
        stderr(&out).contains("ran again: HEAD moved from"),
        "{}",
        stderr(&out)
    );
    // Ignored files and the record do not count.
    p.write("runs.txt", p.read("runs.txt"));
    p.relgate(&["run", "1.0.0"]);
    assert_eq!(runs(&p), 3);
    // The environment the command inherits.
    let out = p.relgate_env(&["run", "1.0.0"], &[("PYTHONPATH", "/elsewhere")]);
    assert_eq!(runs(&p), 4);
    assert!(
        stderr(&out).contains("ran again: the environment changed"),
        "{}",
        stderr(&out)
    );
    assert!(replay_in(&p, &p.record("1.0.0")).ok);
}

/// What relgate and the gates write themselves — the record, the JUnit reports, the artefacts —
/// is not a change of the tree, even where git does not ignore it.
#[test]
fn the_record_reports_and_artefacts_are_not_changes_of_the_tree() {
    let p = project(&GATES.replace(
        "    run: sh test.sh\n",
        "    run: sh test.sh\n    junit: [build/*.xml]\n",
    ));
    p.write(
        "test.sh",
        "echo run >> runs.txt\nmkdir -p build\nprintf '<testsuite name=\"s\"><testcase name=\"t\"/></testsuite>' > build/junit.xml\n",
    );
    in_git(&p);
    p.write(".gitignore", "runs.txt\n");
    git(
        p.path(),
        &["commit", "-q", "-am", "the record is not ignored"],
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    p.write("dist/a.txt", b"a\n");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::PENDING);
    assert_eq!(runs(&p), 1, "{}", stderr(&out));
}

#[test]
fn outside_git_a_gate_runs_again_unless_it_declares_inputs() {
    let p = project(GATES);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::PENDING);
    assert_eq!(runs(&p), 2, "unsure: runs again");
    assert!(
        stderr(&out).contains(
            "ran again: the pipeline folder is not in a git work tree and the gate declares no `inputs:`"
        ),
        "{}",
        stderr(&out)
    );
    let st = status_of(&p, "unit-tests");
    assert_eq!(st["next_run"]["kept"], false, "{st}");
    let plan = p.relgate(&["plan"]);
    assert!(
        stdout(&plan).contains("reuse: never kept: the pipeline folder is not in a git work tree and the gate declares no `inputs:`"),
        "{}",
        stdout(&plan)
    );

    let p = project(&GATES.replace(
        "    run: sh test.sh\n",
        "    run: sh test.sh\n    inputs: [test.sh, src/**]\n",
    ));
    p.write("src/lib.py", "x = 1\n");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    assert_eq!(runs(&p), 1, "declared inputs unchanged: kept");
    let plan = p.relgate(&["plan"]);
    assert!(
        stdout(&plan).contains("reuse: kept while the command, its environment, the artefacts and the files of `inputs:` (test.sh, src/**) are unchanged"),
        "{}",
        stdout(&plan)
    );
    p.write("src/lib.py", "x = 2\n");
    let st = status_of(&p, "unit-tests");
    assert_eq!(st["next_run"]["kept"], false, "{st}");
    let out = p.relgate(&["run", "1.0.0"]);
    assert_eq!(runs(&p), 2);
    assert!(
        stderr(&out).contains("ran again: files matched by `inputs:` changed"),
        "{}",
        stderr(&out)
    );
    assert!(replay_in(&p, &p.record("1.0.0")).ok);
}

#[test]
fn inputs_globs_must_stay_in_the_pipeline_folder() {
    let p = project(&GATES.replace(
        "    run: sh test.sh\n",
        "    run: sh test.sh\n    inputs: [../elsewhere/*.py]\n",
    ));
    let out = p.relgate(&["check"]);
    expect_code(&out, exit::CONFIG);
    assert!(
        stderr(&out).contains("gates.unit-tests.inputs[0]: leaves the pipeline folder"),
        "{}",
        stderr(&out)
    );
}

/// The observation is bound to the verdict: edit it in the log and replay fails.
#[test]
fn an_edited_observation_fails_replay() {
    let p = project(GATES);
    in_git(&p);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    let rec = p.record("1.0.0");
    let log = std::fs::read_to_string(rec.join("log.jsonl")).expect("log");
    let bytes = log.as_bytes();
    let (entries, _) = relgate::log::read_log(bytes).expect("log");
    let mut records: Vec<relgate::log::Record> = entries.into_iter().map(|e| e.record).collect();
    for r in &mut records {
        if let relgate::log::Record::GateVerdict(v) = r
            && let Some(d) = v.depends_on.as_mut()
            && let Some(g) = d.git.as_mut()
        {
            g.head = Some("0".repeat(40));
        }
    }
    std::fs::remove_file(rec.join("log.jsonl")).expect("rm");
    let (mut w, _) = relgate::log::LogWriter::open(&rec.join("log.jsonl")).expect("open");
    for r in records {
        w.append(r).expect("append");
    }
    drop(w);
    let _ = std::fs::remove_dir_all(rec.join("checkpoints"));
    let bytes = std::fs::read(rec.join("log.jsonl")).expect("log");
    let (entries, head) = relgate::log::read_log(&bytes).expect("log");
    let key = relgate::sshsig::load_private_key(&p.join("keys/release")).expect("key");
    let cp =
        relgate::log::checkpoint::Checkpoint::new("relgate/acme/1.0.0", entries.len() as u64, head);
    relgate::log::checkpoint::write(&rec, &cp, Some(&key)).expect("checkpoint");
    let r = replay_in(&p, &rec);
    assert!(!r.ok);
    let problem = r.problem.expect("problem");
    assert!(
        problem
            .message
            .contains("recorded inputs digest does not match"),
        "{}",
        problem.message
    );
}

/// A kept virus scan rests on the signatures it used: new signatures scan again.
#[test]
fn new_virus_signatures_scan_again() {
    let p = project(
        "  virus-scan:\n    kind: virus-scan\n    clamd: {database: db}\n  manual:\n    kind: signoff\n    needs: [virus-scan]\n    role: qa\n    segregation: [operator, signer]\n",
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&root.join("fixtures/clamav/db"), &p.join("db"));
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::PENDING);
    assert!(
        stderr(&out).contains("virus-scan: green (kept from an earlier run)"),
        "{}",
        stderr(&out)
    );
    let mut hdb = p.read("db/relgate.hdb");
    hdb.push_str("0123456789abcdef0123456789abcdef:12:Relgate.Test.New\n");
    p.write("db/relgate.hdb", hdb);
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::PENDING);
    assert!(
        stderr(&out).contains("ran again: the virus signatures changed"),
        "{}",
        stderr(&out)
    );
    assert!(replay_in(&p, &p.record("1.0.0")).ok);
}

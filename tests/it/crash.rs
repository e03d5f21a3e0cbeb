//! Crash consistency: a run killed right after any line of its log (as `kill -9` would stop
//! it between recording a decision and acting on it) leaves nothing half-published, and the
//! next run converges to a verified, replayable release.

use crate::common::*;
use relgate::exit;

fn project() -> Project {
    let p = Project::new();
    p.release_key();
    p.write("dist/a.tar.gz", b"tarball\n");
    p.write("dist/b.txt", b"notes\n");
    p.write(
        "pipeline.yaml",
        pipeline(
            "  unit:\n    kind: regression\n    run: echo unit >> runs.txt\n  lint:\n    kind: regression\n    needs: [unit]\n    run: \"true\"\n",
        ),
    );
    p
}

#[test]
fn a_run_killed_after_any_log_line_resumes_to_a_verified_release() {
    let clean = project();
    expect_code(&clean.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    let lines = clean.log("1.0.0").lines().count();
    assert!(lines >= 8, "{lines}");

    for k in 1..=lines {
        let p = project();
        let k_text = k.to_string();
        let out = p.relgate_env(&["run", "1.0.0"], &[("RELGATE_CRASH_AFTER_LINES", &k_text)]);
        assert_eq!(
            out.status.code(),
            None,
            "line {k}: the run was not stopped: {out:?}"
        );
        assert_eq!(
            p.log("1.0.0").lines().count(),
            k,
            "line {k}: the log holds the lines written"
        );

        // A reader sees no release, or a whole one.
        let target = p.join("published/acme/1.0.0");
        let target_s = target.to_str().expect("utf8").to_string();
        if target.exists() {
            expect_code(&p.relgate(&["verify", &target_s]), exit::SUCCESS);
        }

        // The next run converges.
        let out = p.relgate(&["run", "1.0.0"]);
        expect_code(&out, exit::SUCCESS);
        expect_code(&p.relgate(&["verify", &target_s]), exit::SUCCESS);
        expect_code(&p.relgate(&["replay", &target_s]), exit::SUCCESS);
        let record = p.record("1.0.0");
        let r = replay_in(&p, &record);
        assert!(
            r.ok,
            "line {k}: the local record does not replay: {:?}",
            r.problem
        );
        // A third run: the release is there and complete; it is never published twice.
        expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
        let leftovers: Vec<_> = std::fs::read_dir(p.join("published/acme"))
            .expect("parent")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            leftovers,
            ["1.0.0"],
            "line {k}: stray folders beside the release"
        );
    }
}

/// Local publish moves the staged copies into the folder being built. A run killed after each
/// move in turn, and right after the folder was renamed into place
/// (`RELGATE_CRASH_AFTER_MOVES`), leaves no release or a whole one; the next run stages the
/// artefacts again (the moved copies are gone from the record) and converges.
#[test]
fn a_run_killed_between_moves_converges() {
    let artefacts = 3;
    for n in 1..=artefacts + 1 {
        let p = project();
        p.write("dist/c.bin", vec![7u8; 3 << 20]);
        let n_text = n.to_string();
        let out = p.relgate_env(&["run", "1.0.0"], &[("RELGATE_CRASH_AFTER_MOVES", &n_text)]);
        assert_eq!(out.status.code(), None, "move {n}: not stopped: {out:?}");
        assert!(
            p.log("1.0.0")
                .lines()
                .last()
                .is_some_and(|l| l.contains("\"publish\"")),
            "move {n}: the log does not end with the publish decision"
        );
        let target = p.join("published/acme/1.0.0");
        let target_s = target.to_str().expect("utf8").to_string();
        let staged: Vec<_> = walkdir::WalkDir::new(p.record("1.0.0").join("staged"))
            .into_iter()
            .flatten()
            .filter(|e| {
                e.file_type().is_file()
                    && !e.file_name().to_string_lossy().starts_with("SHA256SUMS")
            })
            .collect();
        if n <= artefacts {
            assert!(!target.exists(), "move {n}: a release is visible");
            assert_eq!(
                staged.len() as u64,
                artefacts - n,
                "move {n}: the staged copies left"
            );
        } else {
            expect_code(&p.relgate(&["verify", &target_s]), exit::SUCCESS);
        }

        let out = p.relgate(&["run", "1.0.0"]);
        expect_code(&out, exit::SUCCESS);
        expect_code(&p.relgate(&["verify", &target_s]), exit::SUCCESS);
        expect_code(&p.relgate(&["replay", &target_s]), exit::SUCCESS);
        let r = replay_in(&p, &p.record("1.0.0"));
        assert!(
            r.ok,
            "move {n}: the record does not replay: {:?}",
            r.problem
        );
        assert_eq!(
            std::fs::read(target.join("c.bin")).expect("c.bin"),
            vec![7u8; 3 << 20]
        );
        expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
        let beside: Vec<_> = std::fs::read_dir(p.join("published/acme"))
            .expect("parent")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            beside,
            ["1.0.0"],
            "move {n}: stray folders beside the release"
        );
    }
}

/// The type of each line of a log.
fn types(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["type"].as_str().expect("type").to_string()
        })
        .collect()
}

/// The record's latest checkpoint, parsed.
fn checkpoint(p: &Project) -> relgate::log::checkpoint::Checkpoint {
    let text = std::fs::read_to_string(p.record("1.0.0").join("checkpoint")).expect("checkpoint");
    relgate::log::checkpoint::Checkpoint::parse(&text).expect("a checkpoint")
}

/// Every file under `dir` (relative path) with its bytes: a release compared whole.
fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).expect("rel").to_path_buf(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

/// The lines a clean run of [`project`] writes, by type.
fn clean_layout() -> Vec<String> {
    let clean = project();
    expect_code(&clean.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    let kinds = types(&clean.log("1.0.0"));
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["publish", "published", "run-finished"],
        "the end of a clean run (no notifications in this pipeline)"
    );
    kinds
}

/// Run `relgate run 1.0.0` and kill it (abort, as `kill -9`) right after the log reached
/// `lines` lines.
fn killed_after(p: &Project, lines: usize) {
    let n = lines.to_string();
    let out = p.relgate_env(&["run", "1.0.0"], &[("RELGATE_CRASH_AFTER_LINES", &n)]);
    assert_eq!(out.status.code(), None, "the run was not stopped: {out:?}");
    assert_eq!(p.log("1.0.0").lines().count(), lines);
}

/// What holds after the next run completed an interrupted publish, and after one more run: the
/// checkpoint (latest, its history and this machine's pin) covers every line under its chain
/// head and is signed by the release key; the record and the release replay; the release is
/// the one the killed run put in place, untouched; a further run is refused as already
/// published and changes nothing.
fn sealed_and_published_once(
    p: &Project,
    release: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
) {
    let log = p.log("1.0.0");
    let lines = log.lines().count();
    let (_, head) = relgate::log::read_log(log.as_bytes()).expect("log reads");
    let cp = checkpoint(p);
    assert_eq!(cp.size, lines as u64, "the checkpoint covers every line");
    assert_eq!(cp.head, head.hex(), "under the log's head");
    let cp_path = p.record("1.0.0").join("checkpoint");
    let cp_text = std::fs::read(&cp_path).expect("checkpoint");
    assert!(
        ssh_keygen_verifies(
            &p.join("keys/allowed_signers"),
            "release@acme.test",
            "relgate-checkpoint",
            &p.record("1.0.0").join("checkpoint.sig"),
            &cp_text,
        ),
        "the new checkpoint is signed by the release key"
    );
    let prefix = format!("{lines:012}-");
    let history: Vec<String> = std::fs::read_dir(p.record("1.0.0").join("checkpoints"))
        .expect("history")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        history
            .iter()
            .any(|n| n.starts_with(&prefix) && !n.ends_with(".sig"))
            && history
                .iter()
                .any(|n| n.starts_with(&prefix) && n.ends_with(".sig")),
        "no checkpoint of {lines} lines in the history: {history:?}"
    );
    let pins: Vec<_> = std::fs::read_dir(p.join(".relgate/.pins"))
        .expect("pins")
        .map(|e| e.expect("pin").path())
        .filter(|p| p.extension().is_none())
        .collect();
    assert_eq!(pins.len(), 1, "{pins:?}");
    assert_eq!(
        std::fs::read(&pins[0]).expect("pin"),
        cp_text,
        "this machine pinned the new checkpoint"
    );

    let target = p.join("published/acme/1.0.0");
    let target_s = target.to_str().expect("utf8");
    let record = p.record("1.0.0");
    let r = replay_in(p, &record);
    assert!(r.ok, "the record does not replay: {:?}", r.problem);
    expect_code(
        &p.relgate(&["replay", record.to_str().expect("utf8")]),
        exit::SUCCESS,
    );
    expect_code(&p.relgate(&["replay", target_s]), exit::SUCCESS);
    expect_code(&p.relgate(&["verify", target_s]), exit::SUCCESS);
    assert_eq!(&tree(&target), release, "the release was touched");
    let status = p.relgate(&["status", "1.0.0"]);
    assert!(
        stdout(&status).contains("decision published"),
        "{}",
        stdout(&status)
    );

    // From then on it is simply published: refused, and nothing written or moved.
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("already published"),
        "{}",
        stderr(&out)
    );
    assert_eq!(p.log("1.0.0"), log, "a refused run wrote to the record");
    assert_eq!(std::fs::read(&cp_path).expect("checkpoint"), cp_text);
    assert_eq!(&tree(&target), release, "the release was touched");
    let beside: Vec<_> = std::fs::read_dir(p.join("published/acme"))
        .expect("parent")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, ["1.0.0"], "stray folders beside the release");
}

/// The next run of the version finishes what the killed run left, and says so.
fn rerun_completes_the_interrupted_publish(p: &Project) {
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stderr(&out).contains("run 1 was interrupted after publishing"),
        "{}",
        stderr(&out)
    );
}

/// A run killed right after it recorded `published` (the release is out, its end and the
/// checkpoint over it are not): the next run records only `run-finished` for that run, seals
/// the log, and runs nothing again.
#[test]
fn a_run_killed_after_recording_published_is_finished_and_sealed_by_the_next_run() {
    let layout = clean_layout();
    let published_at = layout.len() - 1; // lines up to and including `published`
    let p = project();
    killed_after(&p, published_at);
    let before = p.log("1.0.0");
    assert_eq!(types(&before).last().map(String::as_str), Some("published"));
    // The checkpoint written before the publish covers up to `publish`, not `published`.
    assert_eq!(checkpoint(&p).size, published_at as u64 - 1);
    // The unsealed record does not replay yet: its newest checkpoint misses a line.
    assert!(!replay_in(&p, &p.record("1.0.0")).ok);
    let target = p.join("published/acme/1.0.0");
    let release = tree(&target);
    expect_code(
        &p.relgate(&["verify", target.to_str().expect("utf8")]),
        exit::SUCCESS,
    );

    rerun_completes_the_interrupted_publish(&p);
    let after = p.log("1.0.0");
    assert!(after.starts_with(&before), "the earlier lines changed");
    let added: Vec<serde_json::Value> = after[before.len()..]
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    assert_eq!(added[0]["type"], "run-finished", "{added:?}");
    let body = &added[0]["body"];
    assert_eq!(body["run"], 1, "{body}");
    assert_eq!(body["decision"], "published", "{body}");
    assert_eq!(body["exit_code"], exit::SUCCESS, "{body}");
    assert!(body["message"].is_string(), "{body}");
    let kinds = types(&after);
    for (kind, n) in [("run-started", 1), ("publish", 1), ("published", 1)] {
        assert_eq!(
            kinds.iter().filter(|k| *k == kind).count(),
            n,
            "{kind} in {kinds:?}"
        );
    }
    assert_eq!(p.read("runs.txt"), "unit\n", "a gate ran again");

    sealed_and_published_once(&p, &release);
}

/// A run killed after `run-finished` but before the checkpoint over it: the next run adds no
/// line (the run's end is recorded already) and seals the log as it stands.
#[test]
fn a_run_killed_after_run_finished_before_its_checkpoint_is_sealed_by_the_next_run() {
    let layout = clean_layout();
    let p = project();
    killed_after(&p, layout.len());
    let before = p.log("1.0.0");
    assert_eq!(
        types(&before).last().map(String::as_str),
        Some("run-finished")
    );
    assert_eq!(checkpoint(&p).size, layout.len() as u64 - 2);
    assert!(!replay_in(&p, &p.record("1.0.0")).ok);
    let target = p.join("published/acme/1.0.0");
    let release = tree(&target);

    rerun_completes_the_interrupted_publish(&p);
    assert_eq!(p.log("1.0.0"), before, "the log needed no line");
    assert_eq!(p.read("runs.txt"), "unit\n", "a gate ran again");

    sealed_and_published_once(&p, &release);
}

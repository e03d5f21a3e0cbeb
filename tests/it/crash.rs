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

//! Bad inputs and faults against the real binary: hostile versions and names, artefacts swapped
//! or changed under the run, torn and damaged logs, runs killed around the publish, symlinks,
//! and two runs at once. Each ends with a specific exit code and message, nothing half-written
//! published, a log that still replays, and a next run that converges.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use relgate::exit;

const PASSING: &str = "  unit-tests:\n    kind: regression\n    run: \"true\"\n";
const ORIGINAL_NOTES: &[u8] = b"release notes\n";

fn project(gates: &str) -> Project {
    let p = Project::new();
    p.release_key();
    p.write("dist/acme-1.0.0.tar.gz", b"pretend tarball\n");
    p.write("dist/notes.txt", ORIGINAL_NOTES);
    p.write("pipeline.yaml", pipeline(gates));
    p
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf8 path")
}

fn replays(p: &Project, dir: &Path) -> bool {
    code(&p.relgate(&["replay", s(dir)])) == exit::SUCCESS
}

fn types(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["type"].as_str().expect("type").to_string()
        })
        .collect()
}

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Put the record back in the state a run killed right after the `publish` record (and its
/// checkpoint) leaves: the published audit/ holds exactly that log and checkpoint.
fn rewind_to_publish_record(p: &Project) {
    let audit = p.join("published/acme/1.0.0/audit");
    for f in ["log.jsonl", "checkpoint", "checkpoint.sig"] {
        std::fs::copy(audit.join(f), p.record("1.0.0").join(f)).expect("copy");
    }
    // The checkpoint this machine pinned then, and the history as it stood: the later ones
    // were never written.
    let _ = std::fs::remove_dir_all(p.join(".relgate/.pins"));
    let history = p.record("1.0.0").join("checkpoints");
    std::fs::remove_dir_all(&history).expect("rm history");
    copy_dir(&audit.join("checkpoints"), &history);
    assert_eq!(
        types(&p.log("1.0.0")).last().map(String::as_str),
        Some("publish")
    );
}

#[test]
fn a_version_with_shell_syntax_is_refused_and_never_executed() {
    let p = project(PASSING);
    for version in [
        "$(touch pwned)",
        "`touch pwned`",
        "1.0;touch pwned",
        "1.0\ntouch pwned",
    ] {
        for args in [
            vec!["run", version],
            vec!["run", version, "--dry-run"],
            vec!["status", version],
            vec![
                "approve",
                version,
                "--gate",
                "x",
                "--key",
                "keys/release",
                "--as",
                "a",
            ],
        ] {
            let out = p.relgate(&args);
            expect_code(&out, exit::CONFIG);
            assert!(
                stderr(&out).contains("not a valid release version"),
                "{args:?}: {}",
                stderr(&out)
            );
        }
    }
    assert!(!p.join("pwned").exists(), "a version was executed");
    assert!(
        !p.join(".relgate").exists(),
        "a refused version left a record"
    );
}

#[test]
fn artefact_names_with_a_newline_or_backslash_are_configuration_errors() {
    for name in ["dist/a\nb.txt", "dist/a\\b.txt"] {
        let p = project(PASSING);
        p.write(name, b"x");
        let out = p.relgate(&["run", "1.0.0"]);
        expect_code(&out, exit::CONFIG);
        assert!(
            stderr(&out).contains("control character U+000A in the name")
                || stderr(&out).contains("backslash in the name"),
            "{}",
            stderr(&out)
        );
        assert!(!p.join(".relgate").exists());
    }
}

#[test]
fn a_symlinked_artefact_folder_is_refused_and_nothing_is_read() {
    let p = project(PASSING);
    std::fs::remove_dir_all(p.join("dist")).expect("rm");
    std::os::unix::fs::symlink("/etc", p.join("dist")).expect("symlink");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::CONFIG);
    assert!(
        stderr(&out).contains("dist is a symbolic link"),
        "{}",
        stderr(&out)
    );
    assert!(!p.join(".relgate").exists());
}

#[test]
fn the_source_swapped_after_staging_is_not_what_gets_published() {
    // The gate runs after staging and replaces the source on disk.
    let p = project("  swap:\n    kind: regression\n    run: printf evil > dist/notes.txt\n");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
    let pubdir = p.join("published/acme/1.0.0");
    assert_eq!(
        std::fs::read(pubdir.join("notes.txt")).expect("read"),
        ORIGINAL_NOTES
    );
    let sums = Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&pubdir)
        .output()
        .expect("sha256sum");
    assert!(sums.status.success(), "{sums:?}");
    assert!(replays(&p, &pubdir));
}

#[test]
fn a_staged_byte_changed_before_publish_aborts_and_says_why_and_the_next_run_publishes() {
    // The gate reaches into the record and alters a staged copy after it was hashed.
    let p = project(
        "  tamper:\n    kind: regression\n    run: for f in \"$RELGATE_RECORD\"/staged/*/notes.txt; do printf evil > \"$f\"; done\n    inputs: []\n",
    );
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out)
            .contains("relgate: publish failed: staged notes.txt no longer matches its digest"),
        "the refusal must say why: {}",
        stderr(&out)
    );
    assert!(!p.join("published/acme/1.0.0").exists());
    assert!(
        names_in(&p.join("published/acme")).is_empty(),
        "a partial folder was left: {:?}",
        names_in(&p.join("published/acme"))
    );
    assert!(replays(&p, &p.record("1.0.0")));

    // The JSON document carries the reason too.
    let out = p.relgate(&["run", "1.0.0", "--format", "json", "--rerun"]);
    expect_code(&out, exit::REFUSED);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        doc["message"]
            .as_str()
            .is_some_and(|m| m.contains("no longer matches its digest")),
        "{doc}"
    );

    // Resume: the artefacts are staged afresh and the green gate is kept, so the original
    // bytes are published.
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
    assert_eq!(
        std::fs::read(p.join("published/acme/1.0.0/notes.txt")).expect("read"),
        ORIGINAL_NOTES
    );
    assert!(replays(&p, &p.record("1.0.0")));
}

#[test]
fn an_artefact_that_changes_size_while_staged_is_refused() {
    let p = project(PASSING);
    let big = p.join("dist/big.bin");
    std::fs::write(&big, vec![7u8; 32 << 20]).expect("write");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let big = big.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&big)
                .expect("open");
            // Bounded, so that a run chasing the growing file cannot fill the disk.
            let mut written = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && written < 256 << 20 {
                f.write_all(&[1u8; 512]).expect("append");
                written += 512;
            }
        })
    };
    let out = p.relgate(&["run", "1.0.0"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().expect("writer");
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("big.bin changed while it was being staged"),
        "{}",
        stderr(&out)
    );
    assert!(!p.join("published").exists());
    // Once the file holds still, the next run publishes it.
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    assert!(replays(&p, &p.record("1.0.0")));
}

#[test]
fn a_torn_last_log_line_is_saved_cut_and_recorded_and_the_next_run_converges() {
    let p = project("  fixable:\n    kind: regression\n    run: test -f fixed\n");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    let log_path = p.record("1.0.0").join("log.jsonl");
    let good = std::fs::read(&log_path).expect("log");
    // A crash in the middle of appending the next line.
    let torn = br#"{"body":{"run":2,"gate":"fix"#;
    let mut bytes = good.clone();
    bytes.extend_from_slice(torn);
    std::fs::write(&log_path, &bytes).expect("write");

    p.write("fixed", b"");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stderr(&out).contains("torn line"),
        "the recovery is shown: {}",
        stderr(&out)
    );
    let after = std::fs::read(&log_path).expect("log");
    assert!(
        after.starts_with(&good),
        "lines before the torn one are kept"
    );
    let kinds = types(&p.log("1.0.0"));
    assert!(
        kinds.contains(&"recovered-torn-tail".to_string()),
        "{kinds:?}"
    );
    let saved: Vec<String> = names_in(&p.record("1.0.0"))
        .into_iter()
        .filter(|n| n.starts_with("log.torn-"))
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(
        std::fs::read(p.record("1.0.0").join(&saved[0])).expect("saved"),
        torn
    );
    assert!(replays(&p, &p.record("1.0.0")));
    assert!(replays(&p, &p.join("published/acme/1.0.0")));
}

#[test]
fn a_damaged_middle_line_makes_the_run_refuse_to_resume() {
    let p = project("  red:\n    kind: regression\n    run: exit 1\n");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    let log_path = p.record("1.0.0").join("log.jsonl");
    let text = std::fs::read_to_string(&log_path).expect("log");
    // Line 2 cut in half, as a disk error or a careless edit would leave it.
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let half = lines[1].len() / 2;
    lines[1].truncate(half);
    let damaged = format!("{}\n", lines.join("\n"));
    std::fs::write(&log_path, &damaged).expect("write");

    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("does not verify, so nothing in it is used: log.jsonl line 2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&log_path).expect("log"), damaged);
    assert!(!p.join("published").exists());
    assert!(!replays(&p, &p.record("1.0.0")));
}

#[test]
fn a_garbled_last_line_the_checkpoint_covers_is_damage_not_a_torn_write() {
    let p = project("  red:\n    kind: regression\n    run: exit 1\n");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    let log_path = p.record("1.0.0").join("log.jsonl");
    let text = std::fs::read_to_string(&log_path).expect("log");
    let mut lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    lines[n - 1] = "garbage";
    let garbled = format!("{}\n", lines.join("\n"));
    std::fs::write(&log_path, &garbled).expect("write");

    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains(&format!(
            "log.jsonl line {n}: damaged although the signed checkpoint covers {n} lines"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&log_path).expect("log"), garbled);
    assert!(
        !names_in(&p.record("1.0.0"))
            .iter()
            .any(|n| n.starts_with("log.torn-")),
        "a signed line must not be cut off as torn"
    );
    assert!(!replays(&p, &p.record("1.0.0")));
}

#[test]
fn a_run_killed_after_the_rename_is_completed_by_the_next_run() {
    let p = project(PASSING);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    let pubdir = p.join("published/acme/1.0.0");
    let published_log = std::fs::read(pubdir.join("audit/log.jsonl")).expect("audit log");
    rewind_to_publish_record(&p);
    // The record in this state is consistent: its checkpoint covers the publish line.
    assert!(replays(&p, &p.record("1.0.0")));

    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
    assert!(
        stderr(&out).contains("interrupted after publishing"),
        "{}",
        stderr(&out)
    );
    let kinds = types(&p.log("1.0.0"));
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["publish", "published", "run-finished"]
    );
    assert_eq!(
        types(&p.log("1.0.0"))
            .iter()
            .filter(|k| *k == "run-started")
            .count(),
        1,
        "nothing ran again"
    );
    // The release itself was not touched.
    assert_eq!(
        std::fs::read(pubdir.join("audit/log.jsonl")).expect("audit log"),
        published_log
    );
    assert!(replays(&p, &p.record("1.0.0")));
    assert!(replays(&p, &pubdir));
    let status = p.relgate(&["status", "1.0.0"]);
    assert!(
        stdout(&status).contains("decision published"),
        "{}",
        stdout(&status)
    );
    // And from then on it is simply published.
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("already published"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_foreign_folder_at_the_target_is_not_taken_for_an_interrupted_publish() {
    let p = project(PASSING);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    rewind_to_publish_record(&p);
    let before = p.log("1.0.0");
    // Someone else's bytes at the target, with our audit log copied in.
    p.write("published/acme/1.0.0/SHA256SUMS", b"not ours\n");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("already published"),
        "{}",
        stderr(&out)
    );
    assert_eq!(p.log("1.0.0"), before, "nothing was recorded");
    assert_eq!(p.read("published/acme/1.0.0/SHA256SUMS"), "not ours\n");
}

#[test]
fn a_run_killed_before_the_rename_publishes_on_the_next_run_without_leftovers() {
    let p = project(PASSING);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    rewind_to_publish_record(&p);
    // The killed run's half-built folder beside the target.
    std::fs::rename(
        p.join("published/acme/1.0.0"),
        p.join("published/acme/.1.0.0.partial-Ab12Cd"),
    )
    .expect("rename");

    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
    assert_eq!(names_in(&p.join("published/acme")), ["1.0.0"]);
    assert!(replays(&p, &p.record("1.0.0")));
    assert!(replays(&p, &p.join("published/acme/1.0.0")));
    expect_code(
        &p.relgate(&["verify", s(&p.join("published/acme/1.0.0"))]),
        exit::SUCCESS,
    );
}

#[test]
fn a_dangling_symlink_at_the_target_is_never_replaced() {
    let p = project(PASSING);
    std::fs::create_dir_all(p.join("published/acme")).expect("mkdir");
    std::os::unix::fs::symlink("/nonexistent/relgate", p.join("published/acme/1.0.0"))
        .expect("symlink");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("already published"),
        "{}",
        stderr(&out)
    );
    let md = std::fs::symlink_metadata(p.join("published/acme/1.0.0")).expect("still there");
    assert!(md.file_type().is_symlink());
}

#[test]
fn a_symlinked_state_folder_and_publish_parent_work() {
    let p = project(PASSING);
    let elsewhere = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(elsewhere.path().join("state")).expect("mkdir");
    std::fs::create_dir_all(elsewhere.path().join("pub")).expect("mkdir");
    std::os::unix::fs::symlink(elsewhere.path().join("state"), p.join(".relgate")).expect("ln");
    std::os::unix::fs::symlink(elsewhere.path().join("pub"), p.join("published")).expect("ln");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    let real = elsewhere.path().join("pub/acme/1.0.0");
    assert!(real.join("SHA256SUMS").is_file());
    assert!(
        elsewhere
            .path()
            .join("state/releases/1.0.0/log.jsonl")
            .is_file()
    );
    assert!(replays(&p, &real));
    assert!(replays(&p, &p.record("1.0.0")));
    expect_code(&p.relgate(&["verify", s(&real)]), exit::SUCCESS);
}

#[test]
fn two_runs_of_one_version_at_once_the_second_is_refused_by_the_lock() {
    let p = project("  slow:\n    kind: regression\n    run: touch started; sleep 3\n");
    let first = Command::new(BIN)
        .current_dir(p.path())
        .args(["run", "1.0.0"])
        .env_remove("RELGATE_OPERATOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    while !p.join("started").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "first run did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = p.relgate(&["run", "1.0.0"]);
    // Busy, not a configuration error: CI can wait and retry.
    expect_code(&out, exit::BUSY);
    assert!(
        stderr(&out).contains("another relgate run holds the release record"),
        "{}",
        stderr(&out)
    );
    let first = first.wait_with_output().expect("wait");
    expect_code(&first, exit::SUCCESS);
    assert_eq!(
        types(&p.log("1.0.0"))
            .iter()
            .filter(|k| *k == "run-started")
            .count(),
        1,
        "the refused run wrote nothing"
    );
    assert!(replays(&p, &p.record("1.0.0")));
}

//! Publishing to a folder on this machine without a second copy: the staged copy that was
//! hashed and gated is moved into the release when it provably is still that file, and copied
//! (hashed again on the way) when it may not be — a second name, a writer holding it open, a
//! change of its metadata, another filesystem. Either way the release verifies and replays, and
//! nothing written to the staged file afterwards can reach the published one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::*;
use relgate::exit;

/// 3 MiB: large enough for staging's pipelined copy (direct writes), small enough to be quick.
fn big() -> Vec<u8> {
    (0..3 << 20)
        .map(|i: u32| (i * 31 + i / 4099) as u8)
        .collect()
}

/// A project with two artefacts and `gates` before the sign gate; `$P` in a gate's command is
/// the project folder.
fn project(gates: &str) -> Project {
    let p = Project::new();
    p.release_key();
    p.write("dist/a.tar.gz", big());
    p.write("dist/b.txt", b"notes\n");
    p.write("pipeline.yaml", pipeline(gates));
    p
}

/// A regression gate running `cmd` with `$P` set to the project folder and `$S` to the staged
/// copy of `a.tar.gz`.
fn gate(id: &str, cmd: &str) -> String {
    format!(
        "  {id}:\n    kind: regression\n    inputs: []\n    run: P=\"$RELGATE_RECORD/../../..\"; \
         S=$(echo \"$RELGATE_RECORD\"/staged/*/a.tar.gz); {cmd}\n"
    )
}

fn staged_a(p: &Project) -> Option<PathBuf> {
    let staged = p.record("1.0.0").join("staged");
    std::fs::read_dir(staged)
        .ok()?
        .flatten()
        .map(|e| e.path().join("a.tar.gz"))
        .find(|a| a.exists())
}

fn published(p: &Project) -> PathBuf {
    p.join("published/acme/1.0.0")
}

fn ino(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).expect("stat").ino()
}

/// The release verifies and replays, and its bytes are the artefact's.
#[track_caller]
fn whole(p: &Project) {
    let to = published(p);
    let to_s = to.to_str().expect("utf8");
    expect_code(&p.relgate(&["verify", to_s]), exit::SUCCESS);
    expect_code(&p.relgate(&["replay", to_s]), exit::SUCCESS);
    assert!(std::fs::read(to.join("a.tar.gz")).expect("read") == big());
}

#[test]
fn a_local_publish_moves_the_gated_copy_instead_of_writing_a_second() {
    let p = project(&gate("look", "stat -c %i \"$S\" > \"$P/staged-inode\""));
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    whole(&p);
    let gated: u64 = p.read("staged-inode").trim().parse().expect("inode");
    assert_eq!(
        ino(&published(&p).join("a.tar.gz")),
        gated,
        "the published artefact is not the file the gate saw"
    );
    assert_eq!(staged_a(&p), None, "the record still holds a second copy");
    // Nothing beside the release, and its files are readable as a copy's would be.
    assert_eq!(
        std::fs::read_dir(p.join("published/acme"))
            .expect("dir")
            .count(),
        1
    );
    let mode = std::fs::metadata(published(&p).join("a.tar.gz"))
        .expect("stat")
        .mode();
    assert_eq!(
        mode & 0o777,
        std::fs::metadata(published(&p).join("SHA256SUMS"))
            .expect("stat")
            .mode()
            & 0o777
    );
}

#[test]
fn a_staged_copy_with_a_second_name_is_copied_so_that_name_cannot_change_the_release() {
    let p = project(&gate("link", "ln \"$S\" \"$P/second-name\""));
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    let second = p.join("second-name");
    assert_ne!(ino(&published(&p).join("a.tar.gz")), ino(&second));
    std::fs::write(&second, b"changed through the other name").expect("write");
    whole(&p);
}

#[test]
fn a_staged_copy_whose_metadata_changed_is_copied_and_checked() {
    // Same bytes, new times: it may have been written, so it is hashed again on the way.
    let p = project(&gate("touch", "touch \"$S\""));
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    whole(&p);
    assert!(staged_a(&p).is_some(), "the staged copy was moved");
}

#[test]
fn a_staged_copy_held_open_for_writing_is_copied_so_the_writer_cannot_change_the_release() {
    // A gate waits while this test opens the staged copy for writing (as any process that can
    // write the record could) and keeps it open across the publish.
    let p = project(&gate(
        "wait",
        "touch \"$P/ready\"; while [ ! -e \"$P/go\" ]; do sleep 0.05; done",
    ));
    let mut child = std::process::Command::new(BIN)
        .current_dir(p.path())
        .args(["run", "1.0.0"])
        .env_remove("RELGATE_OPERATOR")
        .env("RELGATE_PIN_DIR", p.join(".relgate/.pins"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let until = Instant::now() + Duration::from_secs(120);
    while !p.join("ready").exists() {
        assert!(Instant::now() < until, "the gate never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let staged = staged_a(&p).expect("staged copy");
    let writer = std::fs::OpenOptions::new()
        .write(true)
        .open(&staged)
        .expect("open for writing");
    p.write("go", b"");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(exit::SUCCESS));
    use std::os::unix::fs::FileExt;
    writer
        .write_all_at(b"written after the publish", 0)
        .expect("write");
    drop(writer);
    whole(&p);
}

#[test]
fn a_publish_to_another_filesystem_copies_and_keeps_the_staged_copy() {
    // /dev/shm is a tmpfs on Linux; where it is the same filesystem as the temporary folder
    // there is nothing to show.
    let shm = Path::new("/dev/shm");
    let Ok(meta) = std::fs::metadata(shm) else {
        return;
    };
    let p = project("");
    if meta.dev() == std::fs::metadata(p.path()).expect("stat").dev() {
        return;
    }
    let target = tempfile::tempdir_in(shm).expect("tempdir in /dev/shm");
    let to = target.path().join("acme/1.0.0");
    let pipeline = pipeline("").replace(
        "to: published/{project}/{version}",
        &format!("to: {}/{{project}}/{{version}}", target.path().display()),
    );
    p.write("pipeline.yaml", pipeline);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    let to_s = to.to_str().expect("utf8");
    expect_code(&p.relgate(&["verify", to_s]), exit::SUCCESS);
    expect_code(&p.relgate(&["replay", to_s]), exit::SUCCESS);
    assert!(std::fs::read(to.join("a.tar.gz")).expect("read") == big());
    assert!(staged_a(&p).is_some(), "the staged copy is gone");
}

#[test]
fn a_staged_folder_swapped_for_a_link_never_leads_a_run_to_delete_elsewhere() {
    // A refused first run leaves a record whose staged copies stay for the next one.
    let p = project("  unit:\n    kind: regression\n    inputs: []\n    run: \"false\"\n");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    // Someone who can write the release record points `staged` at a folder of the engineer's.
    let victim = tempfile::tempdir().unwrap();
    std::fs::create_dir(victim.path().join("precious")).unwrap();
    std::fs::write(victim.path().join("precious/file"), b"keep me\n").unwrap();
    let staged = p.record("1.0.0").join("staged");
    std::fs::remove_dir_all(&staged).unwrap();
    std::os::unix::fs::symlink(victim.path(), &staged).unwrap();
    let out = p.relgate(&["run", "1.0.0"]);
    assert!(
        stderr(&out).contains("staged is a symbolic link"),
        "{}",
        stderr(&out)
    );
    assert!(
        victim.path().join("precious/file").is_file(),
        "the run deleted a folder the record's link pointed at"
    );
    let left: Vec<_> = std::fs::read_dir(victim.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("precious")], "{left:?}");
}

#[test]
fn staging_removes_only_what_staging_leaves_in_staged() {
    // Only earlier subjects' copies and a killed run's `.staging-*` folders go; anything else
    // in `staged/` (a link swapped in for `staged` while a run holds the record would list a
    // folder of someone's) is left where it is.
    let p = project("  unit:\n    kind: regression\n    inputs: []\n    run: \"false\"\n");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    let staged = p.record("1.0.0").join("staged");
    std::fs::create_dir(staged.join("precious")).unwrap();
    std::fs::write(staged.join("precious/file"), b"keep me\n").unwrap();
    let old = staged.join("0".repeat(64));
    std::fs::create_dir(&old).unwrap();
    std::fs::create_dir(staged.join(".staging-killed")).unwrap();
    p.write("dist/a.tar.gz", b"changed\n");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    assert!(
        staged.join("precious/file").is_file(),
        "staging removed a folder it did not make"
    );
    assert!(!old.exists(), "an earlier subject's copy stayed");
    assert!(
        !staged.join(".staging-killed").exists(),
        "a killed run's leftover stayed"
    );
}

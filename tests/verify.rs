//! `relgate verify DIR`: a published-looking folder built by hand with `sha256sum` and
//! `ssh-keygen -Y sign`, checked by the real binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SIGNER: &str = "release@acme.test";

struct Folder {
    _tmp: tempfile::TempDir,
    /// The published release folder.
    dir: PathBuf,
    /// Holds the signing key, outside the release folder.
    keys: PathBuf,
}

fn keygen(dir: &Path, name: &str) -> String {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(dir.join(name))
        .status()
        .unwrap();
    assert!(st.success());
    fs::read_to_string(dir.join(format!("{name}.pub")))
        .unwrap()
        .trim()
        .to_string()
}

fn fingerprint(public_file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(public_file)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_string()
}

/// Write SHA256SUMS with `sha256sum` over `names` (sorted), then sign it with `ssh-keygen`.
fn sum_and_sign(dir: &Path, key: &Path, names: &[&str]) {
    let mut names = names.to_vec();
    names.sort();
    let out = Command::new("sha256sum")
        .args(&names)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    fs::write(dir.join("SHA256SUMS"), out.stdout).unwrap();
    let _ = fs::remove_file(dir.join("SHA256SUMS.sig"));
    let st = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "file", "-f"])
        .arg(key)
        .arg(dir.join("SHA256SUMS"))
        .status()
        .unwrap();
    assert!(st.success());
}

impl Folder {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("acme/1.4.2");
        let keys = tmp.path().join("keys");
        fs::create_dir_all(dir.join("linux")).unwrap();
        fs::create_dir_all(dir.join("audit/evidence")).unwrap();
        fs::create_dir_all(&keys).unwrap();
        fs::write(dir.join("acme-1.4.2.tar.gz"), b"tarball bytes\n").unwrap();
        fs::write(dir.join("linux/x.bin"), b"\x7fELF binary").unwrap();
        fs::write(dir.join("audit/log.jsonl"), b"{}\n").unwrap();
        fs::write(dir.join("audit/evidence/0000"), b"anything").unwrap();
        let public = keygen(&keys, "release");
        fs::write(
            dir.join("audit/allowed_signers"),
            format!("# release signers\n{SIGNER} namespaces=\"file\" {public}\n"),
        )
        .unwrap();
        sum_and_sign(
            &dir,
            &keys.join("release"),
            &["acme-1.4.2.tar.gz", "linux/x.bin"],
        );
        Folder {
            _tmp: tmp,
            dir,
            keys,
        }
    }

    fn verify(&self, extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_relgate"))
            .arg("verify")
            .arg(&self.dir)
            .args(extra)
            .output()
            .unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[track_caller]
fn refused(o: &Output, needle: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    assert!(
        stderr(o).contains(needle),
        "stderr lacks {needle:?}:\n{}",
        stderr(o)
    );
    assert!(stdout(o).is_empty(), "{}", stdout(o));
}

#[test]
fn good_folder_verifies_and_sha256sum_agrees() {
    let f = Folder::new();
    let o = f.verify(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let fp = fingerprint(&f.keys.join("release.pub"));
    assert_eq!(
        stdout(&o),
        format!("verified: 2 files, signed by {SIGNER} ({fp})\n")
    );
    let st = Command::new("sha256sum")
        .args(["-c", "--strict", "--quiet", "SHA256SUMS"])
        .current_dir(&f.dir)
        .status()
        .unwrap();
    assert!(st.success());
    // An explicit --signers naming the same trust works too.
    let o = f.verify(&[
        "--signers",
        f.dir.join("audit/allowed_signers").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn altered_artefact_is_refused_by_name() {
    let f = Folder::new();
    fs::write(f.dir.join("linux/x.bin"), b"\x7fELF binary, patched").unwrap();
    refused(&f.verify(&[]), "linux/x.bin: checksum mismatch");
    // sha256sum sees it too.
    let st = Command::new("sha256sum")
        .args(["-c", "--strict", "--quiet", "SHA256SUMS"])
        .current_dir(&f.dir)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!st.success());
}

#[test]
fn missing_artefact_is_refused_by_name() {
    let f = Folder::new();
    fs::remove_file(f.dir.join("acme-1.4.2.tar.gz")).unwrap();
    refused(&f.verify(&[]), "acme-1.4.2.tar.gz: missing");
}

#[test]
fn symlinked_artefact_is_refused() {
    let f = Folder::new();
    let real = f.keys.join("x.bin");
    fs::rename(f.dir.join("linux/x.bin"), &real).unwrap();
    std::os::unix::fs::symlink(&real, f.dir.join("linux/x.bin")).unwrap();
    refused(&f.verify(&[]), "linux/x.bin: is a symbolic link");
}

#[test]
fn altered_signature_is_refused() {
    let f = Folder::new();
    let sig_path = f.dir.join("SHA256SUMS.sig");
    let sig = fs::read_to_string(&sig_path).unwrap();
    // Flip one character of the last base64 line (inside the signature bytes).
    let mut lines: Vec<String> = sig.lines().map(str::to_string).collect();
    let n = lines.len() - 2;
    let first = lines[n].remove(0);
    lines[n].insert(0, if first == 'A' { 'B' } else { 'A' });
    fs::write(&sig_path, lines.join("\n") + "\n").unwrap();
    refused(&f.verify(&[]), "SHA256SUMS.sig: ");
}

#[test]
fn signature_over_other_sums_is_refused() {
    let f = Folder::new();
    // Re-signed after an edit, then SHA256SUMS restored: the signature covers other bytes.
    let good = fs::read(f.dir.join("SHA256SUMS")).unwrap();
    fs::write(f.dir.join("extra.txt"), b"x").unwrap();
    sum_and_sign(
        &f.dir,
        &f.keys.join("release"),
        &["acme-1.4.2.tar.gz", "extra.txt", "linux/x.bin"],
    );
    fs::remove_file(f.dir.join("extra.txt")).unwrap();
    fs::write(f.dir.join("SHA256SUMS"), good).unwrap();
    refused(&f.verify(&[]), "SHA256SUMS.sig: signature does not verify");
}

#[test]
fn missing_signature_is_refused() {
    let f = Folder::new();
    fs::remove_file(f.dir.join("SHA256SUMS.sig")).unwrap();
    refused(&f.verify(&[]), "SHA256SUMS.sig: missing");
}

#[test]
fn extra_unlisted_file_is_refused_by_name() {
    let f = Folder::new();
    fs::write(f.dir.join("linux/README"), b"not in the release").unwrap();
    refused(&f.verify(&[]), "linux/README: not listed in SHA256SUMS");
    // A hidden file counts too.
    let f = Folder::new();
    fs::write(f.dir.join(".note"), b"x").unwrap();
    refused(&f.verify(&[]), ".note: not listed in SHA256SUMS");
}

#[test]
fn wrong_signers_file_is_refused() {
    let f = Folder::new();
    let other = keygen(&f.keys, "other");
    let wrong = f.keys.join("allowed_signers");
    fs::write(&wrong, format!("{SIGNER} {other}\n")).unwrap();
    refused(
        &f.verify(&["--signers", wrong.to_str().unwrap()]),
        "does not allow",
    );
    // The recorded copy naming another key is refused as well.
    fs::copy(&wrong, f.dir.join("audit/allowed_signers")).unwrap();
    refused(&f.verify(&[]), "audit/allowed_signers does not allow");
    // The right key, but not for files.
    let public = fs::read_to_string(f.keys.join("release.pub")).unwrap();
    fs::write(&wrong, format!("{SIGNER} namespaces=\"git\" {public}")).unwrap();
    refused(
        &f.verify(&["--signers", wrong.to_str().unwrap()]),
        "does not allow",
    );
    // A missing signers file.
    fs::remove_file(f.dir.join("audit/allowed_signers")).unwrap();
    refused(&f.verify(&[]), "audit/allowed_signers: missing");
}

#[test]
fn non_strict_sums_file_is_refused() {
    let f = Folder::new();
    let text = fs::read_to_string(f.dir.join("SHA256SUMS")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Unsorted (and re-signed, so only the order is wrong).
    fs::write(
        f.dir.join("SHA256SUMS"),
        format!("{}\n{}\n", lines[1], lines[0]),
    )
    .unwrap();
    fs::remove_file(f.dir.join("SHA256SUMS.sig")).unwrap();
    let st = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "file", "-f"])
        .arg(f.keys.join("release"))
        .arg(f.dir.join("SHA256SUMS"))
        .status()
        .unwrap();
    assert!(st.success());
    refused(
        &f.verify(&[]),
        "SHA256SUMS:2: acme-1.4.2.tar.gz is out of order",
    );
}

#[test]
fn missing_folder_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_relgate"))
        .arg("verify")
        .arg(t.path().join("nope"))
        .output()
        .unwrap();
    refused(&o, "cannot open the folder");
    assert!(stderr(&o).contains("nope"));
}

//! `relgate verify DIR`: a published-looking folder built by hand with `sha256sum` and
//! `ssh-keygen -Y sign`, checked by the real binary under a trust root from outside the folder
//! (`keys/trusted_signers`, beside it), run from a folder that is no project.

use crate::common::{fingerprint, stderr, stdout};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SIGNER: &str = "release@acme.test";

struct Folder {
    tmp: tempfile::TempDir,
    /// The published release folder.
    dir: PathBuf,
    /// Holds the signing key and the trusted signers file, outside the release folder.
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

/// Write SHA256SUMS with `sha256sum` over `names` (sorted), then sign it with `ssh-keygen`, and
/// write the release's attestation over those artefacts, signed by the same key.
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
    let sums = fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let summary = relgate::intoto::vsa::Summary {
        subjects: sums
            .lines()
            .map(|l| {
                let (h, n) = l.split_once("  ").unwrap();
                (n.to_string(), h.to_string())
            })
            .collect(),
        time_verified: "2026-12-01T06:40:00Z".into(),
        resource_uri: "file:///srv/acme/1.4.2/".into(),
        policy_uri: "pipeline.yaml".into(),
        policy_sha256: "0".repeat(64),
        log_sha256: "0".repeat(64),
        checkpoint_sha256: "0".repeat(64),
        tool_version: "0.1.0".into(),
        dry_run: false,
    };
    let k = relgate::signkey::load(key).unwrap();
    let a = relgate::intoto::vsa::attest(&k, &summary).unwrap();
    fs::write(dir.join("attestation.intoto.jsonl"), a.envelope).unwrap();
    fs::write(dir.join("release.pub.pem"), a.pem).unwrap();
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
        let signers = format!("# release signers\n{SIGNER} namespaces=\"file\" {public}\n");
        fs::write(dir.join("audit/allowed_signers"), &signers).unwrap();
        fs::write(keys.join("trusted_signers"), &signers).unwrap();
        sum_and_sign(
            &dir,
            &keys.join("release"),
            &["acme-1.4.2.tar.gz", "linux/x.bin"],
        );
        Folder { tmp, dir, keys }
    }

    /// `relgate verify DIR` under the trusted signers file.
    fn verify(&self, extra: &[&str]) -> Output {
        let trusted = self.keys.join("trusted_signers");
        let mut args = vec!["--signers", trusted.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.verify_raw(&args)
    }

    /// `relgate verify DIR ARGS` exactly, from a folder that holds no pipeline.
    fn verify_raw(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_relgate"))
            .current_dir(self.tmp.path())
            .arg("verify")
            .arg(&self.dir)
            .args(args)
            .output()
            .unwrap()
    }
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
    assert!(
        stdout(&o).starts_with(&format!(
            "verified: 2 files, SHA256SUMS signed by {SIGNER} ({fp}) (trust root: --signers "
        )),
        "{}",
        stdout(&o)
    );
    let st = Command::new("sha256sum")
        .args(["-c", "--strict", "--quiet", "SHA256SUMS"])
        .current_dir(&f.dir)
        .status()
        .unwrap();
    assert!(st.success());
    // The release key pinned by its fingerprint works too.
    let o = f.verify_raw(&["--trust-key", &fp]);
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
        &f.verify_raw(&["--signers", wrong.to_str().unwrap()]),
        "does not allow",
    );
    // The right key, but not for files.
    let public = fs::read_to_string(f.keys.join("release.pub")).unwrap();
    fs::write(&wrong, format!("{SIGNER} namespaces=\"git\" {public}")).unwrap();
    refused(
        &f.verify_raw(&["--signers", wrong.to_str().unwrap()]),
        "does not allow",
    );
    // Another key pinned.
    let other_fp = fingerprint(&f.keys.join("other.pub"));
    refused(
        &f.verify_raw(&["--trust-key", &other_fp]),
        "not a trusted key",
    );
    // A trust root that cannot be read is a usage error, not a verdict.
    let o = f.verify_raw(&["--signers", "/nonexistent/allowed_signers"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = f.verify_raw(&["--trust-key", "SHA256:nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// Issue: the folder vouched for itself. A forger replaces an artefact, rewrites SHA256SUMS,
/// signs it with a key of their own and puts that key into the folder's audit/allowed_signers.
fn forge_with_own_key(f: &Folder) -> String {
    let forger = keygen(&f.keys, "forger");
    fs::write(f.dir.join("acme-1.4.2.tar.gz"), b"evil tarball\n").unwrap();
    sum_and_sign(
        &f.dir,
        &f.keys.join("forger"),
        &["acme-1.4.2.tar.gz", "linux/x.bin"],
    );
    fs::write(
        f.dir.join("audit/allowed_signers"),
        format!("{SIGNER} {forger}\n"),
    )
    .unwrap();
    fingerprint(&f.keys.join("forger.pub"))
}

#[test]
fn a_folder_signed_by_a_key_it_names_itself_is_not_verified() {
    let f = Folder::new();
    let forger_fp = forge_with_own_key(&f);
    // Without a trust root from outside, verify refuses to judge at all (exit 2), and shows
    // what the folder claims only as untrusted.
    let o = f.verify_raw(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no trust root"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--signers"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--trust-key"), "{}", stderr(&o));
    assert!(stderr(&o).contains("UNTRUSTED"), "{}", stderr(&o));
    assert!(stderr(&o).contains(&forger_fp), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    // With the real trust root, the forgery is refused.
    refused(&f.verify(&[]), "SHA256SUMS.sig: signed by");
    let real = fingerprint(&f.keys.join("release.pub"));
    refused(&f.verify_raw(&["--trust-key", &real]), "not a trusted key");
}

#[test]
fn a_folder_verified_inside_a_project_is_checked_against_the_projects_signers() {
    let f = Folder::new();
    forge_with_own_key(&f);
    // A project whose pipeline names the real signers: its signers are the trust root.
    let project = f.tmp.path().join("project");
    fs::create_dir_all(project.join("keys")).unwrap();
    fs::copy(
        f.keys.join("trusted_signers"),
        project.join("keys/allowed_signers"),
    )
    .unwrap();
    fs::write(
        project.join("pipeline.yaml"),
        format!(
            "version: 1\nproject: acme\nartefacts: [dist/*]\nsigners: keys/allowed_signers\n\
             gates:\n  sign:\n    kind: sign\n    key: keys/release\n    signer: {SIGNER}\n"
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_relgate"))
        .current_dir(&project)
        .arg("verify")
        .arg(&f.dir)
        .output()
        .unwrap();
    refused(&o, "the pipeline's signers");
}

#[test]
fn a_release_signed_by_a_qa_approver_is_not_verified() {
    let f = Folder::new();
    // alice may sign files (no namespaces= restriction), but she is not the release signer.
    let alice = keygen(&f.keys, "alice");
    let release = fs::read_to_string(f.keys.join("release.pub")).unwrap();
    let both = f.keys.join("team_signers");
    fs::write(
        &both,
        format!("{SIGNER} {release}alice@acme.test {alice}\n"),
    )
    .unwrap();
    sum_and_sign(
        &f.dir,
        &f.keys.join("alice"),
        &["acme-1.4.2.tar.gz", "linux/x.bin"],
    );
    // Two principals: say which signs releases.
    let o = f.verify_raw(&["--signers", both.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--signer PRINCIPAL"), "{}", stderr(&o));
    refused(
        &f.verify_raw(&["--signers", both.to_str().unwrap(), "--signer", SIGNER]),
        "the key belongs to alice@acme.test, who does not sign releases",
    );
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
    let f = Folder::new();
    let o = Command::new(env!("CARGO_BIN_EXE_relgate"))
        .current_dir(f.tmp.path())
        .arg("verify")
        .arg(f.tmp.path().join("nope"))
        .args(["--signers", "keys/trusted_signers"])
        .output()
        .unwrap();
    refused(&o, "cannot open the folder");
    assert!(stderr(&o).contains("nope"));
}

#[test]
fn names_that_read_wrong_are_refused_with_their_code_point() {
    for (name, needle) in [
        ("a\tb.txt", "control character U+0009"),
        (
            "evil\u{202E}txt.exe",
            "bidirectional control character U+202E",
        ),
        ("zero\u{200B}width.txt", "invisible character U+200B"),
        ("cafe\u{301}.txt", "Normalization Form C"),
    ] {
        let f = Folder::new();
        fs::write(f.dir.join(name), b"x").unwrap();
        sum_and_sign(
            &f.dir,
            &f.keys.join("release"),
            &["acme-1.4.2.tar.gz", "linux/x.bin", name],
        );
        refused(&f.verify(&[]), needle);
    }
}

/// Files are hashed several at once, largest first; the messages still come in the order of
/// `SHA256SUMS`, the same on every run, whatever finishes first.
#[test]
fn problems_come_in_the_order_of_sums_whatever_the_sizes() {
    let f = Folder::new();
    let mut names = Vec::new();
    for i in 0..24usize {
        let name = format!("part-{i:02}.bin");
        // Sizes that do not follow the names: the largest files are checked first.
        let size = ((i * 7) % 24) * 96 * 1024 + 1;
        fs::write(f.dir.join(&name), vec![b'a' + (i % 26) as u8; size]).unwrap();
        names.push(name);
    }
    let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
    all.extend(["acme-1.4.2.tar.gz", "linux/x.bin"]);
    sum_and_sign(&f.dir, &f.keys.join("release"), &all);
    // Every third file changed, one missing, one a symbolic link, one a folder.
    for name in names.iter().step_by(3) {
        fs::write(f.dir.join(name), b"changed").unwrap();
    }
    fs::remove_file(f.dir.join("part-04.bin")).unwrap();
    fs::remove_file(f.dir.join("part-05.bin")).unwrap();
    std::os::unix::fs::symlink("part-01.bin", f.dir.join("part-05.bin")).unwrap();
    fs::remove_file(f.dir.join("part-07.bin")).unwrap();
    fs::create_dir(f.dir.join("part-07.bin")).unwrap();

    let mut want = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match i {
            4 => want.push(format!("{name}: missing")),
            5 => want.push(format!("{name}: is a symbolic link")),
            7 => want.push(format!("{name}: is not a regular file")),
            _ if i % 3 == 0 => want.push(format!("{name}: checksum mismatch")),
            _ => {}
        }
    }
    let first = f.verify(&[]);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let got: Vec<String> = stderr(&first)
        .lines()
        .filter(|l| l.starts_with("part-"))
        .map(String::from)
        .collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(&want) {
        assert!(g.starts_with(w.as_str()), "{g:?} is not {w:?}: {got:#?}");
    }
    for _ in 0..3 {
        assert_eq!(stderr(&f.verify(&[])), stderr(&first));
    }
}

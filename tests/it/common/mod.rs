//! Test harness: a temporary project folder, real `ssh-keygen` keys, and the real binary.

pub mod library;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_relgate");

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

impl Project {
    pub fn new() -> Self {
        Project {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> &Self {
        let p = self.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).expect("read")
    }

    /// Make an Ed25519 key with real ssh-keygen at `keys/NAME`; returns the public key line.
    pub fn keygen(&self, name: &str) -> String {
        self.keygen_typed(name, "ed25519", "")
    }

    /// Make a key of type `kind` (`ed25519`, `ecdsa`, `rsa`) and `bits` (empty: the default)
    /// with real ssh-keygen at `keys/NAME`; returns the public key line.
    pub fn keygen_typed(&self, name: &str, kind: &str, bits: &str) -> String {
        let path = self.join(&format!("keys/{name}"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(&path);
        if !bits.is_empty() {
            cmd.args(["-b", bits]);
        }
        let out = cmd.output().expect("ssh-keygen");
        assert!(out.status.success(), "ssh-keygen failed: {out:?}");
        let public = std::fs::read_to_string(path.with_extension("pub")).expect("pub");
        let mut parts = public.split_whitespace();
        format!(
            "{} {}",
            parts.next().expect("type"),
            parts.next().expect("key")
        )
    }

    /// A release key `keys/release` and an allowed_signers file listing it for `release@acme.test`.
    pub fn release_key(&self) -> &Self {
        let public = self.keygen("release");
        self.write(
            "keys/allowed_signers",
            format!("release@acme.test {public}\n"),
        );
        self
    }

    /// Run relgate in the project folder.
    pub fn relgate(&self, args: &[&str]) -> Output {
        self.relgate_env(args, &[])
    }

    pub fn relgate_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run relgate")
    }

    /// The command [`Project::relgate`] runs, not started yet.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        // Each project keeps the checkpoints relgate pins outside its records in a folder of its
        // own, so that tests never share them.
        cmd.current_dir(self.path())
            .args(args)
            .env_remove("RELGATE_OPERATOR")
            .env("RELGATE_PIN_DIR", self.join(".relgate/.pins"));
        cmd
    }

    pub fn log(&self, version: &str) -> String {
        self.read(&format!(".relgate/releases/{version}/log.jsonl"))
    }

    pub fn record(&self, version: &str) -> PathBuf {
        self.join(&format!(".relgate/releases/{version}"))
    }
}

/// `ssh-keygen -Y verify`: does the signature `sig` over `msg` verify for `principal` under
/// `allowed` in `namespace`?
pub fn ssh_keygen_verifies(
    allowed: &Path,
    principal: &str,
    namespace: &str,
    sig: &Path,
    msg: &[u8],
) -> bool {
    use std::io::Write;
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", namespace, "-f"])
        .arg(allowed)
        .args(["-I", principal, "-s"])
        .arg(sig)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ssh-keygen");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(msg)
        .expect("write");
    child.wait().expect("wait").success()
}

/// The python3 that has securesystemslib and cryptography (scripts/install-prereqs.sh puts them
/// in the python3 on PATH, or in a venv linked as /usr/local/bin/relgate-sslib-python3).
pub fn sslib_python() -> String {
    if let Ok(p) = std::env::var("RELGATE_TEST_PYTHON") {
        return p;
    }
    let venv = "/usr/local/bin/relgate-sslib-python3";
    if Path::new(venv).exists() {
        return venv.into();
    }
    "python3".into()
}

/// What tests/vsa_check.py (securesystemslib and cryptography, not relgate) says about a DSSE
/// envelope checked with the SSH public key file `ssh_pub`, the PEM `pem` and `keyid`.
pub fn vsa_check(envelope: &Path, ssh_pub: &Path, pem: &Path, keyid: &str) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vsa_check.py");
    let out = Command::new(sslib_python())
        .arg(script)
        .arg(envelope)
        .arg(ssh_pub)
        .arg(pem)
        .arg(keyid)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "vsa_check.py failed (is securesystemslib installed? scripts/install-prereqs.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("vsa_check.py output")
}

/// `ssh-keygen -l -E sha256` of a public key file: its `SHA256:...` fingerprint.
pub fn fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(public)
        .output()
        .expect("ssh-keygen -l");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_string()
}

/// The reason codes of a verdict, in order.
pub fn codes(v: &relgate::gates::Verdict) -> Vec<&str> {
    v.reasons.iter().map(|r| r.code.as_str()).collect()
}

/// Every reason of a verdict as `code: message`, one a line (for assertion messages).
pub fn messages(v: &relgate::gates::Verdict) -> String {
    v.reasons
        .iter()
        .map(|r| format!("{}: {}", r.code, r.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The gate `id` in a `--format json` document of a run or a dry run.
pub fn json_gate<'a>(doc: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    doc["gates"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["id"] == id))
        .unwrap_or_else(|| panic!("no gate {id} in {doc:#}"))
}

/// Is process `pid` alive? A zombie (state Z) has exited; only its parent has not reaped it.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next() != Some("Z"))
        })
        .unwrap_or(false)
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Assert the exit code, showing both streams when it differs.
#[track_caller]
pub fn expect_code(out: &Output, want: i32) {
    assert_eq!(
        code(out),
        want,
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(out),
        stderr(out)
    );
}

/// A pipeline with one artefact folder `dist/`, the release key, and `gates` (YAML text,
/// indented by two spaces) plus the sign gate.
pub fn pipeline(gates: &str) -> String {
    format!(
        "version: 1
project: acme
artefacts:
  - dist/*
signers: keys/allowed_signers
gates:
{gates}
  sign:
    kind: sign
    key: keys/release
    signer: release@acme.test
publish:
  to: published/{{project}}/{{version}}
"
    )
}

/// A project with the release key, one artefact `dist/a.txt` and `gates` (see [`pipeline`]).
pub fn project_with(gates: &str) -> Project {
    let p = Project::new();
    p.release_key();
    p.write("dist/a.txt", b"a\n");
    p.write("pipeline.yaml", pipeline(gates));
    p
}

/// Copy a folder tree (regular files and folders only).
pub fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.expect("walk");
        let dst = to.join(e.path().strip_prefix(from).expect("rel"));
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dst).expect("mkdir");
        } else if e.file_type().is_file() {
            std::fs::copy(e.path(), &dst).expect("copy");
        }
    }
}

/// The trust root the test projects use: their own `keys/allowed_signers`, whose release signer
/// is `release@acme.test`.
pub fn trust(p: &Project) -> relgate::trust::TrustRoot {
    relgate::trust::TrustRoot::from_signers_file(
        &p.join("keys/allowed_signers"),
        Some("release@acme.test"),
    )
    .expect("trust root")
}

/// Replay `dir` in-process under the project's trust root.
pub fn replay_in(p: &Project, dir: &Path) -> relgate::replay::ReplayReport {
    let root = trust(p);
    relgate::replay::replay(
        dir,
        &relgate::replay::ReplayOptions {
            trust: &root,
            checkpoints: &[],
        },
    )
}

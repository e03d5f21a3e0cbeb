//! Signing through a real `ssh-agent`: the release key and an approver's key are added to an
//! agent this test starts, their private key files are deleted, and the release still signs,
//! seals its checkpoints, takes the sign-off, publishes and verifies. The pipeline and
//! `approve` name the keys by their public key files.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::*;
use relgate::exit;

/// A real ssh-agent on a socket of its own, killed when dropped.
struct Agent {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        for _ in 0..200 {
            if sock.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(sock.exists(), "ssh-agent did not make its socket");
        Agent {
            child,
            sock,
            _dir: dir,
        }
    }

    fn sock(&self) -> &str {
        self.sock.to_str().expect("utf-8 path")
    }

    /// `ssh-add` a private key file.
    fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .expect("ssh-add");
        assert!(out.status.success(), "ssh-add: {out:?}");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Release key `release` and approver `carol`, both RSA 3072 (relgate never signs with RSA
/// itself, so every RSA signature here is the agent's), alice with an ECDSA key; the pipeline
/// names the release key by its public key file.
fn project() -> Project {
    let p = Project::new();
    let release = p.keygen_typed("release", "rsa", "3072");
    let carol = p.keygen_typed("carol", "rsa", "3072");
    let alice = p.keygen_typed("alice", "ecdsa", "256");
    p.write(
        "keys/allowed_signers",
        format!("release@acme.test {release}\ncarol@acme.test {carol}\nalice@acme.test {alice}\n"),
    );
    p.write("dist/a.txt", b"a\n");
    let gates = "  manual:\n    kind: signoff\n    role: qa\n    quorum: 2\n    segregation: [operator, signer]\n";
    let text = pipeline(gates)
        .replace(
            "signers: keys/allowed_signers\n",
            "signers: keys/allowed_signers\nroles:\n  qa: [carol@acme.test, alice@acme.test]\n",
        )
        .replace("key: keys/release\n", "key: keys/release.pub\n");
    p.write("pipeline.yaml", text);
    p
}

#[test]
fn keys_held_by_ssh_agent_sign_with_their_files_deleted_and_the_release_verifies() {
    let p = project();
    let agent = Agent::start();
    agent.add(&p.join("keys/release"));
    agent.add(&p.join("keys/carol"));
    std::fs::remove_file(p.join("keys/release")).unwrap();
    std::fs::remove_file(p.join("keys/carol")).unwrap();
    let env = [("SSH_AUTH_SOCK", agent.sock())];

    let out = p.relgate_env(&["run", "1.0.0"], &env);
    expect_code(&out, exit::PENDING);
    // The checkpoint was signed by the agent's release key, so approve trusts the subject.
    let allowed = p.join("keys/allowed_signers");
    let record = p.record("1.0.0");
    let cp = std::fs::read(record.join("checkpoint")).unwrap();
    assert!(ssh_keygen_verifies(
        &allowed,
        "release@acme.test",
        "relgate-checkpoint",
        &record.join("checkpoint.sig"),
        &cp
    ));

    for (who, key) in [("carol", "keys/carol.pub"), ("alice", "keys/alice")] {
        let principal = format!("{who}@acme.test");
        let out = p.relgate_env(
            &[
                "approve", "1.0.0", "--gate", "manual", "--key", key, "--as", &principal,
            ],
            &env,
        );
        expect_code(&out, exit::SUCCESS);
    }
    for e in std::fs::read_dir(record.join("approvals")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "json") {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let msg = std::fs::read(&path).unwrap();
            assert!(ssh_keygen_verifies(
                &allowed,
                v["signer"].as_str().unwrap(),
                "relgate-approval",
                &path.with_extension("json.sig"),
                &msg
            ));
        }
    }

    let out = p.relgate_env(&["run", "1.0.0"], &env);
    expect_code(&out, exit::SUCCESS);
    let published = p.join("published/acme/1.0.0");
    let sums = std::fs::read(published.join("SHA256SUMS")).unwrap();
    assert!(ssh_keygen_verifies(
        &allowed,
        "release@acme.test",
        "file",
        &published.join("SHA256SUMS.sig"),
        &sums
    ));
    let sig = std::fs::read_to_string(published.join("SHA256SUMS.sig")).unwrap();
    let parsed = ssh_key::SshSig::from_pem(&sig).unwrap();
    assert_eq!(parsed.signature().algorithm().to_string(), "rsa-sha2-512");
    // The attestation, signed by the agent's RSA key (rsa-sha2-256 over PAE), checks with
    // securesystemslib (scheme rsa-pkcs1v15-sha256) and cryptography against the PEM.
    let fp = {
        let key = ssh_key::PublicKey::read_openssh_file(&p.join("keys/release.pub")).unwrap();
        relgate::sshsig::fingerprint(&key)
    };
    let c = vsa_check(
        &published.join("attestation.intoto.jsonl"),
        &p.join("keys/release.pub"),
        &published.join("release.pub.pem"),
        &fp,
    );
    assert_eq!(c["scheme"], "rsa-pkcs1v15-sha256");
    assert!(c["sslib"] == true && c["crypto"] == true, "{c:#}");
    // Verify and replay need no agent.
    for cmd in ["verify", "replay"] {
        let out = p.relgate(&[cmd, published.to_str().unwrap()]);
        expect_code(&out, exit::SUCCESS);
    }
    let out = p.relgate(&["replay", record.to_str().unwrap()]);
    expect_code(&out, exit::SUCCESS);
}

#[test]
fn a_public_key_without_an_agent_or_one_the_agent_lacks_is_unavailable_and_said_so() {
    let p = project();
    // No agent at all: the sign gate cannot sign, and says why; a dry run uses a throwaway key.
    let out = p.relgate_env(&["run", "1.0.0", "--dry-run"], &[("SSH_AUTH_SOCK", "")]);
    expect_code(&out, exit::SUCCESS);
    assert!(stderr(&out).contains("throwaway"), "{}", stderr(&out));

    // An agent that holds only carol's key: the release key is not available, and the sign
    // gate (here with nothing to wait on) says which key and which agent.
    let agent = Agent::start();
    agent.add(&p.join("keys/carol"));
    let env = [("SSH_AUTH_SOCK", agent.sock())];
    let text = pipeline("").replace("key: keys/release\n", "key: keys/release.pub\n");
    p.write("pipeline.yaml", text);
    let out = p.relgate_env(&["run", "1.0.0"], &env);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(
        err.contains("sign: red: key-unavailable") && err.contains("does not hold it"),
        "{err}"
    );
    assert!(!p.join("published").exists());
}

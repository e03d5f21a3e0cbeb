//! Keys of every type OpenSSH makes for people and releases: ECDSA (nistp256, nistp384) and
//! RSA 3072 keys made by the real `ssh-keygen` sign approvals, `SHA256SUMS.sig` and checkpoints
//! that stock `ssh-keygen -Y verify` accepts and that count in relgate; types relgate cannot
//! verify are refused by name.

use std::path::Path;
use std::process::Command;

use crate::common::*;
use relgate::exit;

/// A project whose release key is `release_kind`/`release_bits`, with approvers alice
/// (ECDSA 256), bob (ECDSA 384) and carol (RSA 3072) in role qa, sign-off quorum `quorum`
/// (0: no sign-off gate).
fn project(release_kind: &str, release_bits: &str, quorum: u32) -> Project {
    let p = Project::new();
    let release = p.keygen_typed("release", release_kind, release_bits);
    let alice = p.keygen_typed("alice", "ecdsa", "256");
    let bob = p.keygen_typed("bob", "ecdsa", "384");
    let carol = p.keygen_typed("carol", "rsa", "3072");
    p.write(
        "keys/allowed_signers",
        format!(
            "release@acme.test {release}\nalice@acme.test {alice}\nbob@acme.test {bob}\n\
             carol@acme.test {carol}\n"
        ),
    );
    p.write("dist/a.txt", b"a\n");
    let gates = if quorum == 0 {
        String::new()
    } else {
        format!(
            "  manual:\n    kind: signoff\n    role: qa\n    quorum: {quorum}\n    segregation: [operator, signer]\n"
        )
    };
    let text = pipeline(&gates).replace(
        "signers: keys/allowed_signers\n",
        "signers: keys/allowed_signers\nroles:\n  qa: [alice@acme.test, bob@acme.test, carol@acme.test]\n",
    );
    p.write("pipeline.yaml", text);
    p
}

fn approve(p: &Project, who: &str) -> std::process::Output {
    let key = format!("keys/{who}");
    let principal = format!("{who}@acme.test");
    p.relgate(&[
        "approve", "1.0.0", "--gate", "manual", "--key", &key, "--as", &principal,
    ])
}

/// The pairs in the record's approvals/ folder: (statement path, signature path).
fn pairs(dir: &Path) -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("approvals") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "json") {
            let sig = path.with_extension("json.sig");
            out.push((path, sig));
        }
    }
    out.sort();
    out
}

/// The principal a statement names.
fn signer_of(statement: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(statement).expect("read")).expect("json");
    v["signer"].as_str().expect("signer").to_string()
}

#[test]
fn approvals_by_ecdsa_and_rsa_keys_verify_with_ssh_keygen_and_count() {
    let p = project("ed25519", "", 3);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);

    // ECDSA key files sign through relgate itself.
    expect_code(&approve(&p, "alice"), exit::SUCCESS);
    expect_code(&approve(&p, "bob"), exit::SUCCESS);

    // relgate does no RSA private-key operation: an RSA key file is refused, saying to use
    // the agent (tests/it/agent.rs signs through it).
    let out = approve(&p, "carol");
    expect_code(&out, exit::CONFIG);
    assert!(
        stderr(&out).contains("does not sign with RSA private keys itself")
            && stderr(&out).contains("ssh-agent"),
        "{}",
        stderr(&out)
    );

    // carol signs by hand with ssh-keygen, a statement like alice's with her name and key:
    // a pair dropped into approvals/ counts like one approve wrote (SPEC §4).
    let approvals = p.record("1.0.0").join("approvals");
    let (alice_statement, _) = pairs(&approvals)
        .into_iter()
        .find(|(s, _)| signer_of(s) == "alice@acme.test")
        .expect("alice's pair");
    let mut st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&alice_statement).unwrap()).unwrap();
    let carol_fp = fingerprint(&p.join("keys/carol.pub"));
    st["signer"] = "carol@acme.test".into();
    st["key"] = carol_fp.clone().into();
    let bytes = relgate::digest::canonical_json(&st).unwrap();
    let carol_statement = approvals.join("manual.carol.by-hand.json");
    std::fs::write(&carol_statement, &bytes).unwrap();
    let signed = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "relgate-approval", "-f"])
        .arg(p.join("keys/carol"))
        .arg(&carol_statement)
        .status()
        .unwrap();
    assert!(signed.success());
    // ssh-keygen makes rsa-sha2-512 signatures for SSHSIG.
    let sig_text = std::fs::read_to_string(carol_statement.with_extension("json.sig")).unwrap();
    assert!(sig_text.starts_with("-----BEGIN SSH SIGNATURE-----"));

    // Every pair, of every key type, verifies with stock ssh-keygen.
    let allowed = p.join("keys/allowed_signers");
    let all = pairs(&approvals);
    assert_eq!(all.len(), 3, "{all:?}");
    for (statement, sig) in &all {
        let msg = std::fs::read(statement).unwrap();
        assert!(
            ssh_keygen_verifies(
                &allowed,
                &signer_of(statement),
                "relgate-approval",
                sig,
                &msg
            ),
            "ssh-keygen -Y verify refused {}",
            statement.display()
        );
    }

    // And all three count: quorum 3 is met, the release publishes and verifies.
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
    let published = p.join("published/acme/1.0.0");
    let out = p.relgate(&["verify", published.to_str().unwrap()]);
    expect_code(&out, exit::SUCCESS);
    let out = p.relgate(&["replay", published.to_str().unwrap()]);
    expect_code(&out, exit::SUCCESS);
}

/// A release signed with an ECDSA key file: `SHA256SUMS.sig` and every checkpoint verify with
/// `ssh-keygen -Y verify`, and `verify` and `replay` accept the folder.
fn ecdsa_release_key_publishes(bits: &str) {
    let p = project("ecdsa", bits, 2);
    // approve signs only a subject a checkpoint by the (ECDSA) release key vouched for.
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    for who in ["alice", "bob"] {
        expect_code(&approve(&p, who), exit::SUCCESS);
    }
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);

    let published = p.join("published/acme/1.0.0");
    let allowed = p.join("keys/allowed_signers");
    let sums = std::fs::read(published.join("SHA256SUMS")).unwrap();
    assert!(ssh_keygen_verifies(
        &allowed,
        "release@acme.test",
        "file",
        &published.join("SHA256SUMS.sig"),
        &sums
    ));
    let record = p.record("1.0.0");
    let cp = std::fs::read(record.join("checkpoint")).unwrap();
    assert!(ssh_keygen_verifies(
        &allowed,
        "release@acme.test",
        "relgate-checkpoint",
        &record.join("checkpoint.sig"),
        &cp
    ));
    // The signature really is ECDSA of that size.
    let sig = std::fs::read_to_string(published.join("SHA256SUMS.sig")).unwrap();
    let parsed = ssh_key::SshSig::from_pem(&sig).unwrap();
    assert_eq!(
        parsed.algorithm().to_string(),
        format!("ecdsa-sha2-nistp{bits}")
    );
    for cmd in ["verify", "replay"] {
        let out = p.relgate(&[cmd, published.to_str().unwrap()]);
        expect_code(&out, exit::SUCCESS);
    }
    let out = p.relgate(&["replay", record.to_str().unwrap()]);
    expect_code(&out, exit::SUCCESS);
}

#[test]
fn an_ecdsa_p256_release_key_signs_what_ssh_keygen_and_relgate_verify() {
    ecdsa_release_key_publishes("256");
}

#[test]
fn an_ecdsa_p384_release_key_signs_what_ssh_keygen_and_relgate_verify() {
    ecdsa_release_key_publishes("384");
}

#[test]
fn an_rsa_release_key_file_is_unusable_and_says_to_use_the_agent() {
    let p = project("rsa", "3072", 0);
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(
        err.contains("sign: red: key-unusable") && err.contains("ssh-agent"),
        "{err}"
    );
    assert!(!p.join("published").exists());
}

#[test]
fn signers_lines_of_types_relgate_cannot_verify_are_refused_by_check() {
    let p = project("ed25519", "", 3);
    let p521 = p.keygen_typed("dave", "ecdsa", "521");
    let small = p.keygen_typed("erin", "rsa", "1024");
    let mut text = p.read("keys/allowed_signers");
    text.push_str(&format!("dave@acme.test {p521}\nerin@acme.test {small}\n"));
    p.write("keys/allowed_signers", text);
    let out = p.relgate(&["check"]);
    expect_code(&out, exit::CONFIG);
    let err = stderr(&out);
    assert!(
        err.contains("ecdsa-sha2-nistp521 is not supported"),
        "{err}"
    );
    assert!(err.contains("1024 bits is too small"), "{err}");
    // Both lines are named, each with its line number.
    assert!(err.contains("allowed_signers:5:"), "{err}");
    assert!(err.contains("allowed_signers:6:"), "{err}");
}

//! Security-key signatures (`sk-ssh-ed25519@openssh.com`, `sk-ecdsa-sha2-nistp256@openssh.com`)
//! from the committed fixtures in `fixtures/sk/` (made by `fixtures/sk/make.py`, which plays the
//! token, since none is at hand): stock `ssh-keygen -Y verify` accepts them, relgate verifies
//! them with their flags and counter, refuses one made without the user's touch, and counts a
//! sign-off made with such a key.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;
use relgate::exit;
use relgate::sshsig;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sk")
}

/// (key kind, principal) of the two fixture keys.
const KEYS: [(&str, &str); 2] = [("ed25519", "alice@acme.test"), ("ecdsa", "bob@acme.test")];

/// (case, namespace, flags, counter) as fixtures/sk/make.py writes them.
const CASES: [(&str, &str, u8, u32); 4] = [
    ("file", "file", 0x01, 7),
    ("approval", "relgate-approval", 0x05, 8),
    ("checkpoint", "relgate-checkpoint", 0x01, 9),
    ("no-touch", "file", 0x00, 10),
];

#[test]
fn ssh_keygen_accepts_every_fixture() {
    let dir = fixtures();
    let message = std::fs::read(dir.join("message")).unwrap();
    for (kind, principal) in KEYS {
        for (case, ns, _, _) in CASES {
            let sig = dir.join(format!("message.{kind}.{case}.sig"));
            assert!(
                ssh_keygen_verifies(&dir.join("allowed_signers"), principal, ns, &sig, &message),
                "ssh-keygen -Y verify refused {}",
                sig.display()
            );
        }
    }
}

#[test]
fn relgate_verifies_them_with_flags_and_counter_and_requires_the_users_touch() {
    let dir = fixtures();
    let message = std::fs::read(dir.join("message")).unwrap();
    let signers =
        relgate::signers::parse(&std::fs::read_to_string(dir.join("allowed_signers")).unwrap())
            .unwrap();
    for (kind, principal) in KEYS {
        let key = &signers
            .entries
            .iter()
            .find(|e| e.principals == [principal])
            .unwrap()
            .key;
        for (case, ns, flags, counter) in CASES {
            let armored =
                std::fs::read_to_string(dir.join(format!("message.{kind}.{case}.sig"))).unwrap();
            let got = sshsig::verify_detailed(key, ns, &message, &armored);
            if flags & sshsig::SK_USER_PRESENT == 0 {
                let e = got.unwrap_err().to_string();
                assert!(
                    e.contains("did not confirm that its user was present"),
                    "{e}"
                );
                assert!(e.contains(&format!("counter {counter}")), "{e}");
                continue;
            }
            let d = got.unwrap_or_else(|e| panic!("{kind} {case}: {e}"));
            let sk = d.sk.expect("security-key details");
            assert_eq!((sk.flags, sk.counter), (flags, counter), "{kind} {case}");
            assert!(signers.allows(principal, key, ns, 0));
            // Another namespace or another byte: refused.
            let other_ns = if ns == "file" {
                "relgate-approval"
            } else {
                "file"
            };
            assert!(sshsig::verify_detailed(key, other_ns, &message, &armored).is_err());
            let mut changed = message.clone();
            changed[0] ^= 1;
            assert!(sshsig::verify_detailed(key, ns, &changed, &armored).is_err());
        }
    }
    // The fixture keys are what ssh-keygen fingerprints them as.
    for (kind, principal) in KEYS {
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(dir.join(format!("{kind}.pub")))
            .output()
            .unwrap();
        let fp = String::from_utf8(out.stdout).unwrap();
        let entry = signers
            .entries
            .iter()
            .find(|e| e.principals == [principal])
            .unwrap();
        assert!(fp.contains(&entry.fingerprint), "{fp}");
    }
}

/// Sign `file` as the fixture token `kind` would, in namespace `ns`; writes `file.sig`.
fn token_sign(kind: &str, ns: &str, file: &Path) {
    use std::io::Write;
    let mut child = Command::new(sslib_python())
        .arg(fixtures().join("make.py"))
        .args(["sign", kind, ns, "0x05", "42"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(file).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let mut sig = file.as_os_str().to_owned();
    sig.push(".sig");
    std::fs::write(sig, out.stdout).unwrap();
}

#[test]
fn a_sign_off_made_with_a_security_key_counts() {
    let p = Project::new();
    let release = p.keygen("release");
    let dave = p.keygen("dave");
    let alice_sk = std::fs::read_to_string(fixtures().join("ed25519.pub")).unwrap();
    p.write(
        "keys/allowed_signers",
        format!(
            "release@acme.test {release}\ndave@acme.test {dave}\nalice@acme.test {}\n",
            alice_sk.trim()
        ),
    );
    p.write("dist/a.txt", b"a\n");
    let gates = "  ops:\n    kind: signoff\n    role: ops\n    segregation: [operator, signer]\n  qa:\n    kind: signoff\n    role: qa\n    segregation: [operator, signer]\n";
    let text = pipeline(gates).replace(
        "signers: keys/allowed_signers\n",
        "signers: keys/allowed_signers\nroles:\n  qa: [alice@acme.test]\n  ops: [dave@acme.test]\n",
    );
    p.write("pipeline.yaml", text);
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::PENDING);
    let out = p.relgate(&[
        "approve",
        "1.0.0",
        "--gate",
        "ops",
        "--key",
        "keys/dave",
        "--as",
        "dave@acme.test",
    ]);
    expect_code(&out, exit::SUCCESS);

    // Alice's statement: dave's, for her gate, her name and her key; her token signs it.
    let approvals = p.record("1.0.0").join("approvals");
    let dave_statement = std::fs::read_dir(&approvals)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let mut st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&dave_statement).unwrap()).unwrap();
    let signers = relgate::signers::parse(&p.read("keys/allowed_signers")).unwrap();
    let alice = signers
        .entries
        .iter()
        .find(|e| e.principals == ["alice@acme.test"])
        .unwrap();
    st["gate"] = "qa".into();
    st["signer"] = "alice@acme.test".into();
    st["key"] = alice.fingerprint.clone().into();
    let statement = approvals.join("qa.alice.token.json");
    std::fs::write(
        &statement,
        relgate::digest::canonical_json(&st).unwrap().as_bytes(),
    )
    .unwrap();
    token_sign("ed25519", "relgate-approval", &statement);
    let msg = std::fs::read(&statement).unwrap();
    assert!(ssh_keygen_verifies(
        &p.join("keys/allowed_signers"),
        "alice@acme.test",
        "relgate-approval",
        &approvals.join("qa.alice.token.json.sig"),
        &msg
    ));

    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
    let published = p.join("published/acme/1.0.0");
    expect_code(
        &p.relgate(&["replay", published.to_str().unwrap()]),
        exit::SUCCESS,
    );
}

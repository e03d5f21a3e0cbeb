//! The Verification Summary Attestation a published release carries, checked by independent
//! implementations: Python `securesystemslib` (`Envelope.verify` with an `SSlibKey` made from the
//! SSH public key, keyid = its fingerprint) and Python `cryptography` (PAE recomputed from the
//! DSSE spec, the signature checked against the published SPKI PEM). A changed subject digest, a
//! changed `payloadType` or another key is refused by both, and by `relgate verify` and `replay`.

use std::path::{Path, PathBuf};

use crate::common::*;
use relgate::exit;
use relgate::signkey::RawSigner;

const VSA: &str = "attestation.intoto.jsonl";
const PEM: &str = "release.pub.pem";

/// What tests/vsa_check.py says about an envelope.
#[derive(Debug, serde::Deserialize)]
struct Checked {
    sslib: bool,
    crypto: bool,
    pem_matches_ssh: bool,
    payload_type: Option<String>,
    statement: Option<serde_json::Value>,
    /// Why each refused, shown when an assertion fails.
    #[allow(dead_code, reason = "read through Debug in assertion messages")]
    errors: Vec<String>,
}

fn check(envelope: &Path, ssh_pub: &Path, pem: &Path, keyid: &str) -> Checked {
    serde_json::from_value(vsa_check(envelope, ssh_pub, pem, keyid)).expect("vsa_check.py output")
}

fn sha256_file(path: &Path) -> String {
    relgate::digest::sha256_hex(&std::fs::read(path).unwrap())
}

/// A project releasing two artefacts with a release key of `kind`/`bits` in a file.
fn project(kind: &str, bits: &str) -> Project {
    let p = Project::new();
    let release = p.keygen_typed("release", kind, bits);
    p.write(
        "keys/allowed_signers",
        format!("release@acme.test {release}\n"),
    );
    p.write("dist/a.txt", b"a\n");
    p.write("dist/sub/b.bin", b"bee\n");
    p.write("pipeline.yaml", pipeline("").replace("dist/*", "dist/**"));
    p
}

fn publish(p: &Project) -> PathBuf {
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
    p.join("published/acme/1.0.0")
}

/// Rewrite the envelope's statement with `f` (keeping the signature) into `to`.
fn tamper_statement(from: &Path, to: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    use base64ct::Encoding;
    let text = std::fs::read_to_string(from).unwrap();
    let mut env: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let payload = base64ct::Base64::decode_vec(env["payload"].as_str().unwrap()).unwrap();
    let mut st: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    f(&mut st);
    let bytes = relgate::digest::canonical_json(&st).unwrap();
    env["payload"] = base64ct::Base64::encode_string(bytes.as_bytes()).into();
    std::fs::write(to, format!("{env}\n")).unwrap();
}

/// The published VSA verifies with both Python implementations and says what it should.
fn vsa_verifies_independently(kind: &str, bits: &str) {
    let p = project(kind, bits);
    let published = publish(&p);
    let env = published.join(VSA);
    let pem = published.join(PEM);
    let ssh_pub = p.join("keys/release.pub");
    let fp = fingerprint(&ssh_pub);

    let c = check(&env, &ssh_pub, &pem, &fp);
    assert!(c.sslib && c.crypto, "{c:#?}");
    assert!(c.pem_matches_ssh, "the PEM is the release key");
    assert_eq!(
        c.payload_type.as_deref(),
        Some("application/vnd.in-toto+json")
    );
    let envelope: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&env)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(envelope["signatures"][0]["keyid"], fp.as_str());

    // The statement: every artefact with its sha256, as SHA256SUMS lists them.
    let st = c.statement.expect("statement");
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        st["predicateType"],
        "https://slsa.dev/verification_summary/v1"
    );
    let sums = std::fs::read_to_string(published.join("SHA256SUMS")).unwrap();
    let want: Vec<serde_json::Value> = sums
        .lines()
        .map(|l| {
            let (h, name) = l.split_once("  ").unwrap();
            serde_json::json!({"name": name, "digest": {"sha256": h}})
        })
        .collect();
    assert_eq!(st["subject"], serde_json::Value::Array(want));
    let pred = &st["predicate"];
    assert_eq!(pred["verifier"]["id"], "urn:relgate:verifier:v1");
    assert_eq!(pred["verificationResult"], "PASSED");
    assert_eq!(
        pred["verifiedLevels"],
        serde_json::json!(["RELGATE_ACCEPTED"])
    );
    let canonical = published.canonicalize().unwrap();
    assert_eq!(
        pred["resourceUri"],
        format!("file://{}/", canonical.display())
    );
    assert_eq!(pred["policy"]["uri"], "pipeline.yaml");
    assert_eq!(
        pred["policy"]["digest"]["sha256"],
        sha256_file(&p.join("pipeline.yaml"))
    );
    let inputs = pred["inputAttestations"].as_array().unwrap();
    assert_eq!(inputs[0]["uri"], "audit/log.jsonl");
    assert_eq!(
        inputs[0]["digest"]["sha256"],
        sha256_file(&published.join("audit/log.jsonl"))
    );
    assert_eq!(inputs[1]["uri"], "audit/checkpoint");
    assert_eq!(
        inputs[1]["digest"]["sha256"],
        sha256_file(&published.join("audit/checkpoint"))
    );
    // The time is the publish decision's, from the log: replay derives it again.
    let log = std::fs::read_to_string(published.join("audit/log.jsonl")).unwrap();
    let publish_line: serde_json::Value =
        serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(publish_line["type"], "publish");
    assert_eq!(pred["timeVerified"], publish_line["ts"]);

    // A changed subject digest: both refuse.
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("subject.jsonl");
    tamper_statement(&env, &bad, |st| {
        st["subject"][0]["digest"]["sha256"] = "0".repeat(64).into();
    });
    let c = check(&bad, &ssh_pub, &pem, &fp);
    assert!(!c.sslib && !c.crypto, "{c:#?}");

    // A changed payloadType: both refuse.
    let text = std::fs::read_to_string(&env).unwrap();
    let bad = t.path().join("type.jsonl");
    std::fs::write(
        &bad,
        text.replace("application/vnd.in-toto+json", "application/json"),
    )
    .unwrap();
    let c = check(&bad, &ssh_pub, &pem, &fp);
    assert!(!c.sslib && !c.crypto, "{c:#?}");

    // Another key (its own SSH line, PEM and fingerprint): both refuse.
    let other = Project::new();
    other.keygen_typed("other", kind, bits);
    let other_pub = other.join("keys/other.pub");
    let other_pem = t.path().join("other.pem");
    let key = ssh_key::PublicKey::read_openssh_file(&other_pub).unwrap();
    std::fs::write(&other_pem, relgate::intoto::spki::pem(&key).unwrap()).unwrap();
    let c = check(&env, &other_pub, &other_pem, &fingerprint(&other_pub));
    assert!(!c.sslib && !c.crypto, "{c:#?}");
    assert!(
        c.pem_matches_ssh,
        "relgate's PEM of the other key is that key"
    );
}

#[test]
fn an_ed25519_release_vsa_verifies_with_securesystemslib_and_cryptography() {
    vsa_verifies_independently("ed25519", "");
}

#[test]
fn an_ecdsa_p256_release_vsa_verifies_with_securesystemslib_and_cryptography() {
    vsa_verifies_independently("ecdsa", "256");
}

#[test]
fn an_ecdsa_p384_release_vsa_verifies_with_securesystemslib_and_cryptography() {
    vsa_verifies_independently("ecdsa", "384");
}

#[test]
fn relgate_verify_and_replay_check_the_vsa() {
    let p = project("ed25519", "");
    let published = publish(&p);
    let folder = published.to_str().unwrap();
    for cmd in ["verify", "replay"] {
        expect_code(&p.relgate(&[cmd, folder]), exit::SUCCESS);
    }
    let env = published.join(VSA);
    let good = std::fs::read(&env).unwrap();

    // A changed subject digest: the signature no longer holds.
    tamper_statement(&env.clone(), &env, |st| {
        st["subject"][0]["digest"]["sha256"] = "0".repeat(64).into();
    });
    for cmd in ["verify", "replay"] {
        let out = p.relgate(&[cmd, folder]);
        expect_code(&out, exit::REFUSED);
        assert!(stderr(&out).contains(VSA), "{cmd}: {}", stderr(&out));
    }

    // Signed again by another key (one that could sign, were it trusted): refused.
    std::fs::write(&env, &good).unwrap();
    let other = Project::new();
    other.keygen("other");
    let other_key = relgate::signkey::load(&other.join("keys/other")).unwrap();
    let mut envelope: serde_json::Value =
        serde_json::from_str(std::str::from_utf8(&good).unwrap().lines().next().unwrap()).unwrap();
    let resigned = relgate::intoto::dsse::sign(&other_key, "application/vnd.in-toto+json", &{
        use base64ct::Encoding;
        base64ct::Base64::decode_vec(envelope["payload"].as_str().unwrap()).unwrap()
    })
    .unwrap();
    envelope = serde_json::from_str(&resigned).unwrap();
    std::fs::write(&env, format!("{envelope}\n")).unwrap();
    for cmd in ["verify", "replay"] {
        let out = p.relgate(&[cmd, folder]);
        expect_code(&out, exit::REFUSED);
        assert!(stderr(&out).contains(VSA), "{cmd}: {}", stderr(&out));
    }

    // Signed by the release key itself, but saying another time: verify (which has no record)
    // accepts it, replay derives the statement from the record and refuses.
    let release_key = relgate::signkey::load(&p.join("keys/release")).unwrap();
    let st = {
        use base64ct::Encoding;
        let env: serde_json::Value =
            serde_json::from_str(std::str::from_utf8(&good).unwrap().lines().next().unwrap())
                .unwrap();
        let bytes = base64ct::Base64::decode_vec(env["payload"].as_str().unwrap()).unwrap();
        let mut st: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        st["predicate"]["timeVerified"] = "2030-01-01T00:00:00Z".into();
        relgate::digest::canonical_json(&st).unwrap()
    };
    let forged =
        relgate::intoto::dsse::sign(&release_key, "application/vnd.in-toto+json", st.as_bytes())
            .unwrap();
    std::fs::write(&env, format!("{forged}\n")).unwrap();
    expect_code(&p.relgate(&["verify", folder]), exit::SUCCESS);
    let out = p.relgate(&["replay", folder]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("not the one the record derives"),
        "{}",
        stderr(&out)
    );

    // Removed: a release without its attestation does not verify.
    std::fs::remove_file(&env).unwrap();
    for cmd in ["verify", "replay"] {
        let out = p.relgate(&[cmd, folder]);
        expect_code(&out, exit::REFUSED);
        assert!(stderr(&out).contains(VSA), "{cmd}: {}", stderr(&out));
    }

    // The PEM must be the release key.
    std::fs::write(&env, &good).unwrap();
    let other_pem = relgate::intoto::spki::pem(other_key.public_key()).unwrap();
    std::fs::write(published.join(PEM), other_pem).unwrap();
    for cmd in ["verify", "replay"] {
        let out = p.relgate(&[cmd, folder]);
        expect_code(&out, exit::REFUSED);
        assert!(stderr(&out).contains(PEM), "{cmd}: {}", stderr(&out));
    }
}

#[test]
fn a_dry_run_makes_a_vsa_with_its_throwaway_key_that_nothing_trusts() {
    let p = project("ed25519", "");
    let out = p.relgate(&["run", "1.0.0", "--dry-run"]);
    expect_code(&out, exit::SUCCESS);
    let runs = p.join(".relgate/dry-runs/1.0.0");
    let record = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let env = record.join(VSA);
    let pem = record.join(PEM);
    assert!(env.is_file() && pem.is_file(), "{}", record.display());
    // Its key is the throwaway key the log recorded, not the release key.
    let log = std::fs::read_to_string(record.join("log.jsonl")).unwrap();
    let started: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    let ck = &started["body"]["checkpoint_key"];
    assert_eq!(ck["throwaway"], true);
    let t = tempfile::tempdir().unwrap();
    let tw_pub = t.path().join("throwaway.pub");
    std::fs::write(&tw_pub, format!("{}\n", ck["public"].as_str().unwrap())).unwrap();
    let c = check(&env, &tw_pub, &pem, ck["fingerprint"].as_str().unwrap());
    assert!(c.sslib && c.crypto, "the shape is real: {c:#?}");
    let st = c.statement.unwrap();
    assert_eq!(
        st["predicate"]["verifiedLevels"],
        serde_json::json!(["RELGATE_DRY_RUN"])
    );
    // Under the release key it is nothing.
    let c = check(
        &env,
        &p.join("keys/release.pub"),
        &pem,
        &fingerprint(&p.join("keys/release.pub")),
    );
    assert!(!c.sslib, "{c:#?}");
    // And replay refuses the dry run's record, naming the throwaway key.
    let out = p.relgate(&["replay", record.to_str().unwrap()]);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("throwaway"), "{}", stderr(&out));
}

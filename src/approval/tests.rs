//! Unit tests of `crate::approval`, beside it to keep the module readable.

use super::*;

fn statement() -> Statement {
    Statement {
        kind: STATEMENT_TYPE.into(),
        project: "p".into(),
        version: "1.0.0".into(),
        gate: "qa".into(),
        subject: format!("sha256:{}", "a".repeat(64)),
        policy: format!("sha256:{}", "b".repeat(64)),
        signer: "alice@x.test".into(),
        decision: Decision::Approve,
        comment: String::new(),
        time: "2026-01-02T03:04:05Z".into(),
        key: "SHA256:abc".into(),
    }
}

#[test]
fn statements_round_trip_only_in_canonical_form() {
    let st = statement();
    let bytes = st.to_bytes();
    assert_eq!(parse_statement(&bytes).unwrap(), st);
    let mut trailing = bytes.clone();
    trailing.push(b'\n');
    assert_eq!(parse_statement(&trailing), Err(PairProblem::NotCanonical));
    let pretty = serde_json::to_vec_pretty(&st).unwrap();
    assert_eq!(parse_statement(&pretty), Err(PairProblem::NotCanonical));
    let text = String::from_utf8(bytes).unwrap();
    let dup = text.replacen("{", "{\"comment\":\"x\",", 1);
    assert_eq!(
        parse_statement(dup.as_bytes()),
        Err(PairProblem::NotCanonical)
    );
}

#[test]
fn other_types_and_bad_times_are_refused() {
    let mut st = statement();
    st.kind = "relgate-checkpoint/v1".into();
    assert!(matches!(
        parse_statement(&st.to_bytes()),
        Err(PairProblem::Malformed(_))
    ));
    let mut st = statement();
    st.time = "yesterday".into();
    assert!(matches!(
        parse_statement(&st.to_bytes()),
        Err(PairProblem::BadTime(_))
    ));
}

/// OpenSSH's ECDSA signatures (ssh-keygen's, an agent's) differ each time: the same
/// statement signed twice in one second is kept, not refused as a clash; another key's
/// signature is refused.
#[test]
fn the_same_statement_signed_again_by_the_same_ecdsa_key_is_kept() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let bytes = statement().to_bytes();
    let msg = dir.path().join("st");
    fs::write(&msg, &bytes).unwrap();
    let sign = || {
        let _ = fs::remove_file(dir.path().join("st.sig"));
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", NS_APPROVAL, "-f"])
            .arg(&key)
            .arg(&msg)
            .status()
            .unwrap();
        assert!(ok.success());
        fs::read(dir.path().join("st.sig")).unwrap()
    };
    let (one, two) = (sign(), sign());
    assert_ne!(one, two);
    let out = dir.path().join("approvals");
    write_pair(&out, "x.json", &bytes, &one).unwrap();
    write_pair(&out, "x.json", &bytes, &two).unwrap();
    assert_eq!(fs::read(out.join("x.json.sig")).unwrap(), one);
    let other = sshsig::throwaway_key().unwrap();
    let three = sshsig::sign(&other, NS_APPROVAL, &bytes).unwrap();
    assert!(write_pair(&out, "x.json", &bytes, three.as_bytes()).is_err());
}

#[test]
fn a_signature_from_the_wrong_namespace_does_not_verify() {
    let key = sshsig::throwaway_key().unwrap();
    let mut st = statement();
    st.key = sshsig::fingerprint(key.public_key());
    let bytes = st.to_bytes();
    let sig = sshsig::sign(&key, sshsig::NS_FILE, &bytes).unwrap();
    let got = verify_pair(&bytes, sig.as_bytes(), &AllowedSigners::default(), 0);
    assert!(matches!(got, Err(PairProblem::BadSignature(_))), "{got:?}");
}

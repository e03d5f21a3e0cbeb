//! The `sign` gate and the SSHSIG helpers against the real `ssh-keygen`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::library;
use crate::common::{codes, ssh_keygen_verifies};
use relgate::gates::sign::{self, SignEvidence};
use relgate::gates::{CollectContext, Outcome, Verdict};
use relgate::model::{GateKind, GateSpec, Pipeline, SignSpec};
use relgate::record::Record;
use relgate::{sshsig, stage};

const SIGNER: &str = "release@acme.test";
const STARTED_AT: i64 = 1_795_000_000; // 2026-11-18

/// An Ed25519 key made by `ssh-keygen`; returns the private key path and the public line.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success());
    let public = fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
    (path, public.trim().to_string())
}

#[test]
fn our_signature_verifies_with_ssh_keygen() {
    let t = tempfile::tempdir().unwrap();
    let (key_path, public) = keygen(t.path(), "release");
    let key = sshsig::load_private_key(&key_path).unwrap();
    let msg = b"0123  a.txt\n";
    let sig = sshsig::sign(&key, sshsig::NS_FILE, msg).unwrap();
    fs::write(t.path().join("msg.sig"), &sig).unwrap();
    let allowed = t.path().join("allowed_signers");
    fs::write(&allowed, format!("{SIGNER} {public}\n")).unwrap();
    assert!(ssh_keygen_verifies(
        &allowed,
        SIGNER,
        "file",
        &t.path().join("msg.sig"),
        msg
    ));
    // The check above can fail: other bytes or another principal do not verify.
    assert!(!ssh_keygen_verifies(
        &allowed,
        SIGNER,
        "file",
        &t.path().join("msg.sig"),
        b"0124  a.txt\n"
    ));
    assert!(!ssh_keygen_verifies(
        &allowed,
        "eve@acme.test",
        "file",
        &t.path().join("msg.sig"),
        msg
    ));
}

#[test]
fn ssh_keygen_signature_verifies_with_ours() {
    let t = tempfile::tempdir().unwrap();
    let (key_path, public) = keygen(t.path(), "release");
    let msg_path = t.path().join("SHA256SUMS");
    fs::write(&msg_path, b"abc  x\n").unwrap();
    let st = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "file", "-f"])
        .arg(&key_path)
        .arg(&msg_path)
        .status()
        .unwrap();
    assert!(st.success());
    let sig = fs::read_to_string(t.path().join("SHA256SUMS.sig")).unwrap();
    let pk = ssh_key::PublicKey::from_openssh(&public).unwrap();
    sshsig::verify_with_key(&pk, sshsig::NS_FILE, b"abc  x\n", &sig).unwrap();
    assert!(sshsig::verify_with_key(&pk, sshsig::NS_FILE, b"abd  x\n", &sig).is_err());
    assert!(sshsig::verify_with_key(&pk, sshsig::NS_APPROVAL, b"abc  x\n", &sig).is_err());
}

/// A pipeline folder with two artefacts, staged into a release record.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    cx: CollectContext,
    spec: SignSpec,
    gate: GateSpec,
    /// The allowed_signers text the judge sees.
    signers: String,
    _cancel: tokio::sync::watch::Sender<bool>,
}

impl Fixture {
    /// `key` is the pipeline's `key:` value; `allowed` maps principal -> key name made in the
    /// fixture folder (`release` and `other` exist).
    fn new(key: impl FnOnce(&Path) -> String, allowed_principal: &str, dry_run: bool) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("p");
        fs::create_dir_all(root.join("dist")).unwrap();
        fs::create_dir_all(root.join("keys")).unwrap();
        fs::write(root.join("dist/a.tar.gz"), b"artefact a").unwrap();
        fs::write(root.join("dist/b.zip"), b"artefact b").unwrap();
        let (_, release_pub) = keygen(&root.join("keys"), "release");
        let signers = format!("{allowed_principal} namespaces=\"file\" {release_pub}\n");
        fs::write(root.join("keys/allowed_signers"), &signers).unwrap();
        let spec = SignSpec {
            key: key(&root),
            signer: SIGNER.into(),
        };
        let gate = GateSpec {
            id: "sign".into(),
            needs: vec![],
            timeout_secs: 3600,
            when: None,
            kind: GateKind::Sign(spec.clone()),
        };
        let pipeline = Pipeline {
            signers: Some(root.join("keys/allowed_signers")),
            ..library::pipeline(&root, "acme", &["dist/*"], vec![gate.clone()])
        };
        let record = Record::new(root.join(".relgate/releases/1.0.0"));
        let files = stage::resolve(&root, &pipeline.artefacts).unwrap();
        let staged = stage::stage(&root, &files, &record.dir.join("staged/run"), 1).unwrap();
        let (mut cx, tx) = library::collect_context(pipeline, record, staged, "1.0.0");
        cx.dry_run = dry_run;
        cx.started_at = STARTED_AT;
        cx.subject_since = STARTED_AT;
        Fixture {
            _tmp: tmp,
            root,
            cx,
            spec,
            gate,
            signers,
            _cancel: tx,
        }
    }

    async fn collect(&self) -> SignEvidence {
        sign::collect(&self.gate, &self.spec, &self.cx)
            .await
            .unwrap()
    }

    fn judge(&self, ev: &SignEvidence) -> Verdict {
        let jcx = library::judge_context(&self.cx, Some(&self.signers));
        // Through the registry, as the engine and replay call it.
        let via_registry =
            relgate::gates::judge(&self.gate, &serde_json::to_value(ev).unwrap(), &jcx);
        let direct = sign::judge(&self.spec, ev, &jcx);
        assert_eq!(via_registry, direct);
        direct
    }

    fn sig_path(&self) -> PathBuf {
        self.cx.staged.dir.join("SHA256SUMS.sig")
    }
}

#[tokio::test]
async fn good_key_signs_and_ssh_keygen_agrees() {
    let f = Fixture::new(|_| "keys/release".into(), SIGNER, false);
    let ev = f.collect().await;
    assert!(!ev.throwaway);
    assert!(ev.sums_written);
    let v = f.judge(&ev);
    assert_eq!(v.outcome, Outcome::Green, "{v:?}");
    assert!(ssh_keygen_verifies(
        &f.root.join("keys/allowed_signers"),
        SIGNER,
        "file",
        &f.sig_path(),
        &f.cx.staged.sums
    ));
    let public = fs::read_to_string(f.root.join("keys/release.pub")).unwrap();
    assert!(public.starts_with(ev.public_key.as_deref().unwrap()));
    assert!(ev.key_fingerprint.unwrap().starts_with("SHA256:"));
}

#[tokio::test]
#[expect(
    unsafe_code,
    reason = "set_var: the variable name is unique to this test"
)]
async fn key_path_comes_from_an_environment_variable() {
    let f = Fixture::new(|_| "${RELGATE_TEST_SIGN_KEY_7F3A}".into(), SIGNER, false);
    let abs = f.root.join("keys/release");
    unsafe { std::env::set_var("RELGATE_TEST_SIGN_KEY_7F3A", &abs) };
    assert_eq!(sign::key_path(&f.spec, &f.root).unwrap(), abs);
    let ev = f.collect().await;
    assert_eq!(ev.key_path.as_deref(), Some(abs.to_str().unwrap()));
    assert_eq!(f.judge(&ev).outcome, Outcome::Green);
}

#[tokio::test]
async fn missing_key_in_a_real_run_is_red() {
    let f = Fixture::new(|_| "${RELGATE_TEST_UNSET_KEY_9C1D}".into(), SIGNER, false);
    let ev = f.collect().await;
    let v = f.judge(&ev);
    assert_eq!(codes(&v), ["key-unavailable"]);
    assert!(v.reasons[0].message.contains("RELGATE_TEST_UNSET_KEY_9C1D"));
    assert!(!f.sig_path().exists(), "nothing was signed");

    let f = Fixture::new(|_| "keys/absent".into(), SIGNER, false);
    let v = f.judge(&f.collect().await);
    assert_eq!(codes(&v), ["key-unavailable"]);
    assert!(v.reasons[0].message.contains("keys/absent"), "{v:?}");
}

#[tokio::test]
async fn unusable_key_is_red_even_in_a_dry_run() {
    let f = Fixture::new(
        |root| {
            fs::write(root.join("keys/garbage"), "not a key\n").unwrap();
            "keys/garbage".into()
        },
        SIGNER,
        true,
    );
    let ev = f.collect().await;
    assert!(!ev.throwaway);
    assert_eq!(codes(&f.judge(&ev)), ["key-unusable"]);
}

#[tokio::test]
async fn missing_key_in_a_dry_run_signs_with_a_throwaway_key() {
    let f = Fixture::new(|_| "keys/absent".into(), SIGNER, true);
    let ev = f.collect().await;
    assert!(ev.throwaway);
    assert!(ev.note.as_deref().unwrap().contains("throwaway"));
    assert_eq!(f.judge(&ev).outcome, Outcome::Green);
    // The same evidence judged as a real run is refused.
    let mut real = Fixture::new(|_| "keys/absent".into(), SIGNER, false);
    real.cx.record = f.cx.record.clone();
    real.cx.staged = f.cx.staged.clone();
    assert_eq!(codes(&real.judge(&ev)), ["throwaway-key"]);
    // The throwaway signature is a real one, but not by anyone in allowed_signers.
    assert!(f.sig_path().exists());
    assert!(!ssh_keygen_verifies(
        &f.root.join("keys/allowed_signers"),
        SIGNER,
        "file",
        &f.sig_path(),
        &f.cx.staged.sums
    ));
}

#[tokio::test]
async fn signer_not_in_allowed_signers_is_red() {
    let f = Fixture::new(|_| "keys/release".into(), "someone-else@acme.test", false);
    let v = f.judge(&f.collect().await);
    assert_eq!(codes(&v), ["signer-not-allowed"]);
    assert!(
        v.reasons[0].message.contains("someone-else@acme.test"),
        "{v:?}"
    );

    // A key nobody listed.
    let f = Fixture::new(
        |root| {
            keygen(&root.join("keys"), "stranger");
            "keys/stranger".into()
        },
        SIGNER,
        false,
    );
    assert_eq!(codes(&f.judge(&f.collect().await)), ["signer-not-allowed"]);
}

#[tokio::test]
async fn signers_window_is_judged_at_the_run_start() {
    let mut f = Fixture::new(|_| "keys/release".into(), SIGNER, false);
    let ev = f.collect().await;
    let public = fs::read_to_string(f.root.join("keys/release.pub")).unwrap();
    f.signers = format!("{SIGNER} valid-before=\"20260101Z\" {public}");
    assert_eq!(codes(&f.judge(&ev)), ["signer-not-allowed"]);
    f.signers = format!("{SIGNER} namespaces=\"git\" {public}");
    assert_eq!(codes(&f.judge(&ev)), ["signer-not-allowed"]);
    f.signers = format!("{SIGNER} valid-after=\"20260101Z\" {public}");
    assert_eq!(f.judge(&ev).outcome, Outcome::Green);
}

#[tokio::test]
async fn tampered_recorded_signature_is_red() {
    let f = Fixture::new(|_| "keys/release".into(), SIGNER, false);
    let ev = f.collect().await;
    assert_eq!(f.judge(&ev).outcome, Outcome::Green);

    // A valid signature by the same key, but over other bytes, put in its place.
    let key = sshsig::load_private_key(&f.root.join("keys/release")).unwrap();
    let other = sshsig::sign(&key, sshsig::NS_FILE, b"other sums\n").unwrap();
    let mut swapped = ev.clone();
    swapped.signature = Some(f.cx.record.put(other.as_bytes()).unwrap());
    assert_eq!(codes(&f.judge(&swapped)), ["signature-invalid"]);

    // Same bytes, other namespace.
    let wrong_ns = sshsig::sign(&key, sshsig::NS_APPROVAL, &f.cx.staged.sums).unwrap();
    let mut ns = ev.clone();
    ns.signature = Some(f.cx.record.put(wrong_ns.as_bytes()).unwrap());
    assert_eq!(codes(&f.judge(&ns)), ["signature-invalid"]);

    // The evidence file itself edited on disk.
    let path =
        f.cx.record
            .evidence_dir()
            .join(ev.signature.as_ref().unwrap());
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    assert_eq!(codes(&f.judge(&ev)), ["evidence-unreadable"]);
}

#[tokio::test]
async fn sums_for_another_subject_are_red() {
    let f = Fixture::new(|_| "keys/release".into(), SIGNER, false);
    let mut ev = f.collect().await;
    ev.sums = Some(f.cx.record.put(b"deadbeef  other\n").unwrap());
    // The signature does not cover these bytes either, but the subject check comes first
    // and names the real problem.
    assert_eq!(codes(&f.judge(&ev)), ["subject-mismatch"]);
}

#[tokio::test]
async fn sums_file_changed_after_staging_is_red() {
    let f = Fixture::new(|_| "keys/release".into(), SIGNER, false);
    fs::write(f.cx.staged.dir.join("SHA256SUMS"), b"edited\n").unwrap();
    let ev = f.collect().await;
    assert!(!ev.sums_written);
    assert_eq!(codes(&f.judge(&ev)), ["sums-not-written"]);
}

//! The signoff gate and `approval::approve`, with real `ssh-keygen` keys and real git repos.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::common::codes;
use crate::common::library;
use relgate::approval::{self, ApproveError, ApproveRequest};
use relgate::gates::{self, CollectContext, Outcome, Verdict};
use relgate::model::{Changes, GateKind, GateSpec, Pipeline, SignSpec, SignoffSpec};
use relgate::record::Record;
use relgate::stage;

const VERSION: &str = "1.0.0";
/// The policy digest every statement of these tests is given under.
const POLICY: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
/// When the subject was first staged: a day before the run.
const SUBJECT_SINCE: i64 = NOW - 86_400;
const NOW: i64 = 1_790_000_000;

struct Key {
    private: PathBuf,
    public: String,
}

fn keygen(dir: &Path, name: &str) -> Key {
    let private = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&private)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read_to_string(private.with_extension("pub")).unwrap();
    let public = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    Key { private, public }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    keys: BTreeMap<&'static str, Key>,
    signers_text: String,
    pipeline: Pipeline,
    record: Record,
    staged: Arc<stage::Staged>,
    operator: Option<String>,
}

const PEOPLE: [&str; 5] = ["alice", "bob", "carol", "eve", "release"];

impl Fixture {
    /// quorum 2 over role qa = alice, bob, carol, eve; the sign gate's signer is release@x.test.
    fn new(quorum: u32, expires_secs: Option<u64>) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::create_dir_all(root.join("keys")).unwrap();
        std::fs::create_dir_all(root.join("dist")).unwrap();
        std::fs::write(root.join("dist/app.txt"), b"the release\n").unwrap();
        let mut keys = BTreeMap::new();
        for p in PEOPLE {
            keys.insert(p, keygen(&root.join("keys"), p));
        }
        let signers_text: String = PEOPLE
            .iter()
            .map(|p| format!("{p}@x.test {}\n", keys[p].public))
            .collect();
        let signers_path = root.join("keys/allowed_signers");
        std::fs::write(&signers_path, &signers_text).unwrap();
        let _state = root.join(".relgate");
        let gates = vec![
            GateSpec {
                id: "manual".into(),
                needs: vec![],
                timeout_secs: 3600,
                when: None,
                kind: GateKind::Signoff(SignoffSpec {
                    role: "qa".into(),
                    quorum,
                    expires_secs,
                    bar_authors: true,
                    bar_operator: true,
                    bar_signer: true,
                }),
            },
            GateSpec {
                id: "sign".into(),
                needs: vec![],
                timeout_secs: 3600,
                when: None,
                kind: GateKind::Sign(SignSpec {
                    key: "keys/release".into(),
                    signer: "release@x.test".into(),
                }),
            },
        ];
        let pipeline = Pipeline {
            signers: Some(signers_path),
            roles: BTreeMap::from([(
                "qa".to_string(),
                ["alice", "bob", "carol", "eve"]
                    .iter()
                    .map(|p| format!("{p}@x.test"))
                    .collect(),
            )]),
            ..library::pipeline(&root, "acme", &["dist/*.txt"], gates)
        };
        let record = Record::new(approval::record_dir(&pipeline, VERSION));
        let files = stage::resolve(&root, &pipeline.artefacts).unwrap();
        let staged = stage::stage(&root, &files, &record.dir.join("staging"), 1).unwrap();
        Fixture {
            _tmp: tmp,
            root,
            keys,
            signers_text,
            pipeline,
            record,
            staged: Arc::new(staged),
            operator: None,
        }
    }

    fn subject(&self) -> String {
        self.staged.subject.clone()
    }

    fn request<'a>(
        &'a self,
        who: &'static str,
        key: &'a Path,
        subject: &'a str,
    ) -> ApproveRequest<'a> {
        ApproveRequest {
            pipeline: &self.pipeline,
            version: VERSION,
            gate: "manual",
            key,
            principal: Box::leak(format!("{who}@x.test").into_boxed_str()),
            comment: None,
            reject: false,
            subject,
            policy: POLICY,
            out_dir: Box::leak(self.record.approvals_dir().into_boxed_path()),
            now: NOW - 60,
        }
    }

    /// `who` approves the staged subject with their own key.
    fn approve(&self, who: &'static str) -> PathBuf {
        let subject = self.subject();
        approval::approve(&self.request(who, &self.keys[who].private, &subject)).unwrap()
    }

    fn gate(&self) -> &GateSpec {
        self.pipeline.gate("manual").unwrap()
    }

    /// The context of the run being judged: at `NOW`, under `POLICY`, by the operator set.
    fn context(&self) -> (CollectContext, tokio::sync::watch::Sender<bool>) {
        let (mut cx, tx) = library::collect_context(
            self.pipeline.clone(),
            self.record.clone(),
            self.staged.clone(),
            VERSION,
        );
        cx.operator = self.operator.clone();
        cx.started_at = NOW;
        cx.policy = POLICY.into();
        cx.subject_since = SUBJECT_SINCE;
        (cx, tx)
    }

    fn collect(&self) -> serde_json::Value {
        let (cx, _tx) = self.context();
        library::collect(self.gate(), &cx)
    }

    fn judge(&self, evidence: &serde_json::Value) -> Verdict {
        let (cx, _tx) = self.context();
        let jcx = library::judge_context(&cx, Some(&self.signers_text));
        gates::judge(self.gate(), evidence, &jcx)
    }

    fn run(&self) -> Verdict {
        self.judge(&self.collect())
    }
}

fn ssh_verify(signers: &Path, principal: &str, file: &Path) -> bool {
    let mut sig = file.as_os_str().to_owned();
    sig.push(".sig");
    Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(signers)
        .args(["-I", principal, "-n", "relgate-approval", "-s"])
        .arg(sig)
        .stdin(std::fs::File::open(file).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn quorum_two_is_pending_with_one_approval_and_green_with_two() {
    let f = Fixture::new(2, None);
    let a = f.approve("alice");
    let v = f.run();
    assert_eq!(v.outcome, Outcome::Pending, "{v:?}");
    let msg = &v.reasons[0].message;
    assert_eq!(v.reasons[0].code, "quorum-not-met");
    assert!(
        msg.starts_with("1 of 2 approvals; may still sign: bob@x.test, carol@x.test, eve@x.test; subject sha256:"),
        "{msg}"
    );
    assert!(msg.ends_with(&f.subject()), "{msg}");
    let b = f.approve("bob");
    let v = f.run();
    assert_eq!(v.outcome, Outcome::Green, "{v:?}");
    // Every pair `approve` writes checks with OpenSSH itself.
    let signers = f.pipeline.signers.clone().unwrap();
    assert!(ssh_verify(&signers, "alice@x.test", &a));
    assert!(ssh_verify(&signers, "bob@x.test", &b));
    assert!(
        !ssh_verify(&signers, "bob@x.test", &a),
        "alice's pair is not bob's"
    );
}

#[test]
fn the_same_person_twice_counts_once() {
    let f = Fixture::new(2, None);
    f.approve("alice");
    let subject = f.subject();
    let mut req = f.request("alice", &f.keys["alice"].private, &subject);
    req.now = NOW - 30;
    req.comment = Some("looked again");
    approval::approve(&req).unwrap();
    let v = f.run();
    assert_eq!(v.outcome, Outcome::Pending, "{v:?}");
    assert!(v.reasons[0].message.starts_with("1 of 2"), "{v:?}");
}

#[test]
fn two_principals_sharing_one_key_count_once() {
    let mut f = Fixture::new(2, None);
    // eve's line carries bob's key: one key, two principals.
    f.signers_text = f
        .signers_text
        .replace(&f.keys["eve"].public, &f.keys["bob"].public);
    std::fs::write(f.pipeline.signers.as_ref().unwrap(), &f.signers_text).unwrap();
    f.approve("bob");
    let subject = f.subject();
    approval::approve(&f.request("eve", &f.keys["bob"].private, &subject)).unwrap();
    let v = f.run();
    assert_eq!(v.outcome, Outcome::Pending, "{v:?}");
    assert!(codes(&v).contains(&"approval-key-shared"), "{v:?}");
    f.approve("carol");
    assert_eq!(f.run().outcome, Outcome::Green);
}

fn git(dir: &Path, args: &[&str], author: &str) {
    let st = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", author)
        .env("GIT_AUTHOR_EMAIL", format!("{author}@x.test"))
        .env("GIT_COMMITTER_NAME", "ci")
        .env("GIT_COMMITTER_EMAIL", "ci@x.test")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

#[test]
fn an_author_or_the_operator_or_the_release_signer_does_not_count() {
    let mut f = Fixture::new(2, None);
    let repo = f.root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"], "ci");
    git(
        &repo,
        &["commit", "-q", "--allow-empty", "-m", "base"],
        "ci",
    );
    git(&repo, &["tag", "v0.9.0"], "ci");
    git(
        &repo,
        &["commit", "-q", "--allow-empty", "-m", "feature"],
        "alice",
    );
    f.pipeline.changes = Some(Changes {
        repo,
        range: "v0.9.0..HEAD".into(),
    });
    f.pipeline
        .roles
        .get_mut("qa")
        .unwrap()
        .push("release@x.test".into());
    f.operator = Some("bob@x.test".into());
    f.approve("alice");
    f.approve("bob");
    f.approve("release");
    let v = f.run();
    assert_eq!(v.outcome, Outcome::Pending, "{v:?}");
    let c = codes(&v);
    for code in [
        "approval-by-author",
        "approval-by-operator",
        "approval-by-release-signer",
    ] {
        assert!(c.contains(&code), "{code} missing in {v:?}");
    }
    assert!(
        v.reasons[0]
            .message
            .starts_with("0 of 2 approvals; may still sign: carol@x.test, eve@x.test;"),
        "{v:?}"
    );
    f.approve("carol");
    f.approve("eve");
    assert_eq!(f.run().outcome, Outcome::Green);
}

#[test]
fn a_co_author_or_an_author_under_a_plus_address_does_not_count() {
    let mut f = Fixture::new(2, None);
    let repo = f.root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"], "ci");
    git(
        &repo,
        &["commit", "-q", "--allow-empty", "-m", "base"],
        "ci",
    );
    git(&repo, &["tag", "v0.9.0"], "ci");
    git(
        &repo,
        &[
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "pair work\n\nCo-authored-by: Bob <Bob+pair@x.test>",
        ],
        "dave",
    );
    git(
        &repo,
        &["commit", "-q", "--allow-empty", "-m", "from the ci account"],
        "carol+ci",
    );
    f.pipeline.changes = Some(Changes {
        repo,
        range: "v0.9.0..HEAD".into(),
    });
    for who in ["alice", "bob", "carol"] {
        f.approve(who);
    }
    let v = f.run();
    assert_eq!(v.outcome, Outcome::Pending, "{v:?}");
    let barred: Vec<&str> = v
        .reasons
        .iter()
        .filter(|r| r.code == "approval-by-author")
        .map(|r| r.message.as_str())
        .collect();
    assert_eq!(barred.len(), 2, "{v:?}");
    assert!(barred.iter().any(|m| m.contains("bob@x.test")), "{v:?}");
    assert!(barred.iter().any(|m| m.contains("carol@x.test")), "{v:?}");
    f.approve("eve");
    assert_eq!(f.run().outcome, Outcome::Green);
}

#[test]
fn a_rejection_is_red_and_needs_a_comment() {
    let f = Fixture::new(1, None);
    f.approve("alice");
    let subject = f.subject();
    let mut req = f.request("carol", &f.keys["carol"].private, &subject);
    req.reject = true;
    assert!(matches!(
        approval::approve(&req),
        Err(ApproveError::RejectNeedsComment)
    ));
    req.comment = Some("the installer crashes on start");
    approval::approve(&req).unwrap();
    let v = f.run();
    assert_eq!(v.outcome, Outcome::Red, "{v:?}");
    assert_eq!(v.reasons[0].code, "signoff-rejected");
    assert!(
        v.reasons[0]
            .message
            .contains("carol@x.test: the installer crashes")
    );
}

#[test]
fn an_approval_for_an_older_subject_or_expired_does_not_count() {
    let f = Fixture::new(1, Some(3600));
    let old = format!("sha256:{}", "0".repeat(64));
    approval::approve(&f.request("alice", &f.keys["alice"].private, &old)).unwrap();
    let subject = f.subject();
    let mut req = f.request("bob", &f.keys["bob"].private, &subject);
    req.now = NOW - 7200;
    approval::approve(&req).unwrap();
    let v = f.run();
    assert_eq!(v.outcome, Outcome::Pending, "{v:?}");
    let c = codes(&v);
    assert!(c.contains(&"approval-other-subject"), "{v:?}");
    assert!(c.contains(&"approval-expired"), "{v:?}");
}

#[test]
fn a_tampered_statement_or_signature_is_ignored_and_reported() {
    let f = Fixture::new(1, None);
    let a = f.approve("alice");
    let text = std::fs::read_to_string(&a).unwrap();
    std::fs::write(&a, text.replace("\"comment\":\"\"", "\"comment\":\"x\"")).unwrap();
    let b = f.approve("bob");
    let mut sig = std::fs::read(format!("{}.sig", b.display())).unwrap();
    let i = sig.len() / 2;
    sig[i] = if sig[i] == b'A' { b'B' } else { b'A' };
    std::fs::write(format!("{}.sig", b.display()), sig).unwrap();
    let v = f.run();
    assert_eq!(v.outcome, Outcome::Pending, "{v:?}");
    let bad: Vec<_> = v
        .reasons
        .iter()
        .filter(|r| r.code == "approval-bad-signature")
        .collect();
    assert_eq!(bad.len(), 2, "{v:?}");
    assert!(bad.iter().any(|r| r.message.contains("alice@x.test")));
}

#[test]
fn a_pair_made_by_hand_with_ssh_keygen_counts_and_a_non_canonical_one_does_not() {
    let f = Fixture::new(1, None);
    let dir = f.record.approvals_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let fp = |who: &str| {
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(f.keys[who].private.with_extension("pub"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let statement = |who: &str| {
        format!(
            r#"{{"comment":"by hand","decision":"approve","gate":"manual","key":"{}","policy":"{POLICY}","project":"acme","signer":"{who}@x.test","subject":"{}","time":"2026-09-21T12:00:00Z","type":"relgate-approval/v1","version":"1.0.0"}}"#,
            fp(who),
            f.subject()
        )
    };
    let sign = |who: &str, name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).unwrap();
        let st = Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "relgate-approval", "-f"])
            .arg(&f.keys[who].private)
            .arg(dir.join(name))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    };
    let mut with_newline = statement("carol").into_bytes();
    with_newline.push(b'\n');
    sign("carol", "carol-by-hand", &with_newline);
    let v = f.run();
    assert_eq!(v.outcome, Outcome::Pending, "{v:?}");
    assert!(codes(&v).contains(&"approval-not-canonical"), "{v:?}");
    sign("eve", "eve-by-hand", statement("eve").as_bytes());
    let v = f.run();
    assert_eq!(v.outcome, Outcome::Green, "{v:?}");
}

#[test]
fn editing_a_recorded_approval_is_caught_by_its_digest() {
    let f = Fixture::new(1, None);
    f.approve("alice");
    let ev = f.collect();
    assert_eq!(f.judge(&ev).outcome, Outcome::Green);
    let digest = ev["approvals"][0]["statement"]
        .as_str()
        .unwrap()
        .to_string();
    let path = f.record.evidence_dir().join(&digest);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("approve\"", "reject\"")).unwrap();
    let v = f.judge(&ev);
    assert_eq!(v.outcome, Outcome::Red, "{v:?}");
    assert_eq!(v.reasons[0].code, "evidence-missing");
}

#[test]
fn approve_refuses_what_could_never_count() {
    let f = Fixture::new(1, None);
    let subject = f.subject();
    // A key that allowed_signers does not list for the principal.
    let err = approval::approve(&f.request("alice", &f.keys["bob"].private, &subject)).unwrap_err();
    assert!(matches!(err, ApproveError::KeyNotAllowed { .. }), "{err}");
    let mut req = f.request("alice", &f.keys["alice"].private, &subject);
    req.principal = "mallory@x.test";
    let err = approval::approve(&req).unwrap_err();
    assert!(
        matches!(err, ApproveError::UnknownPrincipal { .. }),
        "{err}"
    );
    let err =
        approval::approve(&f.request("release", &f.keys["release"].private, &subject)).unwrap_err();
    assert!(matches!(err, ApproveError::NotInRole { .. }), "{err}");
    let mut req = f.request("alice", &f.keys["alice"].private, &subject);
    req.gate = "sign";
    let err = approval::approve(&req).unwrap_err();
    assert!(matches!(err, ApproveError::NotSignoff { .. }), "{err}");
    let err =
        approval::approve(&f.request("alice", &f.keys["alice"].private, "sha256:xyz")).unwrap_err();
    assert!(matches!(err, ApproveError::BadSubject(_)), "{err}");
    assert!(!f.record.approvals_dir().exists(), "nothing was written");
}

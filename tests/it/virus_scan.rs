//! The `virus-scan` gate against the real clamd (Debian's clamav-daemon) on the fixture
//! signatures, and against small fake servers on 127.0.0.1 for faults a real clamd cannot show.
//!
//! EICAR is assembled at run time from two halves, so no file in the repository holds it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::library;
use relgate::clamd::{self, DaemonOptions, PrivateClamd, Timeouts};
use relgate::gates::virus_scan::{self, ScanMethod, ScanOptions, VirusScanEvidence};
use relgate::gates::{CollectContext, CollectError, JudgeContext, Outcome, Verdict};
use relgate::model::{ClamdAddr, GateKind, GateSpec, VirusScanSpec};
use relgate::record::Record;
use relgate::stage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common;
use crate::common::{codes, messages};

const STARTED_AT: i64 = 1_795_000_000; // 2026-11-18
const MIB: u64 = 1024 * 1024;

fn eicar() -> Vec<u8> {
    let mut v = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$".to_vec();
    v.extend_from_slice(b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");
    v
}

fn fixture_db(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/clamav")
        .join(name)
}

/// A release folder with artefacts under `dist/`, staged into a record, ready to scan.
struct Release {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    cx: Option<CollectContext>,
    _cancel: Option<tokio::sync::watch::Sender<bool>>,
}

impl Release {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("p");
        fs::create_dir_all(root.join("dist")).unwrap();
        Release {
            _tmp: tmp,
            root,
            cx: None,
            _cancel: None,
        }
    }

    fn file(self, name: &str, bytes: &[u8]) -> Self {
        let p = self.root.join("dist").join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
        self
    }

    fn spec(clamd: ClamdAddr) -> VirusScanSpec {
        VirusScanSpec {
            clamd,
            max_signature_age_secs: None,
            max_size: 100 * MIB,
            concurrency: 4,
        }
    }

    /// Stage `dist/**` and build the collect context.
    fn stage(&mut self, spec: &VirusScanSpec) -> &CollectContext {
        let gate = GateSpec {
            id: "virus-scan".into(),
            needs: vec![],
            timeout_secs: 600,
            when: None,
            kind: GateKind::VirusScan(spec.clone()),
        };
        let pipeline = library::pipeline(&self.root, "acme", &["dist/**"], vec![gate]);
        let record = Record::new(self.root.join(".relgate/releases/1.0.0"));
        let files = stage::resolve(&self.root, &pipeline.artefacts).unwrap();
        let staged = stage::stage(&self.root, &files, &record.dir.join("staged/run"), 2).unwrap();
        let (mut cx, tx) = library::collect_context(pipeline, record, staged, "1.0.0");
        cx.started_at = STARTED_AT;
        self._cancel = Some(tx);
        self.cx = Some(cx);
        self.cx.as_ref().unwrap()
    }

    async fn collect(&mut self, spec: &VirusScanSpec, opts: &ScanOptions) -> VirusScanEvidence {
        self.stage(spec);
        virus_scan::collect_with(spec, self.cx.as_ref().unwrap(), opts)
            .await
            .unwrap()
    }

    /// Judge through the registry (as the engine and replay do) and directly; both must agree.
    fn judge_at(&self, spec: &VirusScanSpec, ev: &VirusScanEvidence, now: i64) -> Verdict {
        let cx = self.cx.as_ref().unwrap();
        let jcx = JudgeContext {
            started_at: now,
            ..library::judge_context(cx, None)
        };
        let gate = GateSpec {
            id: "virus-scan".into(),
            needs: vec![],
            timeout_secs: 600,
            when: None,
            kind: GateKind::VirusScan(spec.clone()),
        };
        let via_registry = relgate::gates::judge(&gate, &serde_json::to_value(ev).unwrap(), &jcx);
        let direct = virus_scan::judge(spec, ev, &jcx);
        assert_eq!(via_registry, direct);
        direct
    }

    fn judge(&self, spec: &VirusScanSpec, ev: &VirusScanEvidence) -> Verdict {
        self.judge_at(spec, ev, STARTED_AT)
    }
}

fn quick() -> ScanOptions {
    ScanOptions {
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            io: Duration::from_secs(2),
            overall: Duration::from_secs(20),
        },
        retries: 2,
        daemon: DaemonOptions::default(),
    }
}

/// A private clamd on a loopback TCP port, as an operator's networked clamd would be.
fn tcp() -> DaemonOptions {
    DaemonOptions {
        unix_socket: false,
        ..DaemonOptions::default()
    }
}

/// Is the process still running (a zombie waiting to be reaped counts as gone)?
fn running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit_once(')').map(|(_, r)| r.trim_start());
            !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X') | None)
        }
    }
}

async fn gone_within(pid: u32, limit: Duration) -> bool {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if !running(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    !running(pid)
}

fn port_refuses(addr: &str) -> bool {
    std::net::TcpStream::connect(addr).is_err()
}

// ---------------------------------------------------------------------------------------------
// Real clamd
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_set_is_green_and_the_private_clamd_is_gone_afterwards() {
    let spec = Release::spec(ClamdAddr::Private {
        database: fixture_db("db"),
    });
    let mut r = Release::new()
        .file("a.txt", b"hello")
        .file("b/c.bin", &[0u8; 300_000])
        .file("empty", b"");
    let ev = r.collect(&spec, &quick()).await;
    let v = r.judge(&spec, &ev);
    assert_eq!(v.outcome, Outcome::Green, "{}", messages(&v));
    assert_eq!(ev.files.len(), 3);
    // The private clamd listens on a Unix socket, so every file went by descriptor (FILDES)
    // and clamd answered for a descriptor, not a stream.
    for f in &ev.files {
        assert_eq!(f.method, ScanMethod::Fildes, "{f:?}");
        let reply = f.reply.as_deref().unwrap();
        assert!(
            reply.starts_with("fd[") && reply.ends_with("]: OK\0"),
            "{f:?}"
        );
        assert!(f.complete);
    }
    assert_eq!(ev.engine.as_deref().map(|e| !e.is_empty()), Some(true));
    // The evidence's digests are those of the bytes read through the descriptor clamd
    // scanned, equal to the staged ones.
    let staged = &r.cx.as_ref().unwrap().staged;
    for (f, a) in ev.files.iter().zip(&staged.artefacts) {
        assert_eq!(f.release_path, a.release_path);
        assert_eq!(f.sha256.as_deref(), Some(a.sha256.as_str()));
        assert_eq!(f.sent, a.size);
    }
    // The private clamd listened on a socket in its temporary folder; both are gone.
    let sock = ev.clamd.rsplit_once(" unix:").unwrap().1.to_string();
    assert!(sock.ends_with("/clamd.sock"), "{}", ev.clamd);
    assert!(!Path::new(&sock).exists(), "{sock} is still there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eicar_file_is_red_naming_the_file_and_the_signature() {
    let spec = Release::spec(ClamdAddr::Private {
        database: fixture_db("db"),
    });
    let mut r = Release::new()
        .file("a.txt", &eicar())
        .file("b.txt", b"fine");
    let ev = r.collect(&spec, &quick()).await;
    let v = r.judge(&spec, &ev);
    assert_eq!(v.outcome, Outcome::Red);
    assert_eq!(codes(&v), ["virus-found"], "{}", messages(&v));
    let msg = &v.reasons[0].message;
    assert!(msg.starts_with("a.txt: Relgate.Test.EICAR"), "{msg}");
    assert!(msg.ends_with(".UNOFFICIAL FOUND"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eicar_inside_a_tar_gz_is_red() {
    let work = tempfile::tempdir().unwrap();
    fs::write(work.path().join("readme.txt"), b"docs").unwrap();
    fs::write(work.path().join("payload.com"), eicar()).unwrap();
    let tgz = work.path().join("x.tar.gz");
    let st = std::process::Command::new("tar")
        .arg("czf")
        .arg(&tgz)
        .arg("-C")
        .arg(work.path())
        .args(["readme.txt", "payload.com"])
        .status()
        .unwrap();
    assert!(st.success());
    let spec = Release::spec(ClamdAddr::Private {
        database: fixture_db("db"),
    });
    let mut r = Release::new().file("acme-1.0.0.tar.gz", &fs::read(&tgz).unwrap());
    let ev = r.collect(&spec, &quick()).await;
    let v = r.judge(&spec, &ev);
    assert_eq!(codes(&v), ["virus-found"], "{}", messages(&v));
    assert!(
        v.reasons[0]
            .message
            .starts_with("acme-1.0.0.tar.gz: Relgate.Test.EICAR"),
        "{}",
        messages(&v)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_infected_among_twenty_clean_is_the_only_one_named() {
    // A shared clamd, addressed over TCP as an operator's would be: streamed with INSTREAM.
    let d = PrivateClamd::start(&fixture_db("db"), &tcp(), None)
        .await
        .unwrap();
    let spec = Release::spec(ClamdAddr::Tcp(
        d.address().to_string().trim_start_matches("tcp://").into(),
    ));
    let mut r = Release::new();
    for i in 0..20 {
        r = r.file(
            &format!("clean-{i:02}.bin"),
            format!("clean file {i}").as_bytes(),
        );
    }
    let mut infected = b"prefix ".to_vec();
    infected.extend(eicar());
    infected.extend(b" suffix\n");
    r = r.file("clean-07-not.bin", &infected);
    let ev = r.collect(&spec, &quick()).await;
    let v = r.judge(&spec, &ev);
    assert_eq!(ev.files.len(), 21);
    for f in &ev.files {
        assert_eq!(f.method, ScanMethod::Instream, "{f:?}");
        assert!(f.reply.as_deref().unwrap().starts_with("stream: "), "{f:?}");
    }
    assert_eq!(codes(&v), ["virus-found"], "{}", messages(&v));
    assert_eq!(
        v.reasons[0].message,
        "clean-07-not.bin: Relgate.Test.EICAR.UNOFFICIAL FOUND"
    );
    let addr = d
        .address()
        .to_string()
        .trim_start_matches("tcp://")
        .to_string();
    d.stop().await;
    assert!(port_refuses(&addr), "clamd still listens on {addr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_clamd_scans_the_same_way() {
    let opts = DaemonOptions {
        unix_socket: true,
        ..DaemonOptions::default()
    };
    let d = PrivateClamd::start(&fixture_db("db"), &opts, None)
        .await
        .unwrap();
    let clamd::Address::Unix(sock) = d.address().clone() else {
        panic!("expected a unix socket, got {}", d.address());
    };
    let spec = Release::spec(ClamdAddr::Unix(sock.clone()));
    let mut r = Release::new()
        .file("clean.txt", b"clean")
        .file("bad.txt", &eicar());
    let ev = r.collect(&spec, &quick()).await;
    assert_eq!(ev.clamd, format!("unix:{}", sock.display()));
    let v = r.judge(&spec, &ev);
    assert_eq!(codes(&v), ["virus-found"], "{}", messages(&v));
    assert_eq!(
        v.reasons[0].message,
        "bad.txt: Relgate.Test.EICAR.UNOFFICIAL FOUND"
    );
    // Both went by descriptor; the digests recorded are the staged ones.
    let staged = &r.cx.as_ref().unwrap().staged;
    for (f, a) in ev.files.iter().zip(&staged.artefacts) {
        assert_eq!(f.method, ScanMethod::Fildes, "{f:?}");
        assert_eq!(f.sha256.as_deref(), Some(a.sha256.as_str()), "{f:?}");
        assert!(f.complete, "{f:?}");
    }
    assert!(ev.files[0].reply.as_deref().unwrap().ends_with(" FOUND\0"));

    // A staged file changed after staging is not handed to clamd: its digest is not the
    // staged one, and the gate says so.
    let mut r = Release::new()
        .file("clean.txt", b"clean")
        .file("other.txt", b"other");
    let cx = r.stage(&spec).clone();
    let victim = cx.staged.path_of(&cx.staged.artefacts[0]);
    fs::write(&victim, b"swapped").unwrap();
    let ev = virus_scan::collect_with(&spec, &cx, &quick())
        .await
        .unwrap();
    assert_eq!(ev.files[0].reply, None, "{:?}", ev.files[0]);
    let v = r.judge(&spec, &ev);
    assert_eq!(codes(&v), ["digest-mismatch"], "{}", messages(&v));
    assert!(
        v.reasons[0]
            .message
            .starts_with("clean.txt: the staged file has sha256"),
        "{}",
        messages(&v)
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_recorded_before_fildes_replays_unchanged() {
    // A TCP scan records method instream; drop the field, as records from before FILDES lack
    // it, and the judge must read them exactly as before.
    let d = PrivateClamd::start(&fixture_db("db"), &tcp(), None)
        .await
        .unwrap();
    let spec = Release::spec(ClamdAddr::Tcp(
        d.address().to_string().trim_start_matches("tcp://").into(),
    ));
    let mut r = Release::new()
        .file("clean.txt", b"clean")
        .file("bad.txt", &eicar());
    let ev = r.collect(&spec, &quick()).await;
    d.stop().await;
    let mut json = serde_json::to_value(&ev).unwrap();
    for f in json["files"].as_array_mut().unwrap() {
        assert_eq!(f["method"], "instream");
        f.as_object_mut().unwrap().remove("method");
    }
    let old: VirusScanEvidence = serde_json::from_value(json).unwrap();
    assert_eq!(old, ev);
    let v = r.judge(&spec, &old);
    assert_eq!(codes(&v), ["virus-found"], "{}", messages(&v));
    assert_eq!(
        v.reasons[0].message,
        "bad.txt: Relgate.Test.EICAR.UNOFFICIAL FOUND"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_over_clamds_limit_is_red_with_clamds_error() {
    // clamd's StreamMaxLength (1 MiB) below the gate's max_size: clamd refuses mid-stream and
    // resets the connection; its reply must still be read and recorded.
    let opts = DaemonOptions {
        max_size: MIB,
        ..tcp()
    };
    let d = PrivateClamd::start(&fixture_db("db"), &opts, None)
        .await
        .unwrap();
    let spec = Release::spec(ClamdAddr::Tcp(
        d.address().to_string().trim_start_matches("tcp://").into(),
    ));
    let mut r = Release::new().file("big.bin", &vec![7u8; (3 * MIB) as usize]);
    let ev = r.collect(&spec, &quick()).await;
    let v = r.judge(&spec, &ev);
    assert_eq!(codes(&v), ["scan-error"], "{}", messages(&v));
    assert!(
        v.reasons[0].message.contains("size limit exceeded"),
        "{}",
        messages(&v)
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dated_database_is_fresh_then_stale_by_max_signature_age() {
    let mut spec = Release::spec(ClamdAddr::Private {
        database: fixture_db("dated"),
    });
    spec.max_signature_age_secs = Some(86_400);
    let mut r = Release::new().file("a.txt", b"clean");
    let ev = r.collect(&spec, &quick()).await;
    assert_eq!(ev.db_version, Some(27777), "{:?}", ev.version_reply);
    let built = ev
        .db_date
        .expect("the daily.cud fixture carries a build date");
    let fresh = r.judge_at(&spec, &ev, built + 3600);
    assert_eq!(fresh.outcome, Outcome::Green, "{}", messages(&fresh));
    let stale = r.judge_at(&spec, &ev, built + 2 * 86_400);
    assert_eq!(codes(&stale), ["signatures-stale"], "{}", messages(&stale));
    assert!(
        stale.reasons[0].message.contains("27777"),
        "{}",
        messages(&stale)
    );
    // Without max_signature_age the date does not matter.
    spec.max_signature_age_secs = None;
    assert!(r.judge_at(&spec, &ev, built + 400 * 86_400).is_green());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undated_database_with_max_signature_age_is_red() {
    let mut spec = Release::spec(ClamdAddr::Private {
        database: fixture_db("db"),
    });
    spec.max_signature_age_secs = Some(86_400);
    let mut r = Release::new().file("a.txt", b"clean");
    let ev = r.collect(&spec, &quick()).await;
    assert_eq!(ev.db_date, None, "{:?}", ev.version_reply);
    let v = r.judge(&spec, &ev);
    assert_eq!(codes(&v), ["signatures-undated"], "{}", messages(&v));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_clamd_is_red_with_a_clear_reason() {
    // A socket bound but not listening holds the port (nobody else can take it) and refuses
    // every connection.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = held.local_addr().unwrap().port();
    let spec = Release::spec(ClamdAddr::Tcp(format!("127.0.0.1:{port}")));
    let mut r = Release::new().file("a.txt", b"clean");
    let ev = r.collect(&spec, &quick()).await;
    let v = r.judge(&spec, &ev);
    assert_eq!(codes(&v), ["scanner-unavailable"], "{}", messages(&v));
    let m = &v.reasons[0].message;
    assert!(m.contains(&format!("tcp://127.0.0.1:{port}")), "{m}");
    assert!(m.contains("cannot connect"), "{m}");
    assert!(ev.files.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_database_folder_or_clamd_binary_is_red() {
    let spec = Release::spec(ClamdAddr::Private {
        database: PathBuf::from("/nonexistent/relgate-db"),
    });
    let mut r = Release::new().file("a.txt", b"clean");
    let ev = r.collect(&spec, &quick()).await;
    let v = r.judge(&spec, &ev);
    assert_eq!(codes(&v), ["scanner-unavailable"], "{}", messages(&v));

    let opts = DaemonOptions {
        program: Some(PathBuf::from("/nonexistent/bin/clamd")),
        ..DaemonOptions::default()
    };
    let err = PrivateClamd::start(&fixture_db("db"), &opts, None)
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("install clamav-daemon (apt-get install clamav-daemon)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_clamd_leaves_no_process_behind_on_stop_and_on_drop() {
    let d = PrivateClamd::start(&fixture_db("db"), &DaemonOptions::default(), None)
        .await
        .unwrap();
    let pid = d.pid().unwrap();
    let dir = d.dir().to_path_buf();
    assert!(running(pid));
    assert!(dir.join("clamd.conf").exists());
    d.stop().await;
    assert!(!running(pid), "clamd {pid} survived stop()");
    assert!(!dir.exists(), "the temporary folder was left behind");

    // Dropped without stop(), as when the run is interrupted or the gate errors.
    let d = PrivateClamd::start(&fixture_db("db"), &DaemonOptions::default(), None)
        .await
        .unwrap();
    let pid = d.pid().unwrap();
    drop(d);
    assert!(
        gone_within(pid, Duration::from_secs(5)).await,
        "clamd {pid} survived drop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_while_scanning_stops_the_private_clamd() {
    // A database folder of its own, to tell this test's clamd from the other tests'.
    let db = tempfile::tempdir().unwrap();
    for f in ["relgate.ndb", "relgate.hdb"] {
        fs::copy(fixture_db("db").join(f), db.path().join(f)).unwrap();
    }
    let spec = Release::spec(ClamdAddr::Private {
        database: db.path().to_path_buf(),
    });
    let mut r = Release::new();
    for i in 0..40 {
        r = r.file(&format!("f{i:02}.bin"), &vec![i as u8; (2 * MIB) as usize]);
    }
    r.stage(&spec);
    let cx = r.cx.clone().unwrap();
    let cancel = r._cancel.take().unwrap();
    let task = tokio::spawn(async move { virus_scan::collect_with(&spec, &cx, &quick()).await });
    // Wait for the private clamd to appear, then interrupt.
    let mut pid = None;
    for _ in 0..200 {
        pid = clamd_on(db.path());
        if pid.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.send(true).unwrap();
    let res = task.await.unwrap();
    assert!(
        matches!(res, Err(CollectError::Interrupted)),
        "{:?}",
        res.map(|e| e.files.len())
    );
    let pid = pid.expect("a private clamd was started");
    assert!(
        gone_within(pid, Duration::from_secs(5)).await,
        "clamd {pid} survived the interrupt"
    );
}

/// The pid of a running clamd child of this test process whose clamd.conf names `database`.
fn clamd_on(database: &Path) -> Option<u32> {
    let me = std::process::id();
    let want = format!(
        "DatabaseDirectory {}\n",
        database.canonicalize().ok()?.display()
    );
    for e in fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmd = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let conf = cmd.split('\0').nth(2).unwrap_or_default();
        let conf_text = fs::read_to_string(conf).unwrap_or_default();
        if ppid == Some(me) && conf_text.contains(&want) && running(pid) {
            return Some(pid);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Fake servers: faults a real clamd does not show on demand
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Fake {
    /// Reads the whole stream, then never answers.
    Silent,
    /// Answers with bytes that are not a clamd reply.
    Garbled,
    /// Reads a little of the stream, then closes with unread data (the kernel sends RST).
    ResetMidStream,
    /// clamd's own answer to an oversized stream.
    SizeLimit,
    /// Answers `stream: OK` before the stream has ended.
    EarlyOk,
    /// A well-behaved server: answers `stream: OK` after the zero chunk.
    Ok,
}

/// What a fake server received: commands, and the INSTREAM payload bytes.
#[derive(Default)]
struct Seen {
    commands: Vec<String>,
    payload: u64,
}

async fn fake_server(kind: Fake) -> (String, Arc<Mutex<Seen>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = l.accept().await else {
                return;
            };
            let seen = s2.clone();
            tokio::spawn(async move { serve(sock, kind, seen).await });
        }
    });
    (addr, seen)
}

async fn serve(mut sock: tokio::net::TcpStream, kind: Fake, seen: Arc<Mutex<Seen>>) {
    let mut cmd = Vec::new();
    let mut b = [0u8; 1];
    while sock.read_exact(&mut b).await.is_ok() && b[0] != 0 {
        cmd.push(b[0]);
    }
    let cmd = String::from_utf8_lossy(&cmd).into_owned();
    seen.lock().unwrap().commands.push(cmd.clone());
    match cmd.as_str() {
        "zVERSION" => {
            let _ = sock.write_all(b"ClamAV 1.4.6\0").await;
            return;
        }
        "zINSTREAM" => {}
        _ => {
            let _ = sock.write_all(b"UNKNOWN COMMAND\0").await;
            return;
        }
    }
    let mut total = 0u64;
    loop {
        let mut len = [0u8; 4];
        if sock.read_exact(&mut len).await.is_err() {
            return;
        }
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 {
            break;
        }
        if matches!(kind, Fake::EarlyOk) {
            let _ = sock.write_all(b"stream: OK\0").await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            return;
        }
        if matches!(kind, Fake::SizeLimit) {
            let _ = sock
                .write_all(b"INSTREAM size limit exceeded. ERROR\0")
                .await;
            return; // close with the chunk unread: a reset, as clamd does
        }
        let mut chunk = vec![0u8; n];
        if sock.read_exact(&mut chunk).await.is_err() {
            return;
        }
        total += n as u64;
        seen.lock().unwrap().payload = total;
        if matches!(kind, Fake::ResetMidStream) && total >= 64 * 1024 {
            return; // drop with unread data in the receive buffer: RST
        }
    }
    match kind {
        Fake::Silent => tokio::time::sleep(Duration::from_secs(60)).await,
        Fake::Garbled => {
            let _ = sock.write_all(b"\xffstream: OK?\x01\0").await;
        }
        Fake::Ok => {
            let _ = sock.write_all(b"stream: OK\0").await;
        }
        _ => {}
    }
}

async fn against_fake(
    kind: Fake,
    payload: &[u8],
) -> (Verdict, VirusScanEvidence, Arc<Mutex<Seen>>) {
    let (addr, seen) = fake_server(kind).await;
    let spec = Release::spec(ClamdAddr::Tcp(addr));
    let mut r = Release::new().file("a.bin", payload);
    let ev = r.collect(&spec, &quick()).await;
    let v = r.judge(&spec, &ev);
    (v, ev, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_behaved_fake_is_green_so_the_fakes_below_prove_something() {
    let (v, ev, seen) = against_fake(Fake::Ok, &vec![1u8; 700_000]).await;
    assert!(v.is_green(), "{}", messages(&v));
    assert_eq!(seen.lock().unwrap().payload, 700_000);
    assert_eq!(ev.files[0].sent, 700_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_hits_the_timeout() {
    let started = std::time::Instant::now();
    let (v, _, _) = against_fake(Fake::Silent, b"some bytes").await;
    assert_eq!(codes(&v), ["scan-error"], "{}", messages(&v));
    assert!(
        v.reasons[0].message.contains("did not answer within 2s"),
        "{}",
        messages(&v)
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_reply_is_red() {
    let (v, ev, _) = against_fake(Fake::Garbled, b"some bytes").await;
    assert_eq!(codes(&v), ["scan-error"], "{}", messages(&v));
    assert!(ev.files[0].reply.as_deref().unwrap().contains("stream: OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_stream_is_red() {
    let (v, ev, _) = against_fake(Fake::ResetMidStream, &vec![3u8; (8 * MIB) as usize]).await;
    assert_eq!(codes(&v), ["scan-error"], "{}", messages(&v));
    assert!(ev.files[0].reply.is_none(), "{:?}", ev.files[0]);
    assert!(!ev.files[0].complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limit_error_is_read_even_though_the_send_fails() {
    let (v, ev, _) = against_fake(Fake::SizeLimit, &vec![3u8; (8 * MIB) as usize]).await;
    assert_eq!(codes(&v), ["scan-error"], "{}", messages(&v));
    assert_eq!(
        ev.files[0].reply.as_deref(),
        Some("INSTREAM size limit exceeded. ERROR\0")
    );
    assert!(v.reasons[0].message.contains("size limit exceeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_is_never_retried() {
    for kind in [Fake::SizeLimit, Fake::Garbled, Fake::ResetMidStream] {
        let (v, _, seen) = against_fake(kind, &vec![3u8; (2 * MIB) as usize]).await;
        assert!(!v.is_green());
        assert_eq!(seen.lock().unwrap().commands, ["zVERSION", "zINSTREAM"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retried_with_backoff() {
    // Nothing listens at first; the server comes up while the client backs off.
    // The port is held from the start (bound, not listening: connections are refused) and the
    // same socket starts listening later, so no other process can take it in between.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let l = socket.listen(16).unwrap();
        loop {
            let (sock, _) = l.accept().await.unwrap();
            let seen = s2.clone();
            tokio::spawn(async move { serve(sock, Fake::Ok, seen).await });
        }
    });
    let spec = Release::spec(ClamdAddr::Tcp(addr));
    let mut r = Release::new().file("a.txt", b"clean");
    let mut opts = quick();
    opts.retries = 3; // waits 200 ms, 400 ms, 600 ms between attempts
    let ev = r.collect(&spec, &opts).await;
    let v = r.judge(&spec, &ev);
    assert!(v.is_green(), "{}", messages(&v));
    assert_eq!(seen.lock().unwrap().commands, ["zVERSION", "zINSTREAM"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_before_the_stream_ended_is_not_clean() {
    let (v, _, _) = against_fake(Fake::EarlyOk, &vec![3u8; (4 * MIB) as usize]).await;
    assert_eq!(codes(&v), ["digest-mismatch"], "{}", messages(&v));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_max_size_is_red_and_never_sent() {
    let (addr, seen) = fake_server(Fake::Ok).await;
    let mut spec = Release::spec(ClamdAddr::Tcp(addr));
    spec.max_size = 1000;
    let mut r = Release::new()
        .file("big.bin", &[9u8; 1001])
        .file("small.bin", &[9u8; 1000]);
    let ev = r.collect(&spec, &quick()).await;
    let v = r.judge(&spec, &ev);
    assert_eq!(codes(&v), ["too-large"], "{}", messages(&v));
    assert!(
        v.reasons[0]
            .message
            .starts_with("big.bin: not scanned: too large"),
        "{}",
        messages(&v)
    );
    let seen = seen.lock().unwrap();
    // VERSION, and one INSTREAM: the small file's. The big one's bytes never left.
    assert_eq!(seen.commands, ["zVERSION", "zINSTREAM"]);
    assert_eq!(seen.payload, 1000);
}

// ---------------------------------------------------------------------------------------------
// A fake clamd on a Unix socket that receives the descriptor (FILDES)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum FakeFd {
    /// Reads the file through the descriptor received, answers `fd[N]: OK`.
    Ok,
    /// Answers as if for a stream: not an answer for a descriptor.
    StreamReply,
    /// Rewrites the file through /proc/self/fd/N (as something else could, during a scan),
    /// then answers `fd[N]: OK`.
    Rewrite,
}

/// What the fake received over FILDES: the command bytes, the offset the descriptor was at,
/// and the file's content read through it.
#[derive(Default, Debug)]
struct FdSeen {
    command: Vec<u8>,
    offset: Option<u64>,
    content: Option<Vec<u8>>,
}

/// Receive bytes and at most one SCM_RIGHTS descriptor (recvmsg).
#[allow(
    unsafe_code,
    reason = "recvmsg with ancillary data in a test's fake server"
)]
fn recv_with_fd(
    sock: &std::os::unix::net::UnixStream,
    buf: &mut [u8],
) -> std::io::Result<(usize, Option<std::os::fd::OwnedFd>)> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: msg points at `iov` (over `buf`) and `control`, both alive for the call; the
    // control message is read only when the kernel filled one of the expected type and size,
    // and the descriptor it carries is new and owned by us.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut fd = None;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null()
            && (*cmsg).cmsg_level == libc::SOL_SOCKET
            && (*cmsg).cmsg_type == libc::SCM_RIGHTS
            && (*cmsg).cmsg_len as usize == libc::CMSG_LEN(4) as usize
        {
            let raw = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            fd = Some(std::os::fd::OwnedFd::from_raw_fd(raw));
        }
        Ok((n as usize, fd))
    }
}

/// One connection: read the command a byte at a time with recvmsg (so a descriptor is never
/// dropped by a plain read), answer VERSION, or take FILDES's extra byte and descriptor.
fn serve_fd(mut sock: std::os::unix::net::UnixStream, kind: FakeFd, seen: Arc<Mutex<FdSeen>>) {
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::fd::AsRawFd;
    let mut got = Vec::new();
    let mut fd = None;
    let mut one = [0u8; 1];
    while !got.ends_with(b"\0") {
        match recv_with_fd(&sock, &mut one) {
            Ok((0, _)) | Err(_) => return,
            Ok((_, f)) => {
                got.push(one[0]);
                fd = fd.or(f);
            }
        }
    }
    if got == b"zVERSION\0" {
        let _ = sock.write_all(b"ClamAV 1.4.6\0");
        return;
    }
    if got != b"zFILDES\0" {
        let _ = sock.write_all(b"UNKNOWN COMMAND\0");
        return;
    }
    // The byte that carries the descriptor.
    match recv_with_fd(&sock, &mut one) {
        Ok((1, f)) => {
            got.push(one[0]);
            fd = fd.or(f);
        }
        _ => return,
    }
    let mut seen = seen.lock().unwrap();
    seen.command = got;
    let Some(fd) = fd else {
        let _ = sock.write_all(b"FILDES: didn't receive file descriptor. ERROR\0");
        return;
    };
    let n = fd.as_raw_fd();
    let mut file = std::fs::File::from(fd);
    seen.offset = file.stream_position().ok();
    let mut content = Vec::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut content).unwrap();
    seen.content = Some(content);
    let reply = match kind {
        FakeFd::Ok => format!("fd[{n}]: OK\0"),
        FakeFd::StreamReply => "stream: OK\0".to_string(),
        FakeFd::Rewrite => {
            // Same length, other bytes: only the change stamps can tell.
            let mut w = fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/self/fd/{n}"))
                .unwrap();
            w.write_all(b"X").unwrap();
            format!("fd[{n}]: OK\0")
        }
    };
    let _ = sock.write_all(reply.as_bytes());
}

/// Serve on a Unix socket in `dir`; returns the socket path and what FILDES received.
fn fake_fd_server(dir: &Path, kind: FakeFd) -> (PathBuf, Arc<Mutex<FdSeen>>) {
    let path = dir.join("fake.sock");
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let seen = Arc::new(Mutex::new(FdSeen::default()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for sock in l.incoming() {
            let Ok(sock) = sock else { return };
            let seen = s2.clone();
            std::thread::spawn(move || serve_fd(sock, kind, seen));
        }
    });
    (path, seen)
}

async fn against_fake_fd(
    kind: FakeFd,
    payload: &[u8],
) -> (Release, Verdict, VirusScanEvidence, Arc<Mutex<FdSeen>>) {
    let dir = tempfile::tempdir().unwrap();
    let (sock, seen) = fake_fd_server(dir.path(), kind);
    let spec = Release::spec(ClamdAddr::Unix(sock));
    let mut r = Release::new().file("a.bin", payload);
    let ev = r.collect(&spec, &quick()).await;
    let v = r.judge(&spec, &ev);
    drop(dir);
    (r, v, ev, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fildes_passes_the_hashed_descriptor_rewound() {
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let (_r, v, ev, seen) = against_fake_fd(FakeFd::Ok, &payload).await;
    assert!(v.is_green(), "{}", messages(&v));
    let seen = seen.lock().unwrap();
    // Exactly clamdscan's framing: the command, then one NUL byte carrying the descriptor.
    assert_eq!(seen.command, b"zFILDES\0\0");
    // The descriptor was rewound after hashing, and it is the staged file.
    assert_eq!(seen.offset, Some(0));
    assert_eq!(seen.content.as_deref(), Some(payload.as_slice()));
    assert_eq!(ev.files[0].method, ScanMethod::Fildes);
    assert_eq!(ev.files[0].sent, payload.len() as u64);
    assert!(ev.files[0].complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fildes_reply_for_a_stream_is_not_clean() {
    let (_r, v, ev, _) = against_fake_fd(FakeFd::StreamReply, b"some bytes").await;
    assert_eq!(codes(&v), ["scan-error"], "{}", messages(&v));
    assert_eq!(ev.files[0].reply.as_deref(), Some("stream: OK\0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_rewritten_during_the_scan_is_not_clean() {
    let (_r, v, ev, seen) = against_fake_fd(FakeFd::Rewrite, &[b'a'; 100_000]).await;
    assert!(seen.lock().unwrap().content.is_some());
    assert!(!ev.files[0].complete, "{:?}", ev.files[0]);
    assert_eq!(codes(&v), ["digest-mismatch"], "{}", messages(&v));
    assert!(
        v.reasons[0]
            .message
            .contains("changed while clamd scanned it"),
        "{}",
        messages(&v)
    );
}

// ---------------------------------------------------------------------------------------------
// Replay: the judge over recorded evidence
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_infected_run_stays_red_and_edits_are_judged_honestly() {
    let spec = Release::spec(ClamdAddr::Private {
        database: fixture_db("db"),
    });
    let mut r = Release::new()
        .file("a.txt", &eicar())
        .file("b.txt", b"fine");
    let ev = r.collect(&spec, &quick()).await;
    // What the log stores: JSON. Re-read it as replay would.
    let recorded: VirusScanEvidence =
        serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
    assert_eq!(codes(&r.judge(&spec, &recorded)), ["virus-found"]);

    // The reply edited to clean: the judge, given only the evidence, calls it green (the log's
    // chain is what catches such an edit).
    assert_eq!(recorded.files[0].method, ScanMethod::Fildes);
    let mut edited = recorded.clone();
    edited.files[0].reply = Some("fd[12]: OK\0".into());
    assert!(r.judge(&spec, &edited).is_green());
    // ... but a stream's OK is not an answer for a descriptor, nor the other way round.
    let mut streamed = recorded.clone();
    streamed.files[0].reply = Some("stream: OK\0".into());
    assert_eq!(codes(&r.judge(&spec, &streamed)), ["scan-error"]);
    streamed.files[0].method = ScanMethod::Instream;
    assert!(r.judge(&spec, &streamed).is_green());
    streamed.files[0].reply = Some("fd[12]: OK\0".into());
    assert_eq!(codes(&r.judge(&spec, &streamed)), ["scan-error"]);

    // ... but not if the scanned bytes are not the staged ones.
    let mut wrong_bytes = edited.clone();
    wrong_bytes.files[0].sha256 = Some("0".repeat(64));
    assert_eq!(codes(&r.judge(&spec, &wrong_bytes)), ["digest-mismatch"]);

    // ... nor if an artefact's scan is dropped, or recorded twice.
    let mut dropped = edited.clone();
    dropped.files.remove(0);
    let v = r.judge(&spec, &dropped);
    assert_eq!(codes(&v), ["not-scanned"], "{}", messages(&v));
    assert!(v.reasons[0].message.starts_with("a.txt: not scanned"));
    let mut twice = edited.clone();
    twice.files.push(twice.files[1].clone());
    assert_eq!(codes(&r.judge(&spec, &twice)), ["not-scanned"]);

    // ... nor if the artefact list is not this release's.
    let mut other = edited.clone();
    other.sums = "1".repeat(64);
    assert_eq!(codes(&r.judge(&spec, &other)), ["not-scanned"]);

    // ... nor when the scanner never ran.
    let mut unavailable = edited;
    unavailable.scanner_error = Some("cannot connect".into());
    assert_eq!(
        codes(&r.judge(&spec, &unavailable)),
        ["scanner-unavailable"]
    );
}

#[test]
fn install_hint_is_the_documented_one() {
    assert_eq!(
        clamd::INSTALL_HINT,
        "install clamav-daemon (apt-get install clamav-daemon)"
    );
}

// ---------------------------------------------------------------------------------------------
// The real binary: `relgate run` with a virus-scan gate on a private clamd
// ---------------------------------------------------------------------------------------------

fn scan_project(extra: &str) -> common::Project {
    let p = common::Project::new();
    p.release_key();
    p.write("dist/acme-1.0.0.tar.gz", b"pretend tarball\n");
    p.write("dist/notes.txt", b"release notes\n");
    let gates = format!(
        "  virus-scan:\n    kind: virus-scan\n    clamd: {{database: {}}}\n{extra}",
        fixture_db("db").display()
    );
    p.write("pipeline.yaml", common::pipeline(&gates));
    p
}

#[test]
fn run_publishes_a_clean_release_and_replay_agrees() {
    let p = scan_project("");
    let out = p.relgate(&["run", "1.0.0"]);
    common::expect_code(&out, relgate::exit::SUCCESS);
    assert!(p.join("published/acme/1.0.0/notes.txt").exists());
    let log = p.log("1.0.0");
    assert!(log.contains("virus-scan"), "{log}");
    common::expect_code(
        &p.relgate(&["replay", p.join("published/acme/1.0.0").to_str().unwrap()]),
        relgate::exit::SUCCESS,
    );
}

#[test]
fn run_refuses_an_infected_artefact_and_publishes_nothing() {
    let p = scan_project("");
    p.write("dist/a.txt", eicar());
    let out = p.relgate(&["run", "1.0.0"]);
    common::expect_code(&out, relgate::exit::REFUSED);
    let err = common::stderr(&out);
    assert!(
        err.contains("virus-scan") && err.contains("a.txt: Relgate.Test.EICAR.UNOFFICIAL FOUND"),
        "{err}"
    );
    assert!(!p.join("published").exists());
    // The refusal replays: the red verdict follows again from the recorded evidence.
    common::expect_code(
        &p.relgate(&["replay", p.record("1.0.0").to_str().unwrap()]),
        relgate::exit::SUCCESS,
    );
    // The recorded reply edited to clean: replay fails.
    let evidence = p.record("1.0.0").join("evidence");
    let mut edited = 0;
    for e in std::fs::read_dir(&evidence).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("Relgate.Test.EICAR.UNOFFICIAL FOUND") {
            let forged = text.replace("Relgate.Test.EICAR.UNOFFICIAL FOUND", "OK");
            std::fs::write(&path, forged).unwrap();
            edited += 1;
        }
    }
    assert!(edited > 0, "no recorded reply found");
    let out = p.relgate(&["replay", p.record("1.0.0").to_str().unwrap()]);
    common::expect_code(&out, relgate::exit::REFUSED);
    assert!(
        common::stderr(&out).contains("replay failed"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn run_refuses_an_artefact_over_max_size_and_an_undated_database() {
    let p = scan_project("    max_size: 10\n    max_signature_age: 24h\n");
    let out = p.relgate(&["run", "1.0.0"]);
    common::expect_code(&out, relgate::exit::REFUSED);
    let err = common::stderr(&out);
    assert!(err.contains("too-large"), "{err}");
    assert!(err.contains("signatures-undated"), "{err}");
}

#[test]
fn run_refuses_an_encrypted_zip_even_when_its_content_cannot_be_seen() {
    // Made the way the attack makes it: `zip -P` (traditional PKWARE encryption) around EICAR.
    let work = tempfile::tempdir().unwrap();
    fs::write(work.path().join("payload.com"), eicar()).unwrap();
    let out = std::process::Command::new("zip")
        .current_dir(work.path())
        .args(["-q", "-P", "secret", "bundle.zip", "payload.com"])
        .output()
        .expect("zip (scripts/install-prereqs.sh installs it)");
    assert!(out.status.success(), "{out:?}");
    let p = scan_project("");
    p.write(
        "dist/bundle.zip",
        fs::read(work.path().join("bundle.zip")).unwrap(),
    );
    let out = p.relgate(&["run", "1.0.0"]);
    common::expect_code(&out, relgate::exit::REFUSED);
    let err = common::stderr(&out);
    assert!(
        err.contains("encrypted-content")
            && err.contains("bundle.zip: Heuristics.Encrypted.Zip FOUND"),
        "{err}"
    );
    assert!(!p.join("published").exists());
    common::expect_code(
        &p.relgate(&["replay", p.record("1.0.0").to_str().unwrap()]),
        relgate::exit::SUCCESS,
    );
}

//! Notifications through the real binary, delivered to a real HTTP server in the test: the
//! signature checked here with the secret, retries after a 500, a dead endpoint and a missing
//! secret that change neither a verdict nor the exit code, the outcomes in the log, and replay
//! accepting them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::common::*;
use hmac::{Hmac, Mac};
use relgate::exit;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request the server received.
#[derive(Clone, Debug)]
struct Req {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A webhook receiver on a loopback port: answers each request with the next status of
/// `statuses` (then 200), and keeps what it got.
struct Hook {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Req>>>,
}

impl Hook {
    fn start(rt: &tokio::runtime::Runtime, statuses: &[u16]) -> Hook {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let got = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(statuses.to_vec()));
        let seen = got.clone();
        rt.spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                let statuses = statuses.clone();
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    seen.lock().expect("lock").push(req);
                    let status = {
                        let mut s = statuses.lock().expect("lock");
                        if s.is_empty() { 200 } else { s.remove(0) }
                    };
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(answer.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Hook { addr, got }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn requests(&self) -> Vec<Req> {
        self.got.lock().expect("lock").clone()
    }
}

/// Read one HTTP/1.1 request: the head up to the blank line, then Content-Length bytes.
async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Req {
        path,
        headers,
        body,
    })
}

fn hmac_hex(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The `notification` lines of the release log, as JSON bodies.
fn notification_lines(p: &Project) -> Vec<serde_json::Value> {
    p.log("1.0.0")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("line"))
        .filter(|v| v["type"] == "notification")
        .map(|v| v["body"].clone())
        .collect()
}

/// A project with `gates` and `notify` (YAML for the `notify:` list, indented by two).
fn project(gates: &str, notify: &str) -> Project {
    let p = Project::new();
    let release = p.keygen("release");
    let alice = p.keygen("alice");
    let bob = p.keygen("bob");
    p.write(
        "keys/allowed_signers",
        format!("release@acme.test {release}\nalice@acme.test {alice}\nbob@acme.test {bob}\n"),
    );
    p.write("dist/a.txt", b"a\n");
    let text = pipeline(gates).replace(
        "gates:\n",
        "roles:\n  qa: [alice@acme.test, bob@acme.test]\ngates:\n",
    );
    p.write("pipeline.yaml", format!("{text}notify:\n{notify}"));
    p
}

const SIGNOFF: &str =
    "  manual-regression:\n    kind: signoff\n    role: qa\n    segregation: [operator, signer]\n";

#[test]
fn a_pending_release_tells_who_may_sign_and_how_and_the_body_is_signed() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hook = Hook::start(&rt, &[]);
    let p = project(
        SIGNOFF,
        &format!("  - url: {}\n    secret_env: HOOK_SECRET\n", hook.url()),
    );
    let out = p.relgate_env(&["run", "1.0.0"], &[("HOOK_SECRET", "s3cret")]);
    expect_code(&out, exit::PENDING);
    let got = hook.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    let req = &got[0];
    assert_eq!(req.path, "/hook");
    // The signature is HMAC-SHA256 over the exact body, with the secret from the environment.
    assert_eq!(
        req.header("x-relgate-signature-256"),
        Some(format!("sha256={}", hmac_hex("s3cret", &req.body)).as_str()),
        "{:?}",
        req.headers
    );
    assert_eq!(req.header("x-relgate-event"), Some("pending"));
    let body = req.json();
    assert_eq!(body["event"], "pending");
    assert_eq!(body["exit_code"], 3);
    let subject = body["subject"].as_str().expect("subject");
    assert!(p.log("1.0.0").contains(subject));
    let awaiting = &body["awaiting"][0];
    assert_eq!(awaiting["gate"], "manual-regression");
    assert_eq!(
        awaiting["may_sign"],
        serde_json::json!(["alice@acme.test", "bob@acme.test"])
    );
    assert_eq!(
        awaiting["approve"],
        format!(
            "relgate approve 1.0.0 --gate manual-regression --key KEY --as PRINCIPAL --subject {subject}"
        )
    );
    // Shown, and recorded inside the run.
    assert!(
        stderr(&out).contains("relgate: notified http://127.0.0.1"),
        "{}",
        stderr(&out)
    );
    let lines = notification_lines(&p);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["delivered"], true);
    assert_eq!(lines[0]["signed"], true);
    assert_eq!(lines[0]["attempts"], 1);
    assert_eq!(lines[0]["status"], 200);
    // Replay accepts the record with its notification line.
    expect_code(
        &p.relgate(&["replay", ".relgate/releases/1.0.0"]),
        exit::SUCCESS,
    );
}

#[test]
fn a_refusal_is_retried_after_a_500_and_slack_gets_its_text() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let json = Hook::start(&rt, &[500]);
    let slack = Hook::start(&rt, &[]);
    let p = project(
        "  unit-tests:\n    kind: regression\n    run: \"exit 1\"\n",
        &format!(
            "  - url: {}\n  - url: {}\n    format: slack\n    on: [refused]\n",
            json.url(),
            slack.url()
        ),
    );
    let out = p.relgate_env(&["run", "1.0.0"], &[("RELGATE_NOTIFY_BACKOFF_MS", "50")]);
    expect_code(&out, exit::REFUSED);
    let got = json.requests();
    assert_eq!(got.len(), 2, "one 500, then delivered: {got:?}");
    assert_eq!(got[0].body, got[1].body, "a retry sends the same body");
    let body = got[1].json();
    assert_eq!(body["event"], "refused");
    assert_eq!(body["not_green"][0]["gate"], "unit-tests");
    assert_eq!(body["not_green"][0]["code"], "command-failed");
    assert!(got[1].header("x-relgate-signature-256").is_none());
    let text = slack.requests()[0].json()["text"]
        .as_str()
        .expect("text")
        .to_string();
    assert!(
        text.contains("refused") && text.contains("`unit-tests` red"),
        "{text}"
    );
    let lines = notification_lines(&p);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["attempts"], 2);
    assert_eq!(lines[0]["delivered"], true);
    assert_eq!(lines[1]["format"], "slack");
    expect_code(
        &p.relgate(&["replay", ".relgate/releases/1.0.0"]),
        exit::SUCCESS,
    );
    // status and the report show them too.
    let status = stdout(&p.relgate(&["status", "1.0.0"]));
    assert!(
        status.contains("notified refused to http://127.0.0.1")
            && status.contains("after 2 attempt(s)"),
        "{status}"
    );
    let report = p.relgate(&["report", ".relgate/releases/1.0.0", "--format", "markdown"]);
    expect_code(&report, exit::SUCCESS);
    assert!(
        stdout(&report).contains("notified: refused to"),
        "{}",
        stdout(&report)
    );
}

#[test]
fn a_dead_endpoint_and_a_404_change_neither_the_verdict_nor_the_exit_code() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // A port nobody listens on: a socket bound but not listening holds it for the whole test
    // (no other process can take it) and refuses every connection.
    let held = tokio::net::TcpSocket::new_v4().expect("socket");
    held.bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let dead = held.local_addr().expect("addr");
    let missing = Hook::start(&rt, &[404, 404, 404]);
    let pending_only = Hook::start(&rt, &[]);
    let p = project(
        "  unit-tests:\n    kind: regression\n    run: \"true\"\n",
        &format!(
            "  - url: http://{dead}/hook\n    retries: 1\n  - url: {}\n  - url: {}\n    on: [pending]\n",
            missing.url(),
            pending_only.url()
        ),
    );
    let out = p.relgate_env(&["run", "1.0.0"], &[("RELGATE_NOTIFY_BACKOFF_MS", "50")]);
    expect_code(&out, exit::SUCCESS);
    assert!(p.join("published/acme/1.0.0/SHA256SUMS").is_file());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "notification failed: http://{dead}/hook (published): cannot connect"
        )),
        "{err}"
    );
    assert!(
        err.contains("after 2 attempt(s); the decision and exit code stand"),
        "{err}"
    );
    assert!(err.contains("HTTP 404"), "{err}");
    // A 404 is an answer: not tried again. A webhook not asking for `published` hears nothing.
    assert_eq!(missing.requests().len(), 1);
    assert!(pending_only.requests().is_empty());
    let lines = notification_lines(&p);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["delivered"], false);
    assert_eq!(lines[0]["attempts"], 2);
    assert_eq!(lines[0]["status"], serde_json::Value::Null);
    assert_eq!(lines[1]["status"], 404);
    // The release and its record replay: notifications are inside the run, never a verdict.
    expect_code(
        &p.relgate(&["replay", ".relgate/releases/1.0.0"]),
        exit::SUCCESS,
    );
    expect_code(
        &p.relgate(&["replay", "published/acme/1.0.0"]),
        exit::SUCCESS,
    );
}

#[test]
fn a_missing_secret_is_never_sent_unsigned() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hook = Hook::start(&rt, &[]);
    let p = project(
        SIGNOFF,
        &format!(
            "  - url: {}\n    secret_env: HOOK_SECRET_NOT_SET\n",
            hook.url()
        ),
    );
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::PENDING);
    assert!(hook.requests().is_empty());
    assert!(
        stderr(&out).contains("HOOK_SECRET_NOT_SET is not set: not sent unsigned"),
        "{}",
        stderr(&out)
    );
    assert_eq!(notification_lines(&p)[0]["attempts"], 0);
}

#[test]
fn nothing_secret_is_accepted_in_the_pipeline() {
    for (notify, says) in [
        (
            "  - url: https://hooks.example.test/x\n    secret: hunter2\n",
            "nothing secret belongs in the pipeline",
        ),
        (
            "  - url: https://hooks.example.test/x?token=abc\n",
            "credentials and queries do not belong in the pipeline",
        ),
        (
            "  - url: http://hooks.example.test/x\n",
            "plain http:// to another machine",
        ),
        (
            "  - url_env: 9LIVES\n",
            "the name of an environment variable",
        ),
        (
            "  - url: https://hooks.example.test/x\n    on: [done]\n",
            "pending, refused or published",
        ),
    ] {
        let p = project("", notify);
        let out = p.relgate(&["check"]);
        expect_code(&out, exit::CONFIG);
        assert!(stderr(&out).contains(says), "{notify}: {}", stderr(&out));
    }
    // A URL that is itself a secret comes from the environment, and is shown without its path.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hook = Hook::start(&rt, &[]);
    let p = project(SIGNOFF, "  - url_env: HOOK_URL\n");
    let out = p.relgate_env(&["run", "1.0.0"], &[("HOOK_URL", &hook.url())]);
    expect_code(&out, exit::PENDING);
    assert_eq!(hook.requests().len(), 1);
    let lines = notification_lines(&p);
    assert_eq!(
        lines[0]["target"],
        format!("$HOOK_URL (http://127.0.0.1/…)")
    );
    assert!(!p.log("1.0.0").contains("/hook"));
}

/// Rewrite a record's log as `edit` says, chained and sealed again with the release key: what
/// only the key holder could do, so the chain and signature hold and replay's own rules must
/// catch it.
fn forge(p: &Project, edit: impl FnOnce(&mut Vec<relgate::log::Record>)) {
    let rec = p.record("1.0.0");
    let log = rec.join("log.jsonl");
    let bytes = std::fs::read(&log).expect("log");
    let mut records: Vec<relgate::log::Record> = relgate::log::read_log(&bytes)
        .expect("reads")
        .0
        .into_iter()
        .map(|e| e.record)
        .collect();
    edit(&mut records);
    std::fs::remove_file(&log).expect("rm");
    let (mut w, _) = relgate::log::LogWriter::open(&log).expect("open");
    for r in records {
        w.append(r).expect("append");
    }
    drop(w);
    let _ = std::fs::remove_dir_all(rec.join("checkpoints"));
    let (entries, head) =
        relgate::log::read_log(&std::fs::read(&log).expect("log")).expect("reads");
    let key = relgate::sshsig::load_private_key(&p.join("keys/release")).expect("key");
    let cp =
        relgate::log::checkpoint::Checkpoint::new("relgate/acme/1.0.0", entries.len() as u64, head);
    relgate::log::checkpoint::write(&rec, &cp, Some(&key)).expect("checkpoint");
}

#[test]
fn replay_refuses_a_notification_outside_its_place() {
    use relgate::log::Record;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hook = Hook::start(&rt, &[]);
    let make = || {
        let p = project(
            "  unit-tests:\n    kind: regression\n    run: \"exit 1\"\n",
            &format!("  - url: {}\n", hook.url()),
        );
        expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
        expect_code(
            &p.relgate(&["replay", ".relgate/releases/1.0.0"]),
            exit::SUCCESS,
        );
        p
    };
    fn position(rs: &[Record]) -> usize {
        rs.iter()
            .position(|r| matches!(r, Record::Notification(_)))
            .expect("a notification")
    }
    type Edit = Box<dyn FnOnce(&mut Vec<Record>)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|rs: &mut Vec<Record>| {
                let i = position(rs);
                if let Record::Notification(n) = &mut rs[i] {
                    n.event = "published".into();
                }
            }),
            "the release was not put in place",
        ),
        (
            Box::new(|rs: &mut Vec<Record>| {
                let i = position(rs);
                let n = rs.remove(i);
                rs.insert(2, n);
            }),
            "a notification before gate",
        ),
        (
            Box::new(|rs: &mut Vec<Record>| {
                let i = position(rs);
                if let Record::Notification(n) = &mut rs[i] {
                    n.event = "pending".into();
                }
            }),
            "a pending notification in a run that ended Refused",
        ),
    ];
    for (edit, says) in cases {
        let p = make();
        forge(&p, edit);
        let out = p.relgate(&["replay", ".relgate/releases/1.0.0"]);
        expect_code(&out, exit::REFUSED);
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
    }
}

#[test]
fn a_dry_run_tells_nobody() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hook = Hook::start(&rt, &[]);
    let p = project(
        "  unit-tests:\n    kind: regression\n    run: \"exit 1\"\n",
        &format!("  - url: {}\n", hook.url()),
    );
    expect_code(&p.relgate(&["run", "1.0.0", "--dry-run"]), exit::REFUSED);
    assert!(hook.requests().is_empty(), "a rehearsal is nobody's news");
}

/// Run relgate in `p` and return its output with the peak resident size, in KiB, of that one
/// process (and of what it waited for), from `wait4` on its pid. `getrusage(RUSAGE_CHILDREN)`
/// would also count every other child this test process waited for: the other tests' too,
/// clamd and chromium among them, since all tests share one process.
fn relgate_peak_rss_kib(p: &Project, args: &[&str]) -> (std::process::Output, i64) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    #[expect(
        clippy::zombie_processes,
        reason = "reaped by the wait4 below, which std does not see"
    )]
    let mut child = p
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run relgate");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).expect("read");
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: wait4 fills `status` and the struct it is given; `pid` is our own child,
        // which nothing else waits for (std waits only when asked, and it is not asked).
        #[allow(unsafe_code)]
        let rc = unsafe { libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()) };
        if rc == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "wait4: {e}");
    }
    // SAFETY: filled by the wait4 that returned the pid.
    #[allow(unsafe_code)]
    let usage = unsafe { usage.assume_init() };
    let output = std::process::Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
    };
    (output, usage.ru_maxrss)
}

#[test]
fn a_receiver_answering_with_an_endless_body_cannot_fill_memory() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // A hostile receiver: a 200 with no length, then zeros for as long as anyone reads.
    rt.spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if read_request(&mut sock).await.is_none() {
                    return;
                }
                let head =
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let zeros = vec![0u8; 1 << 20];
                while sock.write_all(&zeros).await.is_ok() {}
            });
        }
    });
    let p = project(
        "  unit-tests:\n    kind: regression\n    run: \"true\"\n",
        &format!("  - url: http://{addr}/hook\n"),
    );
    let (out, peak_kib) = relgate_peak_rss_kib(&p, &["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
    let peak_mib = peak_kib / 1024;
    assert!(
        peak_mib < 200,
        "relgate read {peak_mib} MiB of a webhook's answer into memory"
    );
}

/// Every file below `dir` whose bytes contain `needle`.
fn files_holding(dir: &std::path::Path, needle: &str) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            std::fs::read(e.path())
                .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        })
        .map(|e| e.path().display().to_string())
        .collect()
}

#[test]
fn the_webhook_secret_and_secret_url_a_gate_prints_never_reach_the_record() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hook = Hook::start(&rt, &[]);
    // Names the pipeline declares secret, though none of the usual markers is in them.
    let key = "hmac-key-0123456789";
    let url = format!("{}/T0/B0/slackish0123", hook.url());
    let p = project(
        "  unit-tests:\n    kind: regression\n    run: \"echo key=$HOOK_KEY url=$HOOK_URL; echo $HOOK_KEY >&2\"\n",
        "  - url_env: HOOK_URL\n    secret_env: HOOK_KEY\n",
    );
    let out = p.relgate_env(&["run", "1.0.0"], &[("HOOK_KEY", key), ("HOOK_URL", &url)]);
    expect_code(&out, exit::SUCCESS);
    assert_eq!(hook.requests().len(), 1);
    for secret in [key, url.as_str()] {
        let found = files_holding(p.path(), secret);
        assert!(found.is_empty(), "{secret} is in {found:?}");
        assert!(!stderr(&out).contains(secret), "{}", stderr(&out));
    }
    let report = p.relgate(&["report", "published/acme/1.0.0"]);
    assert!(!stdout(&report).contains(key));
}

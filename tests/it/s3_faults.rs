//! Faults moto will not show on demand, injected by a small proxy in front of it: server errors
//! (retried, then reported with the object and the status), a stall (timed out, not waited on
//! for ever), 409 ConditionalRequestConflict (retried), and an error answer that echoes the
//! request's credentials (never shown). After any failure nothing is published, and the next
//! run completes the release.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::s3_common::*;
use relgate::exit;

const URL: &str = "s3://releases/rel/acme/1.0.0";
const OBJECT: &str = "s3://releases/rel/acme/1.0.0/a.txt";

fn project(endpoint: &str) -> Project {
    let p = Project::new();
    p.release_key();
    p.write("dist/a.txt", b"a\n");
    p.write("dist/b.tar.gz", b"tarball\n");
    point_at(&p, endpoint);
    p
}

fn point_at(p: &Project, endpoint: &str) {
    let text = pipeline("").replace(
        "publish:\n  to: published/{project}/{version}\n",
        &format!(
            "publish:\n  to: s3://releases/rel/{{project}}/{{version}}\n  endpoint: {endpoint}\n"
        ),
    );
    p.write("pipeline.yaml", text.replace("gates:\n\n", "gates:\n"));
}

fn run(p: &Project, extra: &[(&str, &str)]) -> std::process::Output {
    p.relgate_env(&["run", "1.0.0"], &[aws_env(), extra.to_vec()].concat())
}

/// A rule answering the first `n` PUTs of a.txt with `status`/`body`, forwarding the rest.
fn first_puts(n: usize, status: u16, body: &str) -> Rule {
    let seen = AtomicUsize::new(0);
    let body = body.to_string();
    Arc::new(move |r: &Seen| {
        if r.is_put_of("/a.txt") && seen.fetch_add(1, Ordering::SeqCst) < n {
            Action::Answer(status, body.clone())
        } else {
            Action::Forward
        }
    })
}

const INTERNAL: &str = "<Error><Code>InternalError</Code><Message>injected</Message></Error>";

#[test]
fn server_errors_are_retried() {
    let moto = Moto::start();
    let _b = moto.bucket("releases");
    let proxy = Proxy::start(moto.port, first_puts(2, 500, INTERNAL));
    let p = project(&proxy.endpoint());
    expect_code(&run(&p, &[]), exit::SUCCESS);
    expect_code(&p.relgate_env(&["verify", URL], &aws_env()), exit::SUCCESS);
}

#[test]
fn a_persistent_server_error_is_reported_and_the_next_run_completes() {
    let moto = Moto::start();
    let b = moto.bucket("releases");
    let proxy = Proxy::start(moto.port, first_puts(usize::MAX, 500, INTERNAL));
    let p = project(&proxy.endpoint());
    let out = run(&p, &[]);
    expect_code(&out, exit::REFUSED);
    let err = stderr(&out);
    assert!(
        err.contains(OBJECT)
            && err.contains("HTTP 500 InternalError")
            && err.contains("after 4 attempts"),
        "{err}"
    );
    assert!(get(&b, "rel/acme/1.0.0/SHA256SUMS.sig").is_none());
    let out = p.relgate_env(&["verify", URL], &aws_env());
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("not published"), "{}", stderr(&out));

    // The server recovers: the same record resumes and publishes.
    point_at(&p, &moto.endpoint());
    expect_code(&run(&p, &[]), exit::SUCCESS);
    expect_code(&p.relgate_env(&["verify", URL], &aws_env()), exit::SUCCESS);
    expect_code(&p.relgate_env(&["replay", URL], &aws_env()), exit::SUCCESS);
}

#[test]
fn a_stalled_server_times_out_instead_of_hanging() {
    let moto = Moto::start();
    let _b = moto.bucket("releases");
    let rule: Rule = Arc::new(|r: &Seen| {
        if r.is_put_of("/a.txt") {
            Action::Stall
        } else {
            Action::Forward
        }
    });
    let proxy = Proxy::start(moto.port, rule);
    let p = project(&proxy.endpoint());
    let started = Instant::now();
    let out = run(&p, &[("RELGATE_HTTP_STALL_TIMEOUT", "1")]);
    expect_code(&out, exit::REFUSED);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "{:?}",
        started.elapsed()
    );
    let err = stderr(&out);
    assert!(
        err.contains(OBJECT) && (err.contains("timed out") || err.contains("stalled")),
        "{err}"
    );
}

#[test]
fn a_stalled_large_upload_times_out() {
    let moto = Moto::start();
    let _b = moto.bucket("releases");
    // The proxy reads nothing of the body: once the socket buffers are full the upload stops
    // moving while the client is still sending (the HTTP client's read timeout and relgate's
    // own upload watchdog both watch that; whichever fires first ends the attempt).
    let rule: Rule = Arc::new(|r: &Seen| {
        if r.is_put_of("/big.bin") {
            Action::Stall
        } else {
            Action::Forward
        }
    });
    let proxy = Proxy::start(moto.port, rule);
    let p = project(&proxy.endpoint());
    let big = vec![7u8; relgate::s3::upload::PART_SIZE as usize];
    p.write("dist/big.bin", &big);
    let started = Instant::now();
    let out = run(&p, &[("RELGATE_HTTP_STALL_TIMEOUT", "1")]);
    expect_code(&out, exit::REFUSED);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "{:?}",
        started.elapsed()
    );
    let err = stderr(&out);
    assert!(
        err.contains("big.bin") && (err.contains("stalled") || err.contains("timed out")),
        "{err}"
    );
}

#[test]
fn a_conditional_request_conflict_is_retried() {
    let moto = Moto::start();
    let _b = moto.bucket("releases");
    let conflict = "<Error><Code>ConditionalRequestConflict</Code>\
                    <Message>A conflicting conditional operation is in progress</Message></Error>";
    let proxy = Proxy::start(moto.port, first_puts(1, 409, conflict));
    let p = project(&proxy.endpoint());
    expect_code(&run(&p, &[]), exit::SUCCESS);
    expect_code(&p.relgate_env(&["verify", URL], &aws_env()), exit::SUCCESS);
}

#[test]
fn an_error_echoing_the_request_shows_no_credential() {
    let moto = Moto::start();
    let _b = moto.bucket("releases");
    // As S3's SignatureDoesNotMatch does: the canonical request (session token included) and
    // the key id come back in the answer.
    let rule: Rule = Arc::new(|r: &Seen| {
        if r.is_put_of("/a.txt") {
            let auth = r.header("authorization").unwrap_or("").to_string();
            let token = r.header("x-amz-security-token").unwrap_or("").to_string();
            Action::Answer(
                403,
                format!(
                    "<Error><Code>SignatureDoesNotMatch</Code><Message>no match for {KEY_ID} \
                     ({token})</Message><AWSAccessKeyId>{KEY_ID}</AWSAccessKeyId>\
                     <CanonicalRequest>x-amz-security-token:{token}\n{auth}</CanonicalRequest>\
                     </Error>"
                ),
            )
        } else {
            Action::Forward
        }
    });
    let proxy = Proxy::start(moto.port, rule);
    let p = project(&proxy.endpoint());
    let out = run(&p, &[]);
    expect_code(&out, exit::REFUSED);
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(
        e.contains("HTTP 403 SignatureDoesNotMatch") && e.contains(OBJECT),
        "{e}"
    );
    for s in [KEY_ID, SECRET, TOKEN, "Signature=", "Credential="] {
        assert!(!o.contains(s) && !e.contains(s), "{s} shown:\n{o}\n{e}");
    }
    let log = p.log("1.0.0");
    for s in [KEY_ID, SECRET, TOKEN] {
        assert!(!log.contains(s), "{s} recorded");
    }
}

/// A staged file that does not open is an error naming it, before anything is sent: not a
/// transport failure to retry (which read the same missing file three times over).
#[test]
fn a_staged_file_that_does_not_open_is_refused_unsent_and_not_retried() {
    let moto = Moto::start();
    let _b = moto.bucket("releases");
    let puts = Arc::new(AtomicUsize::new(0));
    let counted = puts.clone();
    let rule: Rule = Arc::new(move |r: &Seen| {
        if r.is_put_of("/gone.bin") {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        Action::Forward
    });
    let proxy = Proxy::start(moto.port, rule);
    let b = Moto::client(&proxy.endpoint(), "releases");
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone.bin");
    let err = block_on(relgate::s3::upload::put_create(
        &b,
        "rel/gone.bin",
        relgate::s3::body::Payload::File {
            path: gone.clone(),
            size: 1,
            sha256: "0".repeat(64),
        },
    ))
    .unwrap_err();
    assert!(
        matches!(&err, relgate::s3::S3Error::Io { path, .. } if *path == gone),
        "{err:?}"
    );
    assert_eq!(puts.load(Ordering::SeqCst), 0, "a request was sent");
}

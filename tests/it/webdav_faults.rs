//! Faults a real server will not show on demand, injected by a proxy in front of a real Apache
//! (`tests/it/dav/faults.rs`): each ends in a clear error naming the URL and what happened, and
//! nothing is at the final location, nor left beside it.

use crate::common::*;
use crate::dav;
use crate::dav::faults::{Fault, Proxy};
use crate::dav::*;
use relgate::exit;

/// Apache, a proxy in front of it with `fault`, and a project publishing through the proxy.
/// The project has a 4 MiB artefact, so a reset or a stall lands in the middle of a body.
fn setup(fault: Fault) -> (Apache, Proxy, Project) {
    let a = Apache::start();
    let proxy = Proxy::start(a.port, fault);
    let p = project_to(&proxy.url("rel/{project}/{version}"), "");
    p.write("dist/big.bin", vec![7u8; 4 << 20]);
    (a, proxy, p)
}

/// A short stall timeout keeps the tests quick.
fn quick(p: &Project) -> Vec<(String, String)> {
    let mut env = env(p);
    env.push(("RELGATE_HTTP_STALL_TIMEOUT".into(), "1".into()));
    env
}

/// The run failed with `what` in its message, and nothing is at the target or beside it.
#[track_caller]
fn refused_and_nothing_left(a: &Apache, p: &Project, out: &std::process::Output, what: &[&str]) {
    expect_code(out, exit::REFUSED);
    let err = stderr(out);
    assert!(err.contains("publish failed"), "{err}");
    for w in what {
        assert!(err.contains(w), "{w:?} not in:\n{err}");
    }
    assert_eq!(a.tree("rel/acme"), Vec::<String>::new(), "{err}");
    // The refusal is recorded, and the record still replays.
    let r = replay_in(p, &p.record("1.0.0"));
    assert!(r.ok, "{:?}", r.problem);
}

#[test]
fn a_server_failing_every_upload_ends_in_a_clear_error() {
    let (a, proxy, p) = setup(Fault::Status500(usize::MAX));
    let out = dav::relgate(&p, &["run", "1.0.0"], &quick(&p));
    refused_and_nothing_left(
        &a,
        &p,
        &out,
        &[
            "PUT http://127.0.0.1:",
            "/rel/acme/.1.0.0.partial-",
            "HTTP 500 Internal Server Error (after 3 attempts)",
        ],
    );
    // Idempotent PUTs were tried again, the MOVE never sent.
    assert!(proxy.seen("PUT") >= 3, "{:?}", proxy.seen);
    assert_eq!(proxy.seen("MOVE"), 0);
}

#[test]
fn a_passing_server_error_is_retried_and_the_release_lands() {
    let (a, proxy, p) = setup(Fault::Status500(2));
    let env = quick(&p);
    expect_code(&dav::relgate(&p, &["run", "1.0.0"], &env), exit::SUCCESS);
    let url = proxy.url("rel/acme/1.0.0");
    expect_code(&dav::relgate(&p, &["verify", &url], &env), exit::SUCCESS);
    assert!(a.tree("rel/acme").iter().all(|f| f.starts_with("1.0.0/")));
}

#[test]
fn a_connection_reset_in_the_middle_of_a_body_ends_in_a_clear_error() {
    let (a, _proxy, p) = setup(Fault::ResetMidBody(usize::MAX));
    let out = dav::relgate(&p, &["run", "1.0.0"], &quick(&p));
    refused_and_nothing_left(
        &a,
        &p,
        &out,
        &["PUT http://127.0.0.1:", "/big.bin: ", "(after 3 attempts)"],
    );
}

#[test]
fn a_reset_once_is_retried() {
    let (_a, proxy, p) = setup(Fault::ResetMidBody(1));
    let env = quick(&p);
    expect_code(&dav::relgate(&p, &["run", "1.0.0"], &env), exit::SUCCESS);
    let url = proxy.url("rel/acme/1.0.0");
    expect_code(&dav::relgate(&p, &["replay", &url], &env), exit::SUCCESS);
}

#[test]
fn a_stalled_upload_times_out() {
    let (a, _proxy, p) = setup(Fault::Stall);
    let started = std::time::Instant::now();
    let out = dav::relgate(&p, &["run", "1.0.0"], &quick(&p));
    refused_and_nothing_left(
        &a,
        &p,
        &out,
        &["PUT http://127.0.0.1:", "stalled, nothing moved for 1 s"],
    );
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

#[test]
fn a_listing_that_does_not_match_what_was_sent_stops_the_publish() {
    let (a, proxy, p) = setup(Fault::LyingPropfind);
    let out = dav::relgate(&p, &["run", "1.0.0"], &quick(&p));
    refused_and_nothing_left(
        &a,
        &p,
        &out,
        &[
            "is not what was sent",
            "a.txt is 3 bytes there, 2 bytes were sent",
        ],
    );
    assert_eq!(proxy.seen("MOVE"), 0);
}

#[test]
fn a_failed_move_leaves_nothing() {
    let (a, _proxy, p) = setup(Fault::Move500);
    let out = dav::relgate(&p, &["run", "1.0.0"], &quick(&p));
    refused_and_nothing_left(&a, &p, &out, &["MOVE http://127.0.0.1:", "HTTP 500"]);
}

#[test]
fn a_move_whose_answer_was_lost_is_recognised_as_done() {
    // The server moved the release, the answer never came back: relgate looks, finds its own
    // release (its SHA256SUMS and its log), and counts it as published.
    let (a, proxy, p) = setup(Fault::LoseMoveAnswer);
    let env = quick(&p);
    let out = dav::relgate(&p, &["run", "1.0.0"], &env);
    expect_code(&out, exit::SUCCESS);
    assert_eq!(proxy.seen("MOVE"), 1, "a MOVE is never sent twice");
    let url = proxy.url("rel/acme/1.0.0");
    expect_code(&dav::relgate(&p, &["replay", &url], &env), exit::SUCCESS);
    assert!(a.tree("rel/acme").iter().all(|f| f.starts_with("1.0.0/")));
}

#[test]
fn a_run_killed_after_the_move_before_recording_it_is_completed_by_the_next() {
    let (a, proxy, p) = setup(Fault::HoldMoveAnswer);
    let env = quick(&p);
    let mut child = dav::command(&p, &["run", "1.0.0"], &env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !proxy.moved.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(std::time::Instant::now() < deadline, "the MOVE never came");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Killed as a power cut would: the release is in place, the log ends with `publish`.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        p.log("1.0.0")
            .lines()
            .last()
            .unwrap()
            .contains("\"type\":\"publish\"")
    );
    proxy.set(Fault::None);
    let url = proxy.url("rel/acme/1.0.0");
    expect_code(&dav::relgate(&p, &["verify", &url], &env), exit::SUCCESS);
    let out = dav::relgate(&p, &["run", "1.0.0"], &env);
    expect_code(&out, exit::SUCCESS);
    assert!(
        shown(&out).contains("was interrupted after publishing"),
        "{}",
        shown(&out)
    );
    expect_code(&dav::relgate(&p, &["replay", &url], &env), exit::SUCCESS);
    assert!(replay_in(&p, &p.record("1.0.0")).ok);
    expect_code(&dav::relgate(&p, &["run", "1.0.0"], &env), exit::REFUSED);
    assert!(a.tree("rel/acme").iter().all(|f| f.starts_with("1.0.0/")));
}

#[test]
fn verify_by_url_streams_several_files_at_once() {
    let (_a, proxy, p) = setup(Fault::None);
    let env = env(&p);
    expect_code(&dav::relgate(&p, &["run", "1.0.0"], &env), exit::SUCCESS);
    // Each artefact's GET is answered only once another one is under way too.
    proxy.set(Fault::PairedGets);
    let url = proxy.url("rel/acme/1.0.0");
    let out = dav::relgate(&p, &["verify", &url], &env);
    expect_code(&out, exit::SUCCESS);
    assert!(proxy.seen("GET") >= 3, "{:?}", proxy.seen);
}

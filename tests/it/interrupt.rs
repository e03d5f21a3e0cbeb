//! Timeouts and Ctrl-C: the whole process group is killed (no orphan survives), the abort is
//! recorded, and the next run resumes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use relgate::exit;

fn wait_for(path: &std::path::Path, limit: Duration) -> String {
    let t0 = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s;
        }
        assert!(t0.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until the release log holds a verdict line for every gate in `gates`.
fn wait_for_verdicts(p: &Project, gates: &[&str], limit: Duration) {
    let log = p.record("1.0.0").join("log.jsonl");
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let judged = |g: &&str| {
            text.lines().any(|l| {
                l.contains("\"type\":\"gate-verdict\"") && l.contains(&format!("\"gate\":\"{g}\""))
            })
        };
        if gates.iter().all(judged) {
            return;
        }
        assert!(
            t0.elapsed() < limit,
            "no verdict for {gates:?} in {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Start `relgate run 1.0.0`, wait until the gate wrote `bg.pid` and every gate in `settled`
/// has its verdict in the log, send `signal`; returns the run's output and the background pid.
fn run_and_signal(p: &Project, signal: &str, settled: &[&str]) -> (std::process::Output, String) {
    let child = Command::new(BIN)
        .current_dir(p.path())
        .args(["run", "1.0.0"])
        .env_remove("RELGATE_OPERATOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let bg = wait_for(&p.join("bg.pid"), Duration::from_secs(20));
    // On a loaded machine the quick gate may not have been judged yet when the slow one starts.
    wait_for_verdicts(p, settled, Duration::from_secs(30));
    let t0 = Instant::now();
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let out = child.wait_with_output().expect("wait");
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "relgate did not stop promptly"
    );
    (out, bg)
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let p = project_with(
        "  hangs:\n    kind: regression\n    run: sleep 300 & echo $! > bg.pid; sleep 300\n    timeout: 1s\n",
    );
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("relgate: hangs: red: timeout"),
        "{}",
        stderr(&out)
    );
    let bg = p.read("bg.pid");
    assert!(
        !alive(bg.trim().parse().expect("pid")),
        "background process {bg} survived the timeout"
    );
}

#[test]
fn ctrl_c_stops_gates_records_the_abort_and_the_next_run_resumes() {
    let p = project_with(
        "  quick:\n    kind: regression\n    run: echo x >> quick.txt\n    inputs: []\n  hangs:\n    kind: regression\n    run: test -f done || { sleep 300 & echo $! > bg.pid; sleep 300; }\n",
    );
    let (out, bg) = run_and_signal(&p, "-INT", &["quick"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stderr(&out).contains("relgate: hangs: aborted"),
        "{}",
        stderr(&out)
    );
    assert!(
        !alive(bg.trim().parse().expect("pid")),
        "background process {bg} survived Ctrl-C"
    );
    let log = p.log("1.0.0");
    assert!(log.contains("\"gate-aborted\""), "{log}");
    assert!(log.contains("\"decision\":\"aborted\""), "{log}");
    expect_code(
        &p.relgate(&["replay", p.record("1.0.0").to_str().expect("utf8")]),
        exit::SUCCESS,
    );

    // The next run resumes: the green gate is kept, the interrupted one runs again.
    p.write("done", b"");
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::SUCCESS);
    assert_eq!(p.read("quick.txt").lines().count(), 1);
}

#[test]
fn sigterm_is_handled_like_ctrl_c() {
    let p = project_with(
        "  hangs:\n    kind: regression\n    run: sleep 300 & echo $! > bg.pid; sleep 300\n",
    );
    let (out, bg) = run_and_signal(&p, "-TERM", &[]);
    expect_code(&out, exit::REFUSED);
    assert!(
        !alive(bg.trim().parse().expect("pid")),
        "background process {bg} survived SIGTERM"
    );
    assert!(p.log("1.0.0").contains("\"decision\":\"aborted\""));
}

//! The `regression` gate end to end at library level: real commands through `collect`, then
//! `judge` on the evidence and the evidence store, as the engine and replay do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{alive, codes, library};
use relgate::digest::sha256_hex;
use relgate::gates::regression::{self, JunitState, RegressionEvidence};
use relgate::gates::{CollectContext, CollectError, Verdict};
use relgate::model::{Command, GateKind, GateSpec, RegressionSpec};
use relgate::record::{Blobs, Record};
use relgate::stage::{self, ArtefactFile};
use tokio::sync::watch;

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    cx: CollectContext,
    cancel: watch::Sender<bool>,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("project");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.txt"), b"artefact\n").unwrap();
        let record = Record::new(tmp.path().join("record"));
        let staged = stage::stage(
            &root,
            &[ArtefactFile {
                pattern: "a.txt".into(),
                source: "a.txt".into(),
                release_path: "a.txt".into(),
            }],
            &record.dir.join("staged").join("s"),
            1,
        )
        .unwrap();
        let pipeline = library::pipeline(&root, "demo-project", &["a.txt"], vec![]);
        let (cx, cancel) = library::collect_context(pipeline, record, staged, "1.2.3");
        Env {
            _tmp: tmp,
            root,
            cx,
            cancel,
        }
    }

    fn spec(&self, run: Command) -> RegressionSpec {
        RegressionSpec {
            run,
            dir: self.root.clone(),
            env: BTreeMap::new(),
            junit: vec![],
            min_tests: None,
            inputs: None,
        }
    }

    async fn collect(&self, spec: &RegressionSpec, timeout_secs: u64) -> RegressionEvidence {
        let gate = gate(spec, timeout_secs);
        let ev = regression::collect(&gate, spec, &self.cx).await.unwrap();
        // The engine records evidence as JSON and replay reads it back: go through that.
        let json = serde_json::to_value(&ev).unwrap();
        serde_json::from_value(json).unwrap()
    }

    fn judge(&self, spec: &RegressionSpec, ev: &RegressionEvidence) -> Verdict {
        let cx = library::judge_context(&self.cx, None);
        regression::judge(spec, ev, &cx)
    }

    fn blob(&self, digest: &str) -> Vec<u8> {
        self.cx.record.get(digest).unwrap()
    }

    fn stdout(&self, ev: &RegressionEvidence) -> String {
        assert!(ev.stdout.tail.is_none(), "stdout was truncated");
        String::from_utf8(self.blob(&ev.stdout.head)).unwrap()
    }
}

fn gate(spec: &RegressionSpec, timeout_secs: u64) -> GateSpec {
    GateSpec {
        id: "unit-tests".into(),
        needs: vec![],
        timeout_secs,
        when: None,
        kind: GateKind::Regression(spec.clone()),
    }
}

fn sh(script: &str) -> Command {
    Command::Shell(script.into())
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/junit")
        .join(name)
}

/// Live (non-zombie) processes whose process group is `pgid`, read from /proc.
fn live_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            out.push(pid);
        }
    }
    out
}

fn pids_in(path: &Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn passing_command_is_green_and_its_output_is_stored() {
    let t = Env::new();
    let spec = t.spec(sh("echo hello; echo oops >&2"));
    let ev = t.collect(&spec, 60).await;
    assert_eq!(ev.process.exit_code, Some(0));
    assert_eq!(t.stdout(&ev), "hello\n");
    assert_eq!(t.blob(&ev.stderr.head), b"oops\n");
    assert_eq!(ev.stdout.sha256, sha256_hex(b"hello\n"));
    assert!(ev.stdout.complete && ev.stderr.complete);
    assert!(!ev.process.strays_killed);
    assert_eq!(t.judge(&spec, &ev), Verdict::green());
}

#[tokio::test]
async fn failing_command_is_red_with_its_exit_status() {
    let t = Env::new();
    let spec = t.spec(sh("echo failing; exit 3"));
    let ev = t.collect(&spec, 60).await;
    assert_eq!(ev.process.exit_code, Some(3));
    let v = t.judge(&spec, &ev);
    assert_eq!(codes(&v), ["command-failed"]);
    assert_eq!(v.reasons[0].message, "the command exited with status 3");
}

#[tokio::test]
async fn command_killed_by_a_signal_is_red() {
    let t = Env::new();
    let spec = t.spec(sh("kill -KILL $$"));
    let ev = t.collect(&spec, 60).await;
    assert_eq!(ev.process.signal, Some(9));
    assert_eq!(codes(&t.judge(&spec, &ev)), ["command-signalled"]);
}

#[tokio::test]
async fn passing_command_with_a_failing_junit_report_is_red() {
    let t = Env::new();
    let mut spec = t.spec(sh("mkdir -p target/junit && cp \"$FIXTURE\" target/junit/"));
    spec.env.insert(
        "FIXTURE".into(),
        fixture("nextest-failing.xml").display().to_string(),
    );
    spec.junit = vec!["target/junit/*.xml".into()];
    let ev = t.collect(&spec, 60).await;
    assert_eq!(ev.process.exit_code, Some(0));
    assert_eq!(ev.junit.len(), 1);
    assert_eq!(ev.junit[0].path, "target/junit/nextest-failing.xml");
    let JunitState::Fresh { sha256, .. } = &ev.junit[0].state else {
        panic!("not fresh: {:?}", ev.junit[0]);
    };
    assert_eq!(
        t.blob(sha256),
        std::fs::read(fixture("nextest-failing.xml")).unwrap()
    );
    let v = t.judge(&spec, &ev);
    assert_eq!(codes(&v), ["tests-failed"]);
    assert_eq!(
        v.reasons[0].message,
        "1 test failed: tinycalc::tests::adds_wrongly at src/lib.rs:9:25: assertion `left == right` failed: two and two"
    );
}

#[tokio::test]
async fn passing_report_with_too_few_tests_is_red() {
    let t = Env::new();
    let mut spec = t.spec(sh("cp \"$FIXTURE\" junit.xml"));
    spec.env.insert(
        "FIXTURE".into(),
        fixture("nextest-passing.xml").display().to_string(),
    );
    spec.junit = vec!["junit.xml".into()];
    spec.min_tests = Some(3);
    let ev = t.collect(&spec, 60).await;
    let v = t.judge(&spec, &ev);
    assert_eq!(codes(&v), ["too-few-tests"]);
    assert_eq!(v.reasons[0].message, "ran 2 tests, need at least 3");
    spec.min_tests = Some(2);
    assert!(t.judge(&spec, &ev).is_green());
    let tally = ev.tests.as_ref().unwrap();
    assert_eq!((tally.executed, tally.passed), (2, 2));
}

#[tokio::test]
async fn flaky_tests_are_green_and_listed_in_the_notes() {
    let t = Env::new();
    let mut spec = t.spec(sh("cp \"$FIXTURE\" junit.xml"));
    spec.env.insert(
        "FIXTURE".into(),
        fixture("nextest-flaky.xml").display().to_string(),
    );
    spec.junit = vec!["junit.xml".into()];
    let ev = t.collect(&spec, 60).await;
    assert!(t.judge(&spec, &ev).is_green());
    assert_eq!(
        ev.notes,
        ["passed on retry (flaky): tinycalc::flaky::passes_on_second_try"]
    );
}

#[tokio::test]
async fn argv_runs_without_a_shell() {
    let t = Env::new();
    let spec = t.spec(Command::Argv(vec![
        "printf".into(),
        "%s|%s\n".into(),
        "$(touch pwned)".into(),
        "a b; touch pwned2".into(),
    ]));
    let ev = t.collect(&spec, 60).await;
    assert_eq!(ev.process.exit_code, Some(0));
    assert_eq!(t.stdout(&ev), "$(touch pwned)|a b; touch pwned2\n");
    assert!(!t.root.join("pwned").exists());
    assert!(!t.root.join("pwned2").exists());
    assert!(t.judge(&spec, &ev).is_green());
}

#[tokio::test]
async fn command_gets_the_relgate_variables_and_its_env() {
    let t = Env::new();
    let mut spec = t.spec(sh(
        "printf '%s\\n' \"$RELGATE_PROJECT\" \"$RELGATE_VERSION\" \"$RELGATE_RECORD\" \"$EXTRA\" \"$(pwd)\"",
    ));
    spec.env.insert("EXTRA".into(), "x y".into());
    // The pipeline cannot pass off another version.
    spec.env.insert("RELGATE_VERSION".into(), "9.9.9".into());
    std::fs::create_dir_all(t.root.join("sub")).unwrap();
    spec.dir = t.root.join("sub");
    let ev = t.collect(&spec, 60).await;
    let expected = format!(
        "demo-project\n1.2.3\n{}\nx y\n{}\n",
        t.cx.record.dir.display(),
        t.root.join("sub").display()
    );
    assert_eq!(t.stdout(&ev), expected);
}

#[tokio::test]
async fn timeout_kills_the_whole_group_including_a_background_grandchild() {
    let t = Env::new();
    let spec = t.spec(sh("echo $$ > pids; sleep 300 & echo $! >> pids; sleep 300"));
    let started = Instant::now();
    let ev = t.collect(&spec, 1).await;
    assert!(started.elapsed() < Duration::from_secs(20), "took too long");
    assert!(ev.process.timed_out);
    let pgid = ev.process.pgid.unwrap();
    let pids = pids_in(&t.root.join("pids"));
    assert_eq!(pids.len(), 2);
    // The group is led by the command's supervisor, which is gone too.
    assert!(!alive(pgid));
    assert!(live_members(pgid).is_empty(), "{:?}", live_members(pgid));
    assert!(pids.iter().all(|p| !alive(*p)));
    let v = t.judge(&spec, &ev);
    assert_eq!(codes(&v), ["timeout"]);
    assert_eq!(
        v.reasons[0].message,
        "the command did not finish within 1s; its process group was killed"
    );
}

#[tokio::test]
async fn timeout_escalates_to_sigkill_when_sigterm_is_ignored() {
    let t = Env::new();
    let spec = t.spec(sh(
        "trap '' TERM; echo $$ > pids; sleep 300 & echo $! >> pids; sleep 300",
    ));
    let ev = t.collect(&spec, 1).await;
    assert!(ev.process.timed_out);
    assert_eq!(ev.process.signal, Some(9));
    let pgid = ev.process.pgid.unwrap();
    assert!(live_members(pgid).is_empty(), "{:?}", live_members(pgid));
    assert!(pids_in(&t.root.join("pids")).iter().all(|p| !alive(*p)));
}

#[tokio::test]
async fn background_child_holding_stdout_is_killed_when_the_command_exits() {
    let t = Env::new();
    let spec = t.spec(sh("sleep 300 & echo $! > pids; echo done"));
    let started = Instant::now();
    let ev = t.collect(&spec, 600).await;
    assert!(started.elapsed() < Duration::from_secs(20), "took too long");
    assert_eq!(ev.process.exit_code, Some(0));
    assert!(ev.process.strays_killed);
    assert_eq!(
        ev.notes,
        ["processes left running by the command were killed"]
    );
    assert_eq!(t.stdout(&ev), "done\n");
    assert!(ev.stdout.complete);
    assert!(live_members(ev.process.pgid.unwrap()).is_empty());
    assert!(pids_in(&t.root.join("pids")).iter().all(|p| !alive(*p)));
    assert!(t.judge(&spec, &ev).is_green());
}

#[tokio::test]
async fn an_escaped_process_that_ignores_sigterm_is_killed_and_counted() {
    let t = Env::new();
    // Leaves the group and the session, ignores SIGTERM, and its parent is gone at once.
    let spec = t.spec(sh(
        "( setsid sh -c 'trap \"\" TERM; echo $$ > pids; while :; do sleep 1; done' </dev/null >/dev/null 2>&1 & ); \
         while [ ! -s pids ]; do sleep 0.05; done",
    ));
    let started = Instant::now();
    let ev = t.collect(&spec, 60).await;
    assert!(started.elapsed() < Duration::from_secs(15), "took too long");
    assert_eq!(ev.process.exit_code, Some(0));
    assert!(ev.process.strays_killed);
    assert!(ev.process.escaped_killed >= 1, "{:?}", ev.process);
    assert_eq!(ev.process.unaccounted, None);
    assert!(pids_in(&t.root.join("pids")).iter().all(|p| !alive(*p)));
    assert_eq!(codes(&t.judge(&spec, &ev)), ["process-escaped"]);
}

#[tokio::test]
async fn timeout_kills_an_escaped_process_too() {
    let t = Env::new();
    let spec = t.spec(sh(
        "setsid sh -c 'echo $$ > pids; exec sleep 300' </dev/null >/dev/null 2>&1 & sleep 300",
    ));
    let ev = t.collect(&spec, 1).await;
    assert!(ev.process.timed_out);
    assert_eq!(ev.process.escaped_killed, 1, "{:?}", ev.process);
    assert!(pids_in(&t.root.join("pids")).iter().all(|p| !alive(*p)));
    assert_eq!(codes(&t.judge(&spec, &ev)), ["timeout", "process-escaped"]);
}

#[tokio::test]
async fn cancellation_kills_the_group_and_aborts_the_gate() {
    let t = Env::new();
    let spec = t.spec(sh("echo $$ > pids; sleep 300 & echo $! >> pids; sleep 300"));
    let gate = gate(&spec, 600);
    let cx = t.cx.clone();
    let spec2 = spec.clone();
    let task = tokio::spawn(async move { regression::collect(&gate, &spec2, &cx).await });
    // Wait until both processes are up, then interrupt.
    let pids_file = t.root.join("pids");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&pids_file)
        .map(|s| s.lines().count() < 2)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    t.cancel.send(true).unwrap();
    let result = task.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "took too long");
    // An interrupted gate has no verdict: the engine records it as aborted.
    assert!(
        matches!(result, Err(CollectError::Interrupted)),
        "{result:?}"
    );
    let pids = pids_in(&pids_file);
    assert!(
        live_members(pids[0]).is_empty(),
        "{:?}",
        live_members(pids[0])
    );
    assert!(pids.iter().all(|p| !alive(*p)));
}

#[tokio::test]
async fn already_cancelled_run_starts_nothing() {
    let t = Env::new();
    t.cancel.send(true).unwrap();
    let spec = t.spec(sh("touch started"));
    let result = regression::collect(&gate(&spec, 60), &spec, &t.cx).await;
    assert!(matches!(result, Err(CollectError::Interrupted)));
    assert!(!t.root.join("started").exists());
}

#[tokio::test]
async fn huge_output_is_kept_bounded_and_hashed_in_full() {
    const N: usize = 20_000_000;
    let t = Env::new();
    // Both streams at once: reading them one after the other would deadlock.
    let spec = t.spec(sh(&format!(
        "yes 0123456789 | head -c {N} >&2 & yes 0123456789 | head -c {N}; wait"
    )));
    let ev = t.collect(&spec, 120).await;
    assert_eq!(ev.process.exit_code, Some(0));
    let printed: Vec<u8> = b"0123456789\n".iter().copied().cycle().take(N).collect();
    let digest = sha256_hex(&printed);
    assert_eq!(ev.notes.len(), 2, "{:?}", ev.notes);
    assert!(ev.notes[0].starts_with("stdout: 20000000 bytes"));
    for s in [&ev.stdout, &ev.stderr] {
        assert!(s.complete);
        assert_eq!(s.len, N as u64);
        assert_eq!(s.sha256, digest);
        let head = t.blob(&s.head);
        let tail = t.blob(s.tail.as_ref().unwrap());
        assert_eq!(head, &printed[..regression::HEAD_BYTES]);
        assert_eq!(tail, &printed[N - regression::TAIL_BYTES..]);
        assert_eq!(s.omitted, (N - head.len() - tail.len()) as u64);
    }
    assert!(t.judge(&spec, &ev).is_green());
}

#[tokio::test]
async fn stale_junit_report_is_ignored() {
    let t = Env::new();
    let reports = t.root.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::copy(fixture("nextest-passing.xml"), reports.join("old.xml")).unwrap();
    let st = std::process::Command::new("touch")
        .args(["-d", "1 hour ago"])
        .arg(reports.join("old.xml"))
        .status()
        .unwrap();
    assert!(st.success());
    let mut spec = t.spec(sh("true"));
    spec.junit = vec!["reports/*.xml".into()];
    let ev = t.collect(&spec, 60).await;
    assert_eq!(ev.junit.len(), 1);
    assert_eq!(ev.junit[0].state, JunitState::Stale);
    assert_eq!(ev.notes, ["reports/old.xml: older than the run, ignored"]);
    let v = t.judge(&spec, &ev);
    assert_eq!(codes(&v), ["junit-missing"]);
    assert_eq!(
        v.reasons[0].message,
        "no JUnit report written by this run matched reports/*.xml (1 older report ignored)"
    );

    // A fresh failing report next to the stale passing one: only the fresh one counts.
    let mut spec = t.spec(sh("cp \"$FIXTURE\" reports/new.xml"));
    spec.env.insert(
        "FIXTURE".into(),
        fixture("pytest-failing.xml").display().to_string(),
    );
    spec.junit = vec!["reports/*.xml".into()];
    let ev = t.collect(&spec, 60).await;
    let states: Vec<_> = ev
        .junit
        .iter()
        .map(|f| (f.path.as_str(), matches!(f.state, JunitState::Fresh { .. })))
        .collect();
    assert_eq!(
        states,
        [("reports/new.xml", true), ("reports/old.xml", false)]
    );
    assert_eq!(codes(&t.judge(&spec, &ev)), ["tests-failed"]);
}

#[tokio::test]
async fn unparsable_report_is_red() {
    let t = Env::new();
    let mut spec = t.spec(sh("echo '<testsuite><testcase name=\"x\">' > junit.xml"));
    spec.junit = vec!["junit.xml".into()];
    let ev = t.collect(&spec, 60).await;
    let v = t.judge(&spec, &ev);
    assert_eq!(codes(&v), ["junit-unparsable"]);
    assert!(v.reasons[0].message.starts_with("junit.xml: "));
}

#[tokio::test]
async fn missing_program_and_missing_folder_are_spawn_failures() {
    let t = Env::new();
    let spec = t.spec(Command::Argv(vec!["relgate-no-such-program".into()]));
    let ev = t.collect(&spec, 60).await;
    assert!(ev.process.spawn_error.is_some());
    let v = t.judge(&spec, &ev);
    assert_eq!(codes(&v), ["spawn-failed"]);
    assert!(v.reasons[0].message.contains("relgate-no-such-program"));

    let mut spec = t.spec(sh("true"));
    spec.dir = t.root.join("nope");
    let ev = t.collect(&spec, 60).await;
    let v = t.judge(&spec, &ev);
    assert_eq!(codes(&v), ["spawn-failed"]);
    assert!(v.reasons[0].message.contains("does not exist"), "{v:?}");
}

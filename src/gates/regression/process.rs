//! Running the gate's command under a supervisor (see [`super::supervise`]) in its own process
//! group, with a timeout, cancellation, and bounded capture of stdout and stderr. When the
//! supervisor has exited, every process the command started is gone: its group, and any
//! process that left the group.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use super::capture::{Bounded, Finished};
use super::supervise::{self, ReportPipe, TERM_GRACE};
use crate::model::Command;

/// How long the supervisor gets to kill everything once asked to, before its whole group is
/// killed instead (it gives up on unkillable processes after its own limit, which is shorter).
const STOP_LIMIT: Duration = Duration::from_secs(20);
/// How long the pipe readers get to reach end of file once the group is gone. Longer only
/// when a process left the group (setsid) and still holds the pipe: we stop reading then.
const READER_GRACE: Duration = Duration::from_secs(2);

/// What happened to the process.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessRecord {
    /// Wall-clock start, Unix milliseconds (informational; judges do not read the clock).
    pub started_unix_ms: i64,
    /// From spawn until every process of the command was gone.
    pub duration_ms: u64,
    pub timeout_secs: u64,
    /// The command's process group id (the process id of its supervisor, which leads it).
    pub pgid: Option<u32>,
    pub exit_code: Option<i32>,
    /// The signal that ended the main process, if any.
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub interrupted: bool,
    /// Why the command could not be started.
    pub spawn_error: Option<String>,
    /// Processes were still alive after the main process exited and were killed.
    pub strays_killed: bool,
    /// How many of those had left the command's process group (`setsid`, `setpgid`).
    #[serde(default)]
    pub escaped_killed: u32,
    /// Why the command's processes cannot all be accounted for (the supervisor was killed, could
    /// not read `/proc`, or could not kill some): processes may have outlived the gate.
    #[serde(default)]
    pub unaccounted: Option<String>,
}

/// What to run.
pub struct Launch<'a> {
    pub command: &'a Command,
    pub dir: &'a Path,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub cancel: watch::Receiver<bool>,
}

pub struct Outcome {
    pub process: ProcessRecord,
    pub stdout: (Finished, bool),
    pub stderr: (Finished, bool),
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn empty() -> (Finished, bool) {
    (Bounded::default().finish(), true)
}

fn not_started(mut process: ProcessRecord, error: String) -> Outcome {
    process.spawn_error = Some(error);
    Outcome {
        process,
        stdout: empty(),
        stderr: empty(),
    }
}

/// Run the command to its end (or its timeout, or cancellation). Never fails: a command that
/// cannot be started is recorded as such.
#[expect(
    clippy::too_many_lines,
    reason = "a sequence of steps not yet split into functions (issue 15)"
)]
pub async fn run(launch: Launch<'_>) -> Outcome {
    let mut process = ProcessRecord {
        started_unix_ms: unix_ms(SystemTime::now()),
        timeout_secs: launch.timeout.as_secs(),
        ..ProcessRecord::default()
    };
    let mut cancel = launch.cancel;
    if *cancel.borrow() {
        process.interrupted = true;
        return Outcome {
            process,
            stdout: empty(),
            stderr: empty(),
        };
    }
    let mut cmd = match launch.command {
        Command::Shell(script) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").arg(script);
            c
        }
        Command::Argv(argv) => {
            let Some((program, args)) = argv.split_first() else {
                return not_started(process, "the command's argv is empty".into());
            };
            let mut c = tokio::process::Command::new(program);
            c.args(args);
            c
        }
    };
    // Checked here because spawn reports a missing folder as ENOENT, like a missing program.
    if !launch.dir.is_dir() {
        return not_started(
            process,
            format!("working folder {} does not exist", launch.dir.display()),
        );
    }
    let mut pipe = match ReportPipe::new() {
        Ok(p) => p,
        Err(e) => {
            return not_started(
                process,
                format!("cannot prepare the command's supervisor: {e}"),
            );
        }
    };
    cmd.current_dir(launch.dir)
        .envs(launch.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    pipe.install(&mut cmd);

    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let what = match launch.command {
                Command::Shell(_) => "sh".to_string(),
                Command::Argv(v) => v.first().cloned().unwrap_or_default(),
            };
            return not_started(process, format!("cannot start {what:?}: {e}"));
        }
    };
    pipe.spawned();
    let supervisor = child.id().and_then(|p| i32::try_from(p).ok());
    process.pgid = child.id();
    // Whatever happens to this future from here on (even being dropped), everything dies.
    let mut guard = Guard { supervisor };

    let (stop_tx, stop_rx) = watch::channel(false);
    let out = tokio::spawn(drain(child.stdout.take(), stop_rx.clone()));
    let err = tokio::spawn(drain(child.stderr.take(), stop_rx));

    enum End {
        Exited(std::io::Result<std::process::ExitStatus>),
        TimedOut,
        Cancelled,
    }
    let end = tokio::select! {
        status = child.wait() => End::Exited(status),
        () = tokio::time::sleep(launch.timeout) => End::TimedOut,
        () = cancelled(&mut cancel) => End::Cancelled,
    };
    let status = match end {
        // The supervisor exits only once every process of the command is gone.
        End::Exited(status) => status,
        End::TimedOut | End::Cancelled => {
            process.timed_out = matches!(end, End::TimedOut);
            process.interrupted = matches!(end, End::Cancelled);
            match supervisor {
                Some(pid) => terminate(&mut child, pid).await,
                None => child.wait().await,
            }
        }
    };
    process.duration_ms = elapsed_ms(started);
    guard.disarm();
    settle(&mut process, status, pipe.account());

    // Readers end at end of file once every holder of the pipes is gone. Only a process outside
    // the command's tree (one it handed the pipe to) can hold them now; stop after a grace.
    let joined = async { (out.await, err.await) };
    tokio::pin!(joined);
    let (out, err) = match tokio::time::timeout(READER_GRACE, &mut joined).await {
        Ok(r) => r,
        Err(_) => {
            let _ = stop_tx.send(true);
            joined.await
        }
    };
    Outcome {
        process,
        stdout: out.unwrap_or_else(|_| (Bounded::default().finish(), false)),
        stderr: err.unwrap_or_else(|_| (Bounded::default().finish(), false)),
    }
}

/// Fill in how the command ended from the supervisor's account (or, without one, from the
/// supervisor's own exit status, which mirrors the command's).
fn settle(
    process: &mut ProcessRecord,
    status: std::io::Result<std::process::ExitStatus>,
    account: Option<supervise::Account>,
) {
    use std::os::unix::process::ExitStatusExt;
    let status = match (account.and_then(|a| a.main_status), status) {
        (Some(raw), _) => std::process::ExitStatus::from_raw(raw),
        (None, Ok(s)) => s,
        (None, Err(e)) => {
            process.spawn_error = Some(format!("cannot wait for the command: {e}"));
            return;
        }
    };
    process.exit_code = status.code();
    process.signal = status.signal();
    let Some(a) = account else {
        process.unaccounted =
            Some("the command's supervisor ended without an account of its processes".into());
        return;
    };
    process.strays_killed = a.strays > 0;
    process.escaped_killed = a.escaped;
    if a.blind {
        process.unaccounted =
            Some("/proc could not be read: only the command's process group was killed".into());
    } else if a.survivors > 0 {
        process.unaccounted = Some(format!(
            "{} process{} could not be killed and may still run",
            a.survivors,
            if a.survivors == 1 { "" } else { "es" }
        ));
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

async fn cancelled(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|c| *c).await.is_err() {
        // The sender is gone: nobody can cancel any more.
        std::future::pending::<()>().await;
    }
}

/// Read a pipe to its end (or until told to stop), keeping a bounded copy.
/// Returns the capture and whether it reached end of file.
async fn drain<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    mut stop: watch::Receiver<bool>,
) -> (Finished, bool) {
    let mut acc = Bounded::default();
    let Some(mut pipe) = pipe else {
        return (acc.finish(), true);
    };
    let mut buf = vec![0u8; 64 * 1024];
    let complete = loop {
        tokio::select! {
            r = pipe.read(&mut buf) => match r {
                Ok(0) => break true,
                Ok(n) => acc.push(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break false,
            },
            _ = stop.wait_for(|s| *s) => break false,
        }
    };
    (acc.finish(), complete)
}

/// SIGTERM the command's group (the supervisor ignores it), give it [`TERM_GRACE`], then ask
/// the supervisor to kill everything; if even the supervisor does not end, SIGKILL the group.
async fn terminate(
    child: &mut tokio::process::Child,
    supervisor: i32,
) -> std::io::Result<std::process::ExitStatus> {
    signal_group(supervisor, libc::SIGTERM);
    if let Ok(status) = tokio::time::timeout(TERM_GRACE, child.wait()).await {
        return status;
    }
    supervise::stop(supervisor);
    if let Ok(status) = tokio::time::timeout(STOP_LIMIT, child.wait()).await {
        return status;
    }
    signal_group(supervisor, libc::SIGKILL);
    child.wait().await
}

/// Send `signal` to every process in group `pgid`.
#[expect(
    unsafe_code,
    reason = "kill(2) has no safe wrapper among our dependencies"
)]
fn signal_group(pgid: i32, signal: i32) {
    // pgid 0 would be our own group and -1 every process we may signal: never.
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes two integers and touches no memory of this process; the negative
    // pid addresses exactly the process group `pgid`, which the guard above keeps > 1.
    unsafe { libc::kill(-pgid, signal) };
}

/// Asks the supervisor to kill everything when dropped: if the collect future is dropped
/// mid-run (the engine gave up on it), no process of the command outlives it.
struct Guard {
    supervisor: Option<i32>,
}

impl Guard {
    /// The supervisor has exited; its id may be reused from now on, so never signal it.
    fn disarm(&mut self) {
        self.supervisor = None;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(pid) = self.supervisor {
            supervise::stop(pid);
        }
    }
}

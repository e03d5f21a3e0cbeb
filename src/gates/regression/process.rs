//! Running the gate's command in its own process group, with a timeout, cancellation, and
//! bounded capture of stdout and stderr; the whole group is killed when the command ends.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use super::capture::{Bounded, Finished};
use crate::model::Command;

/// How long a group gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// How long the pipe readers get to reach end of file once the group is gone. Longer only
/// when a process left the group (setsid) and still holds the pipe: we stop reading then.
const READER_GRACE: Duration = Duration::from_secs(2);
/// How often to look whether a signalled group is gone.
const POLL: Duration = Duration::from_millis(20);

/// What happened to the process.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessRecord {
    /// Wall-clock start, Unix milliseconds (informational; judges do not read the clock).
    pub started_unix_ms: i64,
    /// From spawn to the main process's exit.
    pub duration_ms: u64,
    pub timeout_secs: u64,
    /// The process id of the command, which is also its process group id.
    pub pgid: Option<u32>,
    pub exit_code: Option<i32>,
    /// The signal that ended the main process, if any.
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub interrupted: bool,
    /// Why the command could not be started.
    pub spawn_error: Option<String>,
    /// Members of the group were still alive after the main process exited and were killed.
    pub strays_killed: bool,
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
    cmd.current_dir(launch.dir)
        .envs(launch.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);

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
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    process.pgid = child.id();
    // Whatever happens to this future from here on (even being dropped), the group dies.
    let mut guard = GroupGuard { pgid };

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
        End::Exited(status) => {
            process.duration_ms = elapsed_ms(started);
            // A background child may live on and hold the pipes open: end the group too.
            if let Some(pgid) = pgid
                && group_alive(pgid)
            {
                process.strays_killed = true;
                terminate_group(pgid).await;
            }
            status
        }
        End::TimedOut | End::Cancelled => {
            process.timed_out = matches!(end, End::TimedOut);
            process.interrupted = matches!(end, End::Cancelled);
            if let Some(pgid) = pgid {
                terminate_group(pgid).await;
            }
            let status = child.wait().await;
            process.duration_ms = elapsed_ms(started);
            status
        }
    };
    match status {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            process.exit_code = s.code();
            process.signal = s.signal();
        }
        Err(e) => process.spawn_error = Some(format!("cannot wait for the command: {e}")),
    }

    // Readers end at end of file once every holder of the pipes is gone; a process that left
    // the group (setsid) may hold them forever, so stop reading after a grace period.
    let joined = async { (out.await, err.await) };
    tokio::pin!(joined);
    let (out, err) = match tokio::time::timeout(READER_GRACE, &mut joined).await {
        Ok(r) => r,
        Err(_) => {
            let _ = stop_tx.send(true);
            joined.await
        }
    };
    guard.disarm();
    Outcome {
        process,
        stdout: out.unwrap_or_else(|_| (Bounded::default().finish(), false)),
        stderr: err.unwrap_or_else(|_| (Bounded::default().finish(), false)),
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

/// SIGTERM the group, give it [`TERM_GRACE`], then SIGKILL whatever is left.
async fn terminate_group(pgid: i32) {
    if !signal_group(pgid, libc::SIGTERM) {
        return;
    }
    let deadline = Instant::now() + TERM_GRACE;
    while Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        if !group_alive(pgid) {
            return;
        }
    }
    signal_group(pgid, libc::SIGKILL);
}

fn group_alive(pgid: i32) -> bool {
    signal_group(pgid, 0)
}

/// Send `signal` (0: only probe) to every process in group `pgid`.
/// Returns false when the group has no member left.
#[expect(
    unsafe_code,
    reason = "kill(2) has no safe wrapper among our dependencies"
)]
fn signal_group(pgid: i32, signal: i32) -> bool {
    // pgid 0 would be our own group and -1 every process we may signal: never.
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) takes two integers and touches no memory of this process; the negative
    // pid addresses exactly the process group `pgid`, which the guard above keeps > 1.
    let rc = unsafe { libc::kill(-pgid, signal) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Kills the group with SIGKILL when dropped: if the collect future is dropped mid-run (the
/// engine gave up on it), no process of the command outlives it.
struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    /// The group has been dealt with; its id may be reused from now on, so never signal it.
    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            signal_group(pgid, libc::SIGKILL);
        }
    }
}

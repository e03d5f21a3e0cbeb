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
    // 1. The command, in its folder, with the pipe its supervisor reports on.
    let (mut cmd, mut pipe) = match prepare(launch.command, launch.dir, launch.env) {
        Ok(prepared) => prepared,
        Err(why) => return not_started(process, why),
    };
    // 2. Start it under its supervisor, which leads the command's process group.
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return not_started(process, spawn_error(launch.command, &e)),
    };
    pipe.spawned();
    let supervisor = child.id().and_then(|p| i32::try_from(p).ok());
    process.pgid = child.id();
    // Whatever happens to this future from here on (even being dropped), everything dies.
    let mut guard = Guard { supervisor };
    // 3. Read its output while it runs.
    let readers = Readers::start(&mut child);
    // 4. Wait for its end: it exits, times out or is cancelled (then it is terminated).
    let (end, status) = wait_end(&mut child, supervisor, launch.timeout, &mut cancel).await;
    process.timed_out = matches!(end, End::TimedOut);
    process.interrupted = matches!(end, End::Cancelled);
    process.duration_ms = elapsed_ms(started);
    guard.disarm();
    // 5. How it ended, by the supervisor's account.
    settle(&mut process, status, pipe.account());
    // 6. What it wrote.
    let (stdout, stderr) = readers.finish().await;
    Outcome {
        process,
        stdout,
        stderr,
    }
}

/// The command to spawn (`sh -c` for a script), in `dir`, with `env`, its output piped and its
/// supervisor installed, and the pipe that supervisor reports on; or why it cannot be started.
fn prepare(
    command: &Command,
    dir: &Path,
    env: Vec<(String, String)>,
) -> Result<(tokio::process::Command, ReportPipe), String> {
    let mut cmd = match command {
        Command::Shell(script) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").arg(script);
            c
        }
        Command::Argv(argv) => {
            let Some((program, args)) = argv.split_first() else {
                return Err("the command's argv is empty".into());
            };
            let mut c = tokio::process::Command::new(program);
            c.args(args);
            c
        }
    };
    // Checked here because spawn reports a missing folder as ENOENT, like a missing program.
    if !dir.is_dir() {
        return Err(format!("working folder {} does not exist", dir.display()));
    }
    let pipe =
        ReportPipe::new().map_err(|e| format!("cannot prepare the command's supervisor: {e}"))?;
    cmd.current_dir(dir)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    pipe.install(&mut cmd);
    Ok((cmd, pipe))
}

/// Why the command could not be started, naming the program.
fn spawn_error(command: &Command, e: &std::io::Error) -> String {
    let what = match command {
        Command::Shell(_) => "sh".to_string(),
        Command::Argv(v) => v.first().cloned().unwrap_or_default(),
    };
    format!("cannot start {what:?}: {e}")
}

/// How the wait for the command ended.
enum End {
    Exited,
    TimedOut,
    Cancelled,
}

/// Wait until the supervisor exits, `timeout` passes or `cancel` flips; on a timeout or a
/// cancellation, terminate everything. How it ended, and the supervisor's exit status (it
/// exits only once every process of the command is gone).
async fn wait_end(
    child: &mut tokio::process::Child,
    supervisor: Option<i32>,
    timeout: Duration,
    cancel: &mut watch::Receiver<bool>,
) -> (End, std::io::Result<std::process::ExitStatus>) {
    let ended = tokio::select! {
        status = child.wait() => Ok(status),
        () = tokio::time::sleep(timeout) => Err(End::TimedOut),
        () = cancelled(cancel) => Err(End::Cancelled),
    };
    match ended {
        Ok(status) => (End::Exited, status),
        Err(end) => {
            let status = match supervisor {
                Some(pid) => terminate(child, pid).await,
                None => child.wait().await,
            };
            (end, status)
        }
    }
}

/// The readers of the command's stdout and stderr, and the switch that stops them.
struct Readers {
    out: tokio::task::JoinHandle<(Finished, bool)>,
    err: tokio::task::JoinHandle<(Finished, bool)>,
    stop: watch::Sender<bool>,
}

impl Readers {
    /// Start reading the child's stdout and stderr.
    fn start(child: &mut tokio::process::Child) -> Readers {
        let (stop, stop_rx) = watch::channel(false);
        let out = tokio::spawn(drain(child.stdout.take(), stop_rx.clone()));
        let err = tokio::spawn(drain(child.stderr.take(), stop_rx));
        Readers { out, err, stop }
    }

    /// Each capture, and whether it reached end of file. Readers end at end of file once every
    /// holder of the pipes is gone. Only a process outside the command's tree (one it handed
    /// the pipe to) can hold them now; stop after a grace.
    async fn finish(self) -> ((Finished, bool), (Finished, bool)) {
        let (out, err) = (self.out, self.err);
        let joined = async { (out.await, err.await) };
        tokio::pin!(joined);
        let (out, err) = match tokio::time::timeout(READER_GRACE, &mut joined).await {
            Ok(r) => r,
            Err(_) => {
                let _ = self.stop.send(true);
                joined.await
            }
        };
        (
            out.unwrap_or_else(|_| (Bounded::default().finish(), false)),
            err.unwrap_or_else(|_| (Bounded::default().finish(), false)),
        )
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

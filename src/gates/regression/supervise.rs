//! A supervisor between relgate and each regression command, so that every process the command
//! starts is gone before its reports are read and its verdict is recorded.
//!
//! Killing the command's process group is not enough: a process that calls `setsid` (or
//! `setpgid`) leaves the group, and after a double fork its parent is gone, so nothing ties it
//! to the command any more. It could rewrite a JUnit report after the verdict, or outlive the
//! release. Linux offers two ways to keep such processes in hand:
//!
//! - a cgroup: exact, but it needs a writable, delegated cgroup v2 hierarchy, which an
//!   unprivileged user in CI or in a container usually does not have;
//! - a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`): an orphaned descendant is reparented
//!   to its nearest subreaper ancestor instead of to init. It needs no privilege.
//!
//! We use a subreaper, but not relgate itself: relgate runs gates concurrently, and an orphan
//! reparented to relgate could not be told apart from another gate's. Instead, when relgate
//! spawns the command, the forked child becomes a subreaper, forks once more, and the grandchild
//! execs the command. The child — the supervisor — stays behind, runs no Rust runtime and no
//! allocator (it is a copy of a multithreaded process, so only async-signal-safe calls are
//! allowed), and does this:
//!
//! 1. waits for the command (the main process) to exit, reaping orphans as they die;
//! 2. then finds its remaining children in `/proc` — every living descendant is one of them or
//!    below one — sends them SIGTERM (and SIGCONT), and after [`TERM_GRACE`] SIGKILL, again and
//!    again until it has no child left (`waitpid` says `ECHILD`), counting the processes it
//!    found and those among them that had left the command's process group;
//! 3. writes that account to a pipe relgate reads, and exits with the command's status.
//!
//! relgate signals the group with SIGTERM on a timeout or an interruption (the supervisor
//! ignores it, the command gets it) and sends the supervisor SIGUSR1 to kill everything at once.
//! So when relgate sees the supervisor exit, every process of the command is gone.
//!
//! What this cannot reach: processes started through another service rather than as
//! descendants (`systemd-run`, `docker run -d`, `at`), which a cgroup would not catch either,
//! and descendants it is not allowed to signal (a setuid program); those make the gate red.
#![expect(
    unsafe_code,
    reason = "fork, prctl, waitpid, kill and raw /proc reads in a forked child; each block says why it is sound"
)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// How long stray processes get between SIGTERM and SIGKILL once the command has exited.
pub const TERM_GRACE: Duration = Duration::from_secs(2);
/// How long the supervisor keeps sending SIGKILL to processes that do not die (it may not be
/// allowed to signal them) before it gives up and reports them.
const KILL_LIMIT: Duration = Duration::from_secs(10);
const POLL_MS: i64 = 20;
/// Processes remembered as already counted; more are still killed, but counted again.
const SEEN: usize = 512;

const MAGIC: [u8; 4] = *b"RGS1";
const REPORT_LEN: usize = 24;
const F_MAIN_REAPED: u32 = 1;
const F_BLIND: u32 = 2;
const F_STOPPED: u32 = 4;

/// The supervisor's account of the command's processes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// The command's raw wait status, when the supervisor reaped it.
    pub main_status: Option<i32>,
    /// Processes still alive after the command exited (or was stopped), all killed.
    pub strays: u32,
    /// Those among `strays` that had left the command's process group.
    pub escaped: u32,
    /// Processes it could not kill within [`KILL_LIMIT`] and left behind.
    pub survivors: u32,
    /// `/proc` could not be read: only the process group was killed.
    pub blind: bool,
    /// relgate asked it to kill everything (timeout, interruption).
    pub stopped: bool,
}

/// The pipe the supervisor reports on. The write end goes to the supervisor only.
pub struct ReportPipe {
    read: OwnedFd,
    write: Option<OwnedFd>,
}

impl ReportPipe {
    pub fn new() -> io::Result<ReportPipe> {
        let mut fds = [-1; 2];
        // SAFETY: pipe2 writes two descriptors into the array we pass; both are owned below.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are fresh descriptors nobody else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(ReportPipe {
            read,
            write: Some(write),
        })
    }

    /// Make `cmd`'s child the supervisor of the command (see the module documentation).
    pub fn install(&self, cmd: &mut tokio::process::Command) {
        let fd = self.write.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        // SAFETY: the closure runs in the forked child before exec and calls only
        // async-signal-safe functions (prctl, fork, and in the supervisor the raw system calls
        // of `supervisor_main`); it allocates nothing and touches no lock.
        unsafe {
            cmd.pre_exec(move || become_supervisor(fd));
        }
    }

    /// Close relgate's copy of the write end once the child is spawned.
    pub fn spawned(&mut self) {
        self.write = None;
    }

    /// The account, once the supervisor has exited; `None` when it wrote none (it was killed).
    pub fn account(&self) -> Option<Account> {
        let mut buf = [0u8; REPORT_LEN];
        // SAFETY: reads at most REPORT_LEN bytes into our buffer from a descriptor we own
        // (non-blocking: an absent report reads as EAGAIN, not a hang).
        let n = unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if usize::try_from(n).ok() != Some(REPORT_LEN) || buf[..4] != MAGIC {
            return None;
        }
        let word = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let flags = word(4);
        Some(Account {
            main_status: (flags & F_MAIN_REAPED != 0).then(|| word(8) as i32),
            strays: word(12),
            escaped: word(16),
            survivors: word(20),
            blind: flags & F_BLIND != 0,
            stopped: flags & F_STOPPED != 0,
        })
    }
}

/// Ask supervisor `pid` to kill every process of its command now.
pub fn stop(pid: i32) {
    if pid > 1 {
        // SAFETY: kill(2) with a positive pid signals that one process, our own child.
        unsafe {
            libc::kill(pid, libc::SIGUSR1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// In the forked child. Everything below runs between fork and exec (or instead of exec): no
// allocation, no locks, no std I/O — only system calls on stack buffers.
// ---------------------------------------------------------------------------------------------

fn become_supervisor(report_fd: i32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fork in a single-threaded child; both sides continue with async-signal-safe code
    // only (std's exec path in the grandchild, `supervisor_main` here).
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        // The grandchild goes on to exec the command. The subreaper flag is not inherited, and
        // the report pipe is close-on-exec.
        0 => Ok(()),
        main => supervisor_main(main, report_fd),
    }
}

fn now_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec.saturating_mul(1000) + ts.tv_nsec / 1_000_000
}

/// The supervisor's state: the command's main process and how it ended, the signals it waits
/// for, who it is, and its account so far.
struct State {
    main: i32,
    main_status: Option<i32>,
    /// SIGCHLD and SIGUSR1, blocked and waited for.
    set: libc::sigset_t,
    /// The supervisor's pid and process group (the command's group, which it leads).
    me: i32,
    group: i32,
    account: Account,
}

impl State {
    /// Reap every child that has exited. Returns false once no child is left at all.
    fn reap(&mut self) -> bool {
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status into our integer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid == self.main {
                self.main_status = Some(status);
            }
            if pid <= 0 {
                return pid == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ECHILD);
            }
        }
    }
}

/// Wait up to `ms` for SIGCHLD or SIGUSR1 (both blocked). Returns true on SIGUSR1.
fn wait_signal(set: &libc::sigset_t, ms: i64) -> bool {
    let ts = libc::timespec {
        tv_sec: ms / 1000,
        tv_nsec: (ms % 1000) * 1_000_000,
    };
    // SAFETY: sigtimedwait reads the set and the timeout we pass.
    unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) == libc::SIGUSR1 }
}

fn supervisor_main(main: i32, report_fd: i32) -> ! {
    close_all_but(report_fd);
    let (set, me, group) = take_signals();
    let mut st = State {
        main,
        main_status: None,
        set,
        me,
        group,
        account: Account::default(),
    };
    // 1. The command runs; orphans that die meanwhile are reaped.
    st.await_main();
    // 2. Whatever is left is killed: TERM first (unless stopped), KILL after the grace.
    st.kill_the_rest();
    st.reap();
    // 3. The account, then the command's own ending.
    write_report(report_fd, &report(st.main_status, &st.account));
    exit_like(st.main_status)
}

/// Ignore the signals relgate sends the command's group, keep SIGCHLD and SIGUSR1 at their
/// defaults and block them (to be waited for); the blocked set, our pid and our process group.
fn take_signals() -> (libc::sigset_t, i32, i32) {
    // SAFETY (whole block): sigaction/sigprocmask/getpid/getpgrp take and fill plain structs
    // we own; no handler is installed, only SIG_IGN and SIG_DFL.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_IGN;
        // The group signals relgate sends are for the command; the supervisor outlives them.
        for sig in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGPIPE,
        ] {
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
        // SIGCHLD must not be ignored (children would be reaped behind our back).
        act.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGCHLD, &act, std::ptr::null_mut());
        libc::sigaction(libc::SIGUSR1, &act, std::ptr::null_mut());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        (set, libc::getpid(), libc::getpgrp())
    }
}

/// Processes already counted as strays (up to [`SEEN`] of them).
struct Seen {
    pids: [i32; SEEN],
    n: usize,
}

impl Seen {
    /// Whether `pid` is new, remembering it (while there is room).
    fn first_time(&mut self, pid: i32) -> bool {
        if self.pids[..self.n].contains(&pid) {
            return false;
        }
        if self.n < SEEN {
            self.pids[self.n] = pid;
            self.n += 1;
        }
        true
    }
}

/// The supervisor's steps.
impl State {
    /// Reap orphans until the main process has exited, relgate asks to stop everything
    /// (SIGUSR1: `stopped`), or no child is left.
    fn await_main(&mut self) {
        while self.reap() && self.main_status.is_none() {
            if wait_signal(&self.set, 1000) {
                self.account.stopped = true;
                break;
            }
        }
    }

    /// Signal every remaining child until none is left: SIGTERM (and SIGCONT) for
    /// [`TERM_GRACE`], unless stopped, then SIGKILL for [`KILL_LIMIT`]; those still there then
    /// are survivors. Without `/proc`, SIGKILL the group and stop (`blind`).
    fn kill_the_rest(&mut self) {
        let mut seen = Seen {
            pids: [0i32; SEEN],
            n: 0,
        };
        let started = now_ms();
        let grace = i64::try_from(TERM_GRACE.as_millis()).unwrap_or(i64::MAX);
        let limit = i64::try_from(KILL_LIMIT.as_millis()).unwrap_or(i64::MAX);
        let mut hard = self.account.stopped;
        let mut first = true;
        while self.reap() {
            let elapsed = now_ms() - started;
            if !hard && elapsed >= grace {
                hard = true;
            }
            if elapsed >= grace + limit {
                self.account.survivors = count_children(self.me);
                break;
            }
            let sig = if hard { libc::SIGKILL } else { libc::SIGTERM };
            if !self.signal_children(sig, &mut seen) {
                // No /proc: kill the group we can name and leave the rest to the account.
                self.account.blind = true;
                // SAFETY: kill(2) on our own process group; we are about to exit anyway.
                unsafe { libc::kill(-self.group, libc::SIGKILL) };
                break;
            }
            if first && !hard {
                // Members of the group still below a living parent get it at once.
                // SAFETY: kill(2) on our own process group (which ignores SIGTERM itself).
                unsafe { libc::kill(-self.group, libc::SIGTERM) };
            }
            first = false;
            if wait_signal(&self.set, POLL_MS) {
                hard = true;
            }
        }
    }

    /// Send `sig` (and SIGCONT after a SIGTERM) to each living child, counting each child other
    /// than the main process the first time it is seen as a stray (and as escaped when it left
    /// the group). False when `/proc` cannot be read.
    fn signal_children(&mut self, sig: i32, seen: &mut Seen) -> bool {
        let (main, group, account) = (self.main, self.group, &mut self.account);
        // Listed (and counted) before any signal, so that no stray dies uncounted.
        for_each_child(self.me, |pid, pgid| {
            if pid != main && seen.first_time(pid) {
                account.strays = account.strays.saturating_add(1);
                if pgid != group {
                    account.escaped = account.escaped.saturating_add(1);
                }
            }
            // SAFETY: kill(2) on a process that is our child: its pid cannot be reused
            // before we reap it.
            unsafe {
                libc::kill(pid, sig);
                if sig == libc::SIGTERM {
                    libc::kill(pid, libc::SIGCONT);
                }
            }
        })
    }
}

/// The account as the supervisor writes it: [`MAGIC`], the flags, the command's raw status,
/// then the strays, escaped and survivors, each a native-endian u32.
fn report(main_status: Option<i32>, account: &Account) -> [u8; REPORT_LEN] {
    let mut flags = 0;
    if main_status.is_some() {
        flags |= F_MAIN_REAPED;
    }
    if account.blind {
        flags |= F_BLIND;
    }
    if account.stopped {
        flags |= F_STOPPED;
    }
    let mut report = [0u8; REPORT_LEN];
    report[..4].copy_from_slice(&MAGIC);
    for (i, w) in [
        flags,
        main_status.unwrap_or(0) as u32,
        account.strays,
        account.escaped,
        account.survivors,
    ]
    .into_iter()
    .enumerate()
    {
        report[4 + 4 * i..8 + 4 * i].copy_from_slice(&w.to_ne_bytes());
    }
    report
}

/// Write the account to the report pipe.
fn write_report(report_fd: i32, report: &[u8; REPORT_LEN]) {
    // SAFETY: write(2) from our stack buffer to the report pipe; a pipe takes 24 bytes whole.
    unsafe { libc::write(report_fd, report.as_ptr().cast(), report.len()) };
}

/// Exit as the command did: with its code, or by its signal (without a core dump).
fn exit_like(status: Option<i32>) -> ! {
    let status = status.unwrap_or(0);
    // SAFETY: plain system calls on integers and structs we own.
    unsafe {
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &act, std::ptr::null_mut());
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig)
        }
        libc::_exit(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            1
        })
    }
}

/// Close every descriptor but `keep`: the command's pipes must reach end of file when its
/// processes are gone, and std's exec-status pipe must close for `spawn` to return.
fn close_all_but(keep: i32) {
    match u32::try_from(keep) {
        Ok(0) => close_range(1, u32::MAX),
        Ok(k) => {
            close_range(0, k - 1);
            close_range(k.saturating_add(1), u32::MAX);
        }
        Err(_) => close_range(0, u32::MAX),
    }
}

fn close_range(lo: u32, hi: u32) {
    if lo > hi {
        return;
    }
    // SAFETY: close_range/close on descriptor numbers; this process owns its descriptor table
    // and holds no Rust object for any of them.
    unsafe {
        if libc::syscall(libc::SYS_close_range, lo, hi, 0) == 0 {
            return;
        }
        // Kernels before 5.9: close one by one up to the descriptor limit.
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            u32::try_from(lim.rlim_cur.min(1 << 20)).unwrap_or(1 << 20)
        } else {
            1024
        };
        for fd in lo..=hi.min(top) {
            libc::close(fd as i32);
        }
    }
}

fn count_children(me: i32) -> u32 {
    let mut n = 0u32;
    for_each_child(me, |_, _| n = n.saturating_add(1));
    n
}

/// Call `f(pid, pgid)` for every living (non-zombie) child of `me`, found by reading
/// `/proc/<pid>/stat` of every process. Returns false when `/proc` cannot be read.
fn for_each_child(me: i32, mut f: impl FnMut(i32, i32)) -> bool {
    // SAFETY: open/getdents64/read/close on stack buffers; the directory descriptor is closed
    // before returning.
    unsafe {
        let dir = libc::open(
            c"/proc".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if dir < 0 {
            return false;
        }
        // u64 words: getdents64 records are 8-byte aligned.
        let mut words = [0u64; 1024];
        loop {
            let n = libc::syscall(
                libc::SYS_getdents64,
                dir,
                words.as_mut_ptr(),
                std::mem::size_of_val(&words),
            );
            if n <= 0 {
                break;
            }
            let buf = std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), n as usize);
            let mut off = 0usize;
            while off + 19 < buf.len() {
                let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
                // A record holds 19 bytes of header before its name; anything shorter is garbage.
                if reclen < 20 || off + reclen > buf.len() {
                    break;
                }
                let name = &buf[off + 19..off + reclen];
                let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
                if let Some(pid) = parse_int(name)
                    && let Some((state, ppid, pgid)) = stat_of(pid)
                    && ppid == me
                    && state != b'Z'
                    && state != b'X'
                {
                    f(pid, pgid);
                }
                off += reclen;
            }
        }
        libc::close(dir);
    }
    true
}

/// State, parent and process group of `pid` from `/proc/<pid>/stat`.
fn stat_of(pid: i32) -> Option<(u8, i32, i32)> {
    let mut path = [0u8; 32];
    let mut len = 0;
    for b in b"/proc/" {
        path[len] = *b;
        len += 1;
    }
    let mut digits = [0u8; 12];
    let mut d = 0;
    let mut v = pid;
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        path[len] = digits[d];
        len += 1;
    }
    for b in b"/stat" {
        path[len] = *b;
        len += 1;
    }
    let mut buf = [0u8; 512];
    // SAFETY: `path` is NUL-terminated (zero-filled past `len`); read into our buffer.
    let n = unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n
    };
    let buf = &buf[..usize::try_from(n).ok()?];
    // "pid (comm) S ppid pgrp ...": comm may hold anything but is at most 16 bytes, and the
    // fields after it are numbers, so the last ')' in the buffer ends it.
    let close = buf.iter().rposition(|b| *b == b')')?;
    let mut fields = buf[close + 1..]
        .split(|b| *b == b' ')
        .filter(|f| !f.is_empty());
    let state = *fields.next()?.first()?;
    let ppid = parse_int(fields.next()?)?;
    let pgid = parse_int(fields.next()?)?;
    Some((state, ppid, pgid))
}

fn parse_int(s: &[u8]) -> Option<i32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: i64 = 0;
    for b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(b - b'0');
    }
    i32::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_stat_line_parses() {
        let me = std::process::id() as i32;
        let (state, ppid, pgid) = stat_of(me).unwrap();
        assert!(state.is_ascii_uppercase());
        // SAFETY: plain getters.
        let (want_ppid, want_pgid) = unsafe { (libc::getppid(), libc::getpgrp()) };
        assert_eq!((ppid, pgid), (want_ppid, want_pgid));
    }

    #[test]
    fn children_are_listed() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let me = std::process::id() as i32;
        let mut found = Vec::new();
        assert!(for_each_child(me, |pid, _| found.push(pid)));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found.contains(&(child.id() as i32)), "{found:?}");
    }

    #[test]
    fn integers_parse_strictly() {
        assert_eq!(parse_int(b"123"), Some(123));
        assert_eq!(parse_int(b""), None);
        assert_eq!(parse_int(b"12a"), None);
        assert_eq!(parse_int(b"99999999999"), None);
    }
}

//! A private clamd for one run: a temporary clamd.conf on a Unix socket in its temporary folder
//! (or, when that cannot work, a free loopback port), over a given signature folder; started, waited for (PONG), and always stopped — by [`PrivateClamd::stop`],
//! or by `Drop` (kill) when the run is interrupted or the gate fails on the way.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::client::{Address, Client, Timeouts};

/// The hint every "clamd is missing" message carries.
pub const INSTALL_HINT: &str = "install clamav-daemon (apt-get install clamav-daemon)";

/// How to start the private clamd.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// The clamd binary; `None` searches PATH, then /usr/sbin and /usr/local/sbin (where
    /// Debian's clamav-daemon puts it, often missing from a non-root PATH).
    pub program: Option<PathBuf>,
    /// StreamMaxLength and MaxFileSize, in bytes.
    pub max_size: u64,
    pub max_threads: u32,
    /// How long clamd may take to load its database and answer PING.
    pub startup_timeout: Duration,
    /// Listen on a Unix socket in the temporary folder (so scans can pass descriptors with
    /// FILDES) rather than on a loopback TCP port. Falls back to TCP when the socket path is
    /// too long for `sun_path` or clamd cannot start on it.
    pub unix_socket: bool,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            program: None,
            max_size: 100 * 1024 * 1024,
            max_threads: 4,
            startup_timeout: Duration::from_secs(60),
            unix_socket: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("clamd not found: {INSTALL_HINT}")]
    NotInstalled,
    #[error("signature folder {path} is not a readable folder")]
    Database {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare the private clamd in {path}")]
    Setup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start {program}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("clamd exited during startup ({status}): {log}")]
    Exited { status: String, log: String },
    #[error("clamd did not answer PING within {secs}s: {log}")]
    NotReady { secs: u64, log: String },
    #[error("interrupted while starting clamd")]
    Interrupted,
}

/// A running private clamd. Killed when dropped.
pub struct PrivateClamd {
    child: Option<tokio::process::Child>,
    pid: Option<u32>,
    addr: Address,
    /// Holds clamd.conf, the log, the pid file and clamd's temporary files.
    dir: tempfile::TempDir,
}

impl PrivateClamd {
    /// Start clamd on `database` and wait until it answers PING.
    pub async fn start(
        database: &Path,
        opts: &DaemonOptions,
        cancel: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Result<PrivateClamd, DaemonError> {
        let database = std::fs::canonicalize(database).map_err(|source| DaemonError::Database {
            path: database.to_path_buf(),
            source,
        })?;
        if !database.is_dir() {
            return Err(DaemonError::Database {
                path: database,
                source: std::io::Error::other("not a folder"),
            });
        }
        let program = match &opts.program {
            Some(p) => p.clone(),
            None => find_clamd().ok_or(DaemonError::NotInstalled)?,
        };
        // The free port is picked by binding and releasing it; another process may take it in
        // between, in which case clamd exits at once and a fresh port is tried. A clamd that
        // exits on its Unix socket is tried again on TCP.
        let mut last = None;
        let mut unix = opts.unix_socket;
        for _ in 0..3 {
            match Self::start_once(&program, &database, opts, unix, cancel.clone()).await {
                Ok(d) => return Ok(d),
                Err(e @ DaemonError::Exited { .. }) => {
                    last = Some(e);
                    unix = false;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(DaemonError::Interrupted))
    }

    async fn start_once(
        program: &Path,
        database: &Path,
        opts: &DaemonOptions,
        unix: bool,
        cancel: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Result<PrivateClamd, DaemonError> {
        let dir = tempfile::Builder::new()
            .prefix("relgate-clamd-")
            .tempdir()
            .map_err(|source| DaemonError::Setup {
                path: std::env::temp_dir(),
                source,
            })?;
        let setup = |source| DaemonError::Setup {
            path: dir.path().to_path_buf(),
            source,
        };
        let sock = dir.path().join("clamd.sock");
        let (listen, addr) = if unix && fits_sun_path(&sock) {
            (
                format!("LocalSocket {}\n", sock.display()),
                Address::Unix(sock),
            )
        } else {
            let port = free_port().map_err(setup)?;
            (
                format!("TCPSocket {port}\nTCPAddr 127.0.0.1\n"),
                Address::Tcp(format!("127.0.0.1:{port}")),
            )
        };
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).map_err(setup)?;
        let conf = dir.path().join("clamd.conf");
        std::fs::write(&conf, config_text(&listen, database, dir.path(), opts)).map_err(setup)?;
        let out = std::fs::File::create(dir.path().join("clamd.out")).map_err(setup)?;
        let err = out.try_clone().map_err(setup)?;
        let mut child = tokio::process::Command::new(program)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    DaemonError::NotInstalled
                } else {
                    DaemonError::Spawn {
                        program: program.to_path_buf(),
                        source,
                    }
                }
            })?;
        let pid = child.id();
        let mut probe = Client::new(addr.clone()).with_timeouts(Timeouts {
            connect: Duration::from_secs(1),
            io: Duration::from_secs(5),
            overall: Duration::from_secs(10),
        });
        probe.retries = 0;
        let deadline = tokio::time::Instant::now() + opts.startup_timeout;
        let mut pause = Duration::from_millis(20);
        // From here on the guard owns the child: any early return kills it.
        let mut daemon = PrivateClamd {
            child: None,
            pid,
            addr,
            dir,
        };
        loop {
            if cancel.as_ref().is_some_and(|c| *c.borrow()) {
                daemon.child = Some(child);
                return Err(DaemonError::Interrupted);
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(DaemonError::Exited {
                    status: status.to_string(),
                    log: daemon.log_tail(),
                });
            }
            if let Ok(true) = probe.ping().await {
                daemon.child = Some(child);
                return Ok(daemon);
            }
            if tokio::time::Instant::now() >= deadline {
                daemon.child = Some(child);
                return Err(DaemonError::NotReady {
                    secs: opts.startup_timeout.as_secs(),
                    log: daemon.log_tail(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    pub fn address(&self) -> &Address {
        &self.addr
    }

    /// The clamd process id (for checking that it is gone).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The temporary folder holding clamd.conf and the log (removed on stop/drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Ask clamd to shut down; kill it if it has not exited within 5 s. Waits for the process.
    pub async fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let mut c = Client::new(self.addr.clone()).with_timeouts(Timeouts {
            connect: Duration::from_secs(1),
            io: Duration::from_secs(2),
            overall: Duration::from_secs(3),
        });
        c.retries = 0;
        let _ = c.command("SHUTDOWN").await;
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// The last lines of clamd's output, for an error message.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("clamd.out")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = &lines[lines.len().saturating_sub(3)..];
        if tail.is_empty() {
            "no output".to_string()
        } else {
            tail.join(" | ")
        }
    }
}

impl Drop for PrivateClamd {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // SIGKILL now; tokio reaps the process in the background.
            let _ = child.start_kill();
            let _ = child.try_wait();
        }
    }
}

/// The clamd.conf for a private clamd. See clamd.conf(5).
fn config_text(listen: &str, database: &Path, dir: &Path, opts: &DaemonOptions) -> String {
    // ClamAV cannot handle streams or files of 2 GB or more.
    const CLAMAV_LIMIT: u64 = (2 << 30) - 1;
    let size = opts.max_size.clamp(1, CLAMAV_LIMIT);
    let scan = size.clamp(400 * 1024 * 1024, CLAMAV_LIMIT);
    let d = dir.display();
    format!(
        "# Written by relgate for one run; removed when the run ends.\n\
         {listen}\
         DatabaseDirectory {db}\n\
         Foreground yes\n\
         LogFile {d}/clamd.log\n\
         LogTime yes\n\
         PidFile {d}/clamd.pid\n\
         TemporaryDirectory {d}/tmp\n\
         # Over-limit files must be reported, not passed as OK.\n\
         AlertExceedsMax yes\n\
         # Encrypted archives and documents cannot be looked into: report them, never OK.\n\
         AlertEncrypted yes\n\
         AlertEncryptedArchive yes\n\
         AlertEncryptedDoc yes\n\
         StreamMaxLength {size}\n\
         MaxFileSize {size}\n\
         MaxScanSize {scan}\n\
         MaxThreads {threads}\n",
        db = database.display(),
        threads = opts.max_threads.max(1),
    )
}

/// Does `path` fit in a Unix socket address (`sun_path`: 108 bytes with the NUL)? A long
/// TMPDIR can make it not fit; clamd would then fail to bind.
fn fits_sun_path(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().len() < 108
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Find `clamd` on PATH, then in the sbin folders Debian installs it to.
pub fn find_clamd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("clamd"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_clamd_reports_what_it_cannot_look_into() {
        let text = config_text(
            "LocalSocket /tmp/x/clamd.sock\n",
            Path::new("/db"),
            Path::new("/tmp/x"),
            &DaemonOptions::default(),
        );
        let lines: Vec<&str> = text.lines().collect();
        for want in [
            "AlertExceedsMax yes",
            "AlertEncrypted yes",
            "AlertEncryptedArchive yes",
            "AlertEncryptedDoc yes",
        ] {
            assert!(lines.contains(&want), "{want} missing from:\n{text}");
        }
    }
}

//! A small, strict async clamd client: `z`-framed PING, VERSION and INSTREAM over TCP or a
//! Unix socket (and FILDES over a Unix socket, in [`super::fdpass`]), with connect, I/O and
//! overall timeouts and bounded retries on connect only.
//!
//! INSTREAM sends `zINSTREAM\0`, then `<u32 big-endian length><bytes>` chunks, then a zero
//! length. The reply is read concurrently with sending: clamd answers
//! `INSTREAM size limit exceeded. ERROR` and resets the connection as soon as a stream goes over
//! its limit, so the reply can arrive while we are still writing, and a write failure does not
//! mean there is nothing to read. A reply (any reply) is never retried: it is a verdict.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Where clamd listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// `host:port`.
    Tcp(String),
    Unix(PathBuf),
}

impl Address {
    /// Parse `tcp://host:port` or `unix:PATH`.
    pub fn parse(s: &str) -> Option<Address> {
        if let Some(hp) = s.strip_prefix("tcp://") {
            let (host, port) = hp.rsplit_once(':')?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return None;
            }
            return Some(Address::Tcp(hp.to_string()));
        }
        let path = s.strip_prefix("unix:")?;
        (!path.is_empty()).then(|| Address::Unix(PathBuf::from(path)))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(hp) => write!(f, "tcp://{hp}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Time limits for one exchange with clamd.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Per connection attempt.
    pub connect: Duration,
    /// Per write, and for the reply once everything was sent.
    pub io: Duration,
    /// The whole exchange, retries included.
    pub overall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            io: Duration::from_secs(60),
            overall: Duration::from_secs(30 * 60),
        }
    }
}

/// Why an exchange produced no reply.
#[derive(Debug, thiserror::Error)]
pub enum ClamdError {
    #[error("cannot connect to clamd at {addr} after {attempts} attempt(s)")]
    Connect {
        addr: String,
        attempts: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out connecting to clamd at {addr}")]
    ConnectTimeout { addr: String },
    #[error("clamd at {addr} did not answer within {secs}s")]
    Timeout { addr: String, secs: u64 },
    #[error("connection to clamd at {addr} failed")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

impl ClamdError {
    /// Nothing was ever exchanged: clamd is not there (as opposed to failing mid-scan).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ClamdError::Connect { .. } | ClamdError::ConnectTimeout { .. }
        )
    }
}

/// What an INSTREAM exchange produced. Every field is kept as evidence.
#[derive(Debug)]
pub struct Instream {
    /// Bytes of the source sent in chunks (the zero chunk not counted).
    pub sent: u64,
    /// sha256 (hex) of exactly the bytes sent.
    pub sha256: String,
    /// Every byte and the terminating zero chunk were written before the reply came.
    pub complete: bool,
    /// The raw reply as received, NUL terminator included when it arrived.
    pub reply: Option<String>,
    /// What went wrong, if anything (also set alongside a reply, e.g. a reset after it).
    pub error: Option<String>,
    /// clamd could not be reached at all.
    pub unavailable: bool,
}

/// Largest reply we read; clamd's are far shorter.
const MAX_REPLY: usize = 4096;
/// Chunk size for INSTREAM.
const CHUNK: usize = 256 * 1024;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A clamd client for one address.
#[derive(Clone, Debug)]
pub struct Client {
    pub addr: Address,
    pub timeouts: Timeouts,
    /// Extra connection attempts after the first fails (refused, reset before any data).
    pub retries: u32,
    /// Wait before retry n is `backoff * n`.
    pub backoff: Duration,
}

impl Client {
    pub fn new(addr: Address) -> Self {
        Client {
            addr,
            timeouts: Timeouts::default(),
            retries: 3,
            backoff: Duration::from_millis(200),
        }
    }

    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    fn addr_text(&self) -> String {
        self.addr.to_string()
    }

    async fn connect_once(&self) -> std::io::Result<Box<dyn Stream>> {
        Ok(match &self.addr {
            Address::Tcp(hp) => {
                let s = tokio::net::TcpStream::connect(hp.as_str()).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Address::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await?),
        })
    }

    /// Connect and send `z<command>\0`, retrying (bounded, with backoff) while nothing but the
    /// command has been sent.
    async fn open(&self, command: &str) -> Result<Box<dyn Stream>, ClamdError> {
        self.open_with(command, || self.connect_once()).await
    }

    /// [`Client::open`] over a connection of the caller's kind (FILDES needs the Unix stream
    /// itself, not a boxed one).
    pub(super) async fn open_with<S, F, Fut>(
        &self,
        command: &str,
        connect: F,
    ) -> Result<S, ClamdError>
    where
        S: AsyncWrite + Unpin,
        F: Fn() -> Fut,
        Fut: Future<Output = std::io::Result<S>>,
    {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let err = match tokio::time::timeout(self.timeouts.connect, connect()).await {
                Err(_) => {
                    return Err(ClamdError::ConnectTimeout {
                        addr: self.addr_text(),
                    });
                }
                Ok(Err(e)) => e,
                Ok(Ok(mut s)) => {
                    let framed = format!("z{command}\0");
                    match tokio::time::timeout(self.timeouts.io, s.write_all(framed.as_bytes()))
                        .await
                    {
                        Ok(Ok(())) => return Ok(s),
                        Ok(Err(e)) => e,
                        Err(_) => std::io::Error::from(std::io::ErrorKind::TimedOut),
                    }
                }
            };
            if attempt > self.retries {
                return Err(ClamdError::Connect {
                    addr: self.addr_text(),
                    attempts: attempt,
                    source: err,
                });
            }
            tokio::time::sleep(self.backoff * attempt).await;
        }
    }

    /// Send a simple command (`PING`, `VERSION`) and return the raw reply.
    pub async fn command(&self, command: &str) -> Result<String, ClamdError> {
        let overall = self.timeouts.overall;
        let run = async {
            let mut s = self.open(command).await?;
            let (raw, err) = match tokio::time::timeout(self.timeouts.io, read_reply(&mut s)).await
            {
                Ok(r) => r,
                Err(_) => {
                    return Err(ClamdError::Timeout {
                        addr: self.addr_text(),
                        secs: self.timeouts.io.as_secs(),
                    });
                }
            };
            match err {
                Some(source) if raw.is_empty() => Err(ClamdError::Io {
                    addr: self.addr_text(),
                    source,
                }),
                _ => Ok(raw),
            }
        };
        tokio::time::timeout(overall, run)
            .await
            .unwrap_or_else(|_| {
                Err(ClamdError::Timeout {
                    addr: self.addr_text(),
                    secs: overall.as_secs(),
                })
            })
    }

    /// `PING`; true iff clamd answered exactly `PONG`.
    pub async fn ping(&self) -> Result<bool, ClamdError> {
        Ok(self.command("PING").await? == "PONG\0")
    }

    /// `VERSION`; the raw reply (parse it with [`super::parse_version`]).
    pub async fn version(&self) -> Result<String, ClamdError> {
        self.command("VERSION").await
    }

    /// Stream `src` to clamd with INSTREAM, hashing exactly the bytes sent.
    pub async fn instream<R: AsyncRead + Unpin>(&self, src: R) -> Instream {
        let mut progress = Progress {
            hasher: Sha256::new(),
            sent: 0,
            complete: false,
        };
        let overall = self.timeouts.overall;
        let result = tokio::time::timeout(overall, self.instream_inner(src, &mut progress)).await;
        let (reply, error, unavailable) = match result {
            Ok(r) => r,
            Err(_) => (
                None,
                Some(format!(
                    "clamd at {} did not answer within {}s",
                    self.addr_text(),
                    overall.as_secs()
                )),
                false,
            ),
        };
        Instream {
            sent: progress.sent,
            sha256: hex::encode(progress.hasher.finalize()),
            complete: progress.complete,
            reply,
            error,
            unavailable,
        }
    }

    async fn instream_inner<R: AsyncRead + Unpin>(
        &self,
        mut src: R,
        progress: &mut Progress,
    ) -> (Option<String>, Option<String>, bool) {
        let conn = match self.open("INSTREAM").await {
            Ok(c) => c,
            Err(e) => return (None, Some(error_chain(&e)), e.is_unavailable()),
        };
        let (mut rd, mut wr) = tokio::io::split(conn);
        let io = self.timeouts.io;
        let reader = read_reply(&mut rd);
        tokio::pin!(reader);
        let mut send_error: Option<String> = None;
        let (raw, read_err) = {
            let writer = send_chunks(&mut wr, &mut src, progress, io);
            tokio::pin!(writer);
            // Whichever comes first: the reply (possibly early, e.g. a size-limit error while
            // we are still writing), or the end of sending.
            tokio::select! {
                r = &mut reader => r,
                w = &mut writer => {
                    if let Err(e) = w {
                        send_error = Some(e.to_string());
                    }
                    // Everything is sent (or sending failed): the reply must now come
                    // within the I/O timeout.
                    match tokio::time::timeout(io, &mut reader).await {
                        Ok(r) => r,
                        Err(_) => {
                            let msg = format!(
                                "clamd at {} did not answer within {}s",
                                self.addr_text(),
                                io.as_secs()
                            );
                            let error = match send_error {
                                Some(s) => format!("{s}; {msg}"),
                                None => msg,
                            };
                            return (None, Some(error), false);
                        }
                    }
                }
            }
        };
        let mut errors = Vec::new();
        if let Some(e) = send_error {
            errors.push(e);
        }
        if let Some(e) = read_err {
            errors.push(format!("reading the reply: {e}"));
        }
        let error = (!errors.is_empty()).then(|| errors.join("; "));
        if raw.is_empty() {
            let error =
                error.unwrap_or_else(|| "clamd closed the connection without a reply".into());
            (None, Some(error), false)
        } else {
            (Some(raw), error, false)
        }
    }
}

struct Progress {
    hasher: Sha256,
    sent: u64,
    complete: bool,
}

/// Why sending a file to clamd stopped; its text goes into the scan's evidence.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("cannot read the staged file: {0}")]
    Read(#[source] std::io::Error),
    #[error("chunk too large")]
    ChunkTooLarge,
    #[error("sending to clamd: {0}")]
    Write(#[source] std::io::Error),
    #[error("sending to clamd: no progress within {secs}s")]
    Stalled { secs: u64 },
}

/// Write `src` as INSTREAM chunks and the terminating zero chunk.
async fn send_chunks<W: AsyncWrite + Unpin, R: AsyncRead + Unpin>(
    wr: &mut W,
    src: &mut R,
    progress: &mut Progress,
    io: Duration,
) -> Result<(), SendError> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match src.read(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SendError::Read(e)),
        };
        let len = u32::try_from(n).map_err(|_| SendError::ChunkTooLarge)?;
        let write = async {
            wr.write_all(&len.to_be_bytes()).await?;
            if n > 0 {
                wr.write_all(&buf[..n]).await?;
            }
            wr.flush().await
        };
        // Hash before writing: a chunk that was partly written counts as sent, so a failed
        // write can never make the recorded digest look like a clean, complete stream.
        progress.hasher.update(&buf[..n]);
        progress.sent += n as u64;
        match tokio::time::timeout(io, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(SendError::Write(e)),
            Err(_) => {
                return Err(SendError::Stalled { secs: io.as_secs() });
            }
        }
        if n == 0 {
            progress.complete = true;
            return Ok(());
        }
    }
}

/// Read one NUL-terminated reply (or up to EOF, an error, or [`MAX_REPLY`] bytes).
/// Returns what arrived, lossily decoded, and the read error if one ended it.
pub(super) async fn read_reply<R: AsyncRead + Unpin>(
    rd: &mut R,
) -> (String, Option<std::io::Error>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let mut error = None;
    while got.len() < MAX_REPLY {
        match rd.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                // Keep anything after the terminator too: the strict parser then sees it.
                if got.contains(&0) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), error)
}

/// An error and its causes, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_strictly() {
        assert_eq!(
            Address::parse("tcp://127.0.0.1:3310"),
            Some(Address::Tcp("127.0.0.1:3310".into()))
        );
        assert_eq!(
            Address::parse("unix:/run/clamav/clamd.ctl"),
            Some(Address::Unix("/run/clamav/clamd.ctl".into()))
        );
        for bad in [
            "127.0.0.1:3310",
            "tcp://host",
            "tcp://:1",
            "tcp://h:99999",
            "unix:",
        ] {
            assert_eq!(Address::parse(bad), None, "{bad}");
        }
        assert_eq!(
            Address::Tcp("127.0.0.1:1".into()).to_string(),
            "tcp://127.0.0.1:1"
        );
    }
}

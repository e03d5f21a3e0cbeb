//! FILDES: hand clamd an open file descriptor over its Unix socket, so that clamd scans the very
//! file the caller holds (and hashed) instead of a copy of a stream in its temporary folder.
//!
//! The exchange is what `clamdscan --fdpass` does (clamdscan/proto.c): `zFILDES\0`, then one
//! byte sent with `sendmsg` carrying the descriptor as `SCM_RIGHTS` ancillary data; clamd eats
//! that byte. clamd answers `fd[N]: OK`, `fd[N]: <name> FOUND` or `fd[N]: <message> ERROR`, N
//! being the descriptor's number in clamd, and scans from offset 0 whatever the offset (tested
//! on ClamAV 1.4.6); the caller still rewinds first so nothing depends on that.

use std::io::{Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use tokio::io::Interest;

use super::client::{Address, ClamdError, Client, error_chain, read_reply};

/// What a FILDES exchange produced. Every field is kept as evidence.
#[derive(Debug)]
pub struct Fildes {
    /// The descriptor reached clamd's socket.
    pub passed: bool,
    /// The raw reply as received, NUL terminator included when it arrived.
    pub reply: Option<String>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// clamd could not be reached at all.
    pub unavailable: bool,
}

impl Client {
    /// Have clamd scan `file` through its descriptor (FILDES). Only for `unix:` addresses:
    /// descriptors cannot cross TCP.
    pub async fn fildes(&self, file: &std::fs::File) -> Fildes {
        let mut out = Fildes {
            passed: false,
            reply: None,
            error: None,
            unavailable: false,
        };
        let overall = self.timeouts.overall;
        match tokio::time::timeout(overall, self.fildes_inner(file, &mut out)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                out.unavailable = e.is_unavailable();
                out.error = Some(error_chain(&e));
            }
            Err(_) => {
                out.error = Some(format!(
                    "clamd at {} did not answer within {}s",
                    self.addr,
                    overall.as_secs()
                ));
            }
        }
        out
    }

    async fn fildes_inner(&self, file: &std::fs::File, out: &mut Fildes) -> Result<(), ClamdError> {
        let io_err = |source| ClamdError::Io {
            addr: self.addr.to_string(),
            source,
        };
        let Address::Unix(path) = &self.addr else {
            return Err(io_err(std::io::Error::other(
                "FILDES needs a unix: address (descriptors cannot be passed over TCP)",
            )));
        };
        // Rewind: clamd 1.4 scans from offset 0 anyway, but the offset is shared with clamd's
        // copy of the descriptor and nothing here should rest on that detail.
        (&*file).seek(SeekFrom::Start(0)).map_err(io_err)?;
        let mut sock = self
            .open_with("FILDES", || tokio::net::UnixStream::connect(path))
            .await?;
        let io = self.timeouts.io;
        let send = sock.async_io(Interest::WRITABLE, || send_fd(sock.as_fd(), file.as_fd()));
        match tokio::time::timeout(io, send).await {
            Ok(Ok(())) => out.passed = true,
            Ok(Err(e)) => return Err(io_err(e)),
            Err(_) => {
                return Err(ClamdError::Timeout {
                    addr: self.addr.to_string(),
                    secs: io.as_secs(),
                });
            }
        }
        // clamd scans once the descriptor arrived; the reply must come within the I/O timeout,
        // as for INSTREAM once the last chunk is sent.
        let (raw, read_err) = match tokio::time::timeout(io, read_reply(&mut sock)).await {
            Ok(r) => r,
            Err(_) => {
                return Err(ClamdError::Timeout {
                    addr: self.addr.to_string(),
                    secs: io.as_secs(),
                });
            }
        };
        if let Some(e) = read_err {
            out.error = Some(format!("reading the reply: {e}"));
        }
        if raw.is_empty() {
            out.error
                .get_or_insert_with(|| "clamd closed the connection without a reply".into());
        } else {
            out.reply = Some(raw);
        }
        Ok(())
    }
}

/// Send one NUL byte on `sock` with `fd` attached as `SCM_RIGHTS` (a non-blocking `sendmsg`;
/// `WouldBlock` is retried by the caller's readiness loop).
#[allow(
    unsafe_code,
    reason = "sendmsg with ancillary data; std's SocketAncillary is unstable"
)]
fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> std::io::Result<()> {
    const INT: usize = std::mem::size_of::<libc::c_int>();
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: byte.len(),
    };
    // u64 words keep the buffer aligned for cmsghdr; 32 bytes hold CMSG_SPACE(4) (24 on Linux).
    let mut control = [0u64; 4];
    // SAFETY: `msg` is fully initialised (zeroed, then every pointer set) and points at `iov`,
    // `byte` and `control`, which live until the end of this block. CMSG_SPACE(INT) fits in
    // `control` (checked before use), so CMSG_FIRSTHDR is non-null (checked anyway) and the
    // header and the one int written through CMSG_DATA (unaligned write) lie inside
    // `control`. sendmsg only reads these buffers; `sock` and `fd` are open descriptors
    // borrowed for the call. The kernel duplicates `fd` into clamd; we keep ours.
    let sent = unsafe {
        let space = libc::CMSG_SPACE(INT as u32) as usize;
        if space > std::mem::size_of_val(&control) {
            return Err(std::io::Error::other("control buffer too small"));
        }
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(std::io::Error::other("no room for the control message"));
        }
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(INT as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd.as_raw_fd());
        libc::sendmsg(
            sock.as_raw_fd(),
            &msg,
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    match sent {
        1 => Ok(()),
        -1 => Err(std::io::Error::last_os_error()),
        _ => Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
    }
}

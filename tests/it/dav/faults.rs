//! A fault-injecting HTTP proxy in front of the real Apache, for what a real server will not do
//! on demand: answer 500, reset a connection in the middle of a body, stall, list what is not
//! there, lose the answer to a MOVE it carried out.
//!
//! One request per connection: the proxy forwards it with `Connection: close`, relays the answer
//! (which then says `Connection: close`), and closes. `Host` and `Destination` are rewritten to
//! Apache's port, so Apache sees the names it serves.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Relay everything.
    None,
    /// Answer PUTs into the upload collection with 500, `n` times.
    Status500(usize),
    /// Read part of a large (over 1 MiB) PUT body into the upload collection, then reset the
    /// connection; `n` times.
    ResetMidBody(usize),
    /// Take a large PUT into the upload collection and never read or answer it.
    Stall,
    /// Answer the `Depth: infinity` listing of the upload collection with every size one more.
    LyingPropfind,
    /// Answer the MOVE with 500 without forwarding it.
    Move500,
    /// Forward the MOVE, then drop the connection without its answer.
    LoseMoveAnswer,
    /// Forward the MOVE, then hold the connection open without answering (the test kills relgate).
    HoldMoveAnswer,
    /// Hold each GET of an artefact (not `SHA256SUMS` or its signature, nothing in `audit/`)
    /// until a second one has arrived, for up to 10 s, then answer 503: files fetched one
    /// after another never get through.
    PairedGets,
}

pub struct Proxy {
    pub port: u16,
    fault: Arc<Mutex<Fault>>,
    /// Set once a held MOVE was carried out by Apache.
    pub moved: Arc<AtomicBool>,
    /// Requests seen, by method (for assertions on retries).
    pub seen: Arc<Mutex<Vec<String>>>,
    used: Arc<AtomicUsize>,
    rt: Option<tokio::runtime::Runtime>,
}

/// The artefacts asked for so far (a retry of the same one is no partner), and a wake-up for
/// those waiting for one.
#[derive(Default)]
struct Gets {
    seen: Mutex<std::collections::BTreeSet<String>>,
    arrived: tokio::sync::Notify,
}

impl Proxy {
    pub fn start(upstream: u16, fault: Fault) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let fault = Arc::new(Mutex::new(fault));
        let moved = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let used = Arc::new(AtomicUsize::new(0));
        let state = State {
            port,
            upstream,
            fault: fault.clone(),
            moved: moved.clone(),
            seen: seen.clone(),
            used: used.clone(),
            gets: Arc::new(Gets::default()),
        };
        rt.spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = state.serve(conn).await;
                });
            }
        });
        Proxy {
            port,
            fault,
            moved,
            seen,
            used,
            rt: Some(rt),
        }
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
        self.used.store(0, Ordering::SeqCst);
    }

    /// `http://127.0.0.1:PORT/` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    pub fn seen(&self, method: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|m| *m == method)
            .count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

#[derive(Clone)]
struct State {
    port: u16,
    upstream: u16,
    fault: Arc<Mutex<Fault>>,
    moved: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    /// Faults of a counted kind already used (`Status500(n)`, `ResetMidBody(n)`).
    used: Arc<AtomicUsize>,
    gets: Arc<Gets>,
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn read_head(conn: &mut TcpStream) -> std::io::Result<(Request, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let end = loop {
        let n = conn.read(&mut byte).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&byte[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let rest = buf.split_off(end + 4);
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok((
        Request {
            method,
            target,
            headers,
        },
        rest,
    ))
}

impl State {
    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap()
    }

    /// Use one of `n` counted faults; false once they are used up.
    fn take(&self, n: usize) -> bool {
        self.used.fetch_add(1, Ordering::SeqCst) < n
    }

    async fn serve(&self, mut conn: TcpStream) -> std::io::Result<()> {
        let (req, mut body) = read_head(&mut conn).await?;
        self.seen.lock().unwrap().push(req.method.clone());
        let upload = req.target.contains(".partial-");
        let len: usize = req
            .header("Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let large = len > 1 << 20;
        match (self.fault(), req.method.as_str()) {
            (Fault::Stall, "PUT") if upload && large => {
                // Read nothing more, answer nothing: the client's writes back up.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return Ok(());
            }
            (Fault::ResetMidBody(n), "PUT") if upload && large && self.take(n) => {
                while body.len() < (64 << 10).min(len / 2) {
                    let mut more = [0u8; 8192];
                    let k = conn.read(&mut more).await?;
                    if k == 0 {
                        break;
                    }
                    body.extend_from_slice(&more[..k]);
                }
                conn.set_zero_linger()?;
                return Ok(());
            }
            _ => {}
        }
        while body.len() < len {
            let mut more = vec![0u8; 64 << 10];
            let k = conn.read(&mut more).await?;
            if k == 0 {
                return Ok(());
            }
            body.extend_from_slice(&more[..k]);
        }
        match (self.fault(), req.method.as_str()) {
            (Fault::Status500(n), "PUT") if upload && self.take(n) => {
                return answer(
                    &mut conn,
                    "500 Internal Server Error",
                    "text/plain",
                    b"boom\n",
                )
                .await;
            }
            (Fault::Move500, "MOVE") => {
                return answer(
                    &mut conn,
                    "500 Internal Server Error",
                    "text/plain",
                    b"boom\n",
                )
                .await;
            }
            (Fault::LyingPropfind, "PROPFIND")
                if upload && req.header("Depth") == Some("infinity") =>
            {
                let (_, xml) = self.forward(&req, &body).await?;
                let xml = String::from_utf8_lossy(&xml).into_owned();
                let lie = inflate_sizes(&xml);
                return answer(
                    &mut conn,
                    "207 Multi-Status",
                    "application/xml",
                    lie.as_bytes(),
                )
                .await;
            }
            (Fault::LoseMoveAnswer, "MOVE") => {
                self.forward(&req, &body).await?;
                conn.set_zero_linger()?;
                return Ok(());
            }
            (Fault::PairedGets, "GET")
                if !req.target.contains("/audit/") && !req.target.contains("SHA256SUMS") =>
            {
                let gets = &self.gets;
                gets.seen.lock().unwrap().insert(req.target.clone());
                gets.arrived.notify_waiters();
                let paired = async {
                    loop {
                        // Created before the count is read, so no wake-up in between is lost.
                        let next = gets.arrived.notified();
                        if gets.seen.lock().unwrap().len() >= 2 {
                            return;
                        }
                        next.await;
                    }
                };
                if tokio::time::timeout(Duration::from_secs(10), paired)
                    .await
                    .is_err()
                {
                    return answer(
                        &mut conn,
                        "503 Service Unavailable",
                        "text/plain",
                        b"alone\n",
                    )
                    .await;
                }
            }
            (Fault::HoldMoveAnswer, "MOVE") => {
                self.forward(&req, &body).await?;
                self.moved.store(true, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return Ok(());
            }
            _ => {}
        }
        let raw = self.relay(&req, &body).await?;
        conn.write_all(&raw).await?;
        conn.shutdown().await
    }

    /// Send the request to Apache; the whole raw answer.
    async fn relay(&self, req: &Request, body: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut up = TcpStream::connect(("127.0.0.1", self.upstream)).await?;
        let from = format!("127.0.0.1:{}", self.port);
        let to = format!("127.0.0.1:{}", self.upstream);
        let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
        for (k, v) in &req.headers {
            if k.eq_ignore_ascii_case("connection") {
                continue;
            }
            head.push_str(&format!("{k}: {}\r\n", v.replace(&from, &to)));
        }
        head.push_str("Connection: close\r\n\r\n");
        up.write_all(head.as_bytes()).await?;
        up.write_all(body).await?;
        let mut raw = Vec::new();
        up.read_to_end(&mut raw).await?;
        Ok(raw)
    }

    /// Send the request to Apache; its status line and decoded body.
    async fn forward(&self, req: &Request, body: &[u8]) -> std::io::Result<(String, Vec<u8>)> {
        let raw = self.relay(req, body).await?;
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let rest = raw.get(end + 4..).unwrap_or_default().to_vec();
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let status = head.lines().next().unwrap_or_default().to_string();
        Ok((status, if chunked { dechunk(&rest) } else { rest }))
    }
}

async fn answer(
    conn: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body).await?;
    conn.shutdown().await
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[..eol])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
}

/// Every `getcontentlength` in the listing, one more than it is.
fn inflate_sizes(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find("getcontentlength>") {
        let (before, after) = rest.split_at(i + "getcontentlength>".len());
        out.push_str(before);
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            rest = after;
            continue;
        }
        let n: u64 = digits.parse().unwrap();
        out.push_str(&(n + 1).to_string());
        rest = &after[digits.len()..];
    }
    out.push_str(rest);
    out
}

//! S3 test servers: moto's server mode (a real implementation of S3's create-only writes, also
//! under races: `pip install 'moto[server]'`, see scripts/install-prereqs.sh) on a loopback port
//! it binds itself, and a small fault-injecting proxy in front of it for what moto will not do on
//! demand (500s, a stall, 409 ConditionalRequestConflict, an error that echoes the request).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use relgate::s3::creds::Credentials;
use relgate::s3::{Bucket, Listed};

/// Test credentials, each distinctive enough to be searched for in every output.
pub const KEY_ID: &str = "AKIARELGATETESTKEY01";
pub const SECRET: &str = "relgate-secret-NEVER-SHOWN-9f8e7d6c";
pub const TOKEN: &str = "relgate-token-NEVER-SHOWN-1a2b3c4d";

/// The environment a relgate process gets: the test credentials and nothing from the host.
pub fn aws_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", TOKEN),
        ("AWS_REGION", "us-east-1"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ("AWS_PROFILE", "relgate-test"),
    ]
}

/// A moto S3 server, killed when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    /// Start moto on a port the kernel gives it (`-p 0`) and read that port from the line moto
    /// prints once it listens: no port is picked here and handed over later, so no other
    /// process can take it in between.
    pub fn start() -> Moto {
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect(
                "moto_server is not installed: run scripts/install-prereqs.sh \
                 (pip install 'moto[server]')",
            );
        // moto logs every request to stderr: read it to the end (a full pipe would stall moto),
        // handing the lines over until the one that names the port.
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut log = String::new();
        let port = loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => match listening_port(&line) {
                    Some(port) => break port,
                    None => {
                        log.push_str(&line);
                        log.push('\n');
                    }
                },
                Err(e) => {
                    let why = match e {
                        mpsc::RecvTimeoutError::Timeout => "no port after 60 s",
                        mpsc::RecvTimeoutError::Disconnected => "it exited",
                    };
                    let _ = child.kill();
                    let status = child.wait();
                    panic!("moto_server did not start: {why} ({status:?}); its log:\n{log}");
                }
            }
        };
        Moto { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client for `bucket` at `endpoint`, with the test credentials.
    pub fn client(endpoint: &str, bucket: &str) -> Bucket {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Bucket::with(
            http,
            bucket,
            Some(endpoint),
            "us-east-1",
            Credentials::new(KEY_ID, SECRET, Some(TOKEN.into())),
        )
        .expect("bucket")
    }

    /// Create `bucket` and return a client for it.
    pub fn bucket(&self, bucket: &str) -> Bucket {
        let b = Moto::client(&self.endpoint(), bucket);
        block_on(b.create_bucket()).expect("create bucket");
        b
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in the line moto's server (werkzeug) prints once it listens:
/// ` * Running on http://127.0.0.1:PORT`.
fn listening_port(line: &str) -> Option<u16> {
    const AT: &str = "Running on http://127.0.0.1:";
    let rest = &line[line.find(AT)? + AT.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&p| p != 0)
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Every key under `prefix` with its size.
pub fn keys(b: &Bucket, prefix: &str) -> Vec<Listed> {
    block_on(b.list(prefix)).expect("list")
}

/// An object's bytes, if it is there.
pub fn get(b: &Bucket, key: &str) -> Option<Vec<u8>> {
    block_on(b.get_small(key, 1 << 30)).expect("get")
}

/// A request as the fault proxy saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A PUT of the object whose key ends with `suffix` (not a part of a multipart upload).
    pub fn is_put_of(&self, suffix: &str) -> bool {
        self.method == "PUT"
            && self
                .target
                .split('?')
                .next()
                .unwrap_or("")
                .ends_with(suffix)
    }
}

/// What the proxy does with one request.
pub enum Action {
    Forward,
    /// Answer with this status and body, without forwarding.
    Answer(u16, String),
    /// Read the request head and then nothing more: never read the body, never answer.
    Stall,
}

pub type Rule = Arc<dyn Fn(&Seen) -> Action + Send + Sync>;

/// A fault-injecting HTTP/1.1 proxy to `upstream_port`, one connection per request.
pub struct Proxy {
    pub port: u16,
}

impl Proxy {
    pub fn start(upstream_port: u16, rule: Rule) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let rule = rule.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream_port, &rule);
                });
            }
        });
        Proxy { port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn serve(mut client: TcpStream, upstream: u16, rule: &Rule) -> std::io::Result<()> {
    loop {
        // One request after another on the client's connection.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if client.read(&mut byte)? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let target = first.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let seen = Seen {
            method,
            target,
            headers,
        };
        let action = rule(&seen);
        if let Action::Stall = action {
            std::thread::sleep(Duration::from_secs(120));
            return Ok(());
        }
        let len: usize = seen
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        client.read_exact(&mut body)?;
        match action {
            Action::Answer(status, text) => {
                let resp = format!(
                    "HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\n\
                     Content-Length: {}\r\n\r\n{text}",
                    text.len()
                );
                client.write_all(resp.as_bytes())?;
            }
            _ => {
                let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
                up.write_all(&head)?;
                up.write_all(&body)?;
                let mut resp = Vec::new();
                up.read_to_end(&mut resp)?;
                client.write_all(&resp)?;
                // moto closes after each answer; so does the proxy.
                return Ok(());
            }
        }
    }
}

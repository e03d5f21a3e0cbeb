//! A real Apache httpd with mod_dav_fs, started from a config in a temp folder on a loopback
//! port, with basic auth, plain HTTP or TLS under a CA made here with the openssl CLI.
//!
//! Apache's `Listen` refuses port 0, so the test binds the port itself and holds it: a socket
//! bound to `127.0.0.1:0` with `SO_REUSEPORT` and never listening. No other process can bind
//! that port while it is held — only one of the same user that sets `SO_REUSEPORT` too, which
//! Apache does when `ListenCoresBucketsRatio` is set (here so high that it keeps one bucket).
//! A held socket that does not listen is given no connection, so every one reaches Apache.
//! Nothing is picked, let go and hoped for: a port another process took cannot happen.
//!
//! As root (CI) the workers run as `nobody` (Apache refuses to serve as root), so the folders it
//! writes are handed to `nobody` and the temp folder is opened for it to traverse.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "pw-Zq8#v!secret";
const MODULES: &str = "/usr/lib/apache2/modules";

pub struct Apache {
    tmp: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
    pub tls: bool,
    /// The port held for Apache (see the module's doc), until Apache is gone.
    _held: socket2::Socket,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {out:?}");
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A loopback port held for Apache: bound with `SO_REUSEPORT`, never listening.
fn hold_port() -> (socket2::Socket, u16) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    s.set_reuse_port(true).expect("SO_REUSEPORT");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    s.bind(&any.into()).expect("bind");
    let port = s
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("an IP address")
        .port();
    (s, port)
}

/// A CA and a server certificate for 127.0.0.1 and localhost signed by it (P-256).
fn make_certs(dir: &Path) {
    let ossl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(dir));
    ossl(&[
        "req",
        "-x509",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=relgate test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    ossl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    ossl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

impl Apache {
    /// Plain HTTP.
    pub fn start() -> Apache {
        Apache::launch(false)
    }

    /// HTTPS with a CA of its own ([`Apache::ca`]).
    pub fn start_tls() -> Apache {
        Apache::launch(true)
    }

    fn launch(tls: bool) -> Apache {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().to_path_buf();
        for d in ["dav", "run"] {
            std::fs::create_dir_all(base.join(d)).expect("mkdir");
        }
        let hash = Command::new("openssl")
            .args(["passwd", "-apr1", PASSWORD])
            .output()
            .expect("openssl passwd");
        assert!(hash.status.success());
        std::fs::write(
            base.join("htpasswd"),
            format!("{USER}:{}", String::from_utf8_lossy(&hash.stdout)),
        )
        .expect("htpasswd");
        if tls {
            make_certs(&base);
        }
        let root = is_root();
        if root {
            run(Command::new("chmod").arg("755").arg(&base));
            run(Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(base.join("dav"))
                .arg(base.join("run")));
        }
        let (held, port) = hold_port();
        std::fs::write(base.join("httpd.conf"), config(&base, port, tls, root)).expect("conf");
        let mut child = Command::new("apache2")
            .arg("-f")
            .arg(base.join("httpd.conf"))
            .arg("-DFOREGROUND")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("apache2 (scripts/install-prereqs.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            // Apache says when it serves; the port is one only it can listen on.
            let started = std::fs::read_to_string(base.join("run/error.log"))
                .is_ok_and(|l| l.contains("resuming normal operations"));
            if started && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Apache {
                    tmp,
                    child: Some(child),
                    port,
                    tls,
                    _held: held,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(base.join("run/error.log")).unwrap_or_default();
        panic!("apache2 did not start on its held port {port}:\n{log}");
    }

    /// `http(s)://127.0.0.1:PORT/` + `path`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/{path}", self.port)
    }

    /// Where `path` (below the served root) is on disk.
    pub fn disk(&self, path: &str) -> PathBuf {
        self.tmp.path().join("dav").join(path)
    }

    /// The CA certificate that signed the server's (TLS only).
    pub fn ca(&self) -> PathBuf {
        self.tmp.path().join("ca.pem")
    }

    /// Hand what a test wrote below the served `path` to the server's user (as root, Apache
    /// runs as `nobody` and could not write into folders the test made).
    pub fn own(&self, path: &str) {
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(self.disk(path)));
        }
    }

    /// Every file below the served root, relative and sorted (folders end in `/`).
    pub fn tree(&self, path: &str) -> Vec<String> {
        let root = self.disk(path);
        if !root.exists() {
            return Vec::new();
        }
        let mut out: Vec<String> = walkdir::WalkDir::new(&root)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                let e = e.expect("walk");
                let rel = e
                    .path()
                    .strip_prefix(&root)
                    .expect("rel")
                    .display()
                    .to_string();
                if e.file_type().is_dir() {
                    format!("{rel}/")
                } else {
                    rel
                }
            })
            .collect();
        out.sort();
        out
    }

    /// A request with curl, as a user of the server would make it (basic auth).
    pub fn curl(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u"])
            .arg(format!("{USER}:{PASSWORD}"));
        if self.tls {
            cmd.arg("--cacert").arg(self.ca());
        }
        let out = cmd.args(args).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM lets the parent stop its workers; a SIGKILL would orphan them.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn config(base: &Path, port: u16, tls: bool, root: bool) -> String {
    let b = base.display();
    let mut modules = vec![
        "mpm_event",
        "authz_core",
        "authn_core",
        "authn_file",
        "auth_basic",
        "authz_user",
        "dav",
        "dav_fs",
    ];
    if tls {
        modules.extend(["ssl", "socache_shmcb"]);
    }
    let mut c = format!(
        "ServerRoot {b}\nListen 127.0.0.1:{port}\nServerName 127.0.0.1:{port}\n\
         ListenCoresBucketsRatio 1000000\n\
         PidFile {b}/run/httpd.pid\nDefaultRuntimeDir {b}/run\nErrorLog {b}/run/error.log\n\
         LogLevel warn\n"
    );
    for m in modules {
        c.push_str(&format!("LoadModule {m}_module {MODULES}/mod_{m}.so\n"));
    }
    if root {
        c.push_str("User nobody\nGroup nogroup\n");
    }
    if tls {
        c.push_str(&format!(
            "SSLEngine on\nSSLCertificateFile {b}/server.pem\nSSLCertificateKeyFile {b}/server.key\n\
             SSLSessionCache shmcb:{b}/run/ssl_scache(512000)\n"
        ));
    }
    // What docs/publish.md tells a user to configure: DavDepthInfinity for the listing relgate
    // checks an upload and a release with, no body limit (Apache's default is 1 GiB).
    c.push_str(&format!(
        "DavLockDB {b}/run/DavLock\nDavDepthInfinity On\nLimitRequestBody 0\n\
         DocumentRoot {b}/dav\n<Directory {b}/dav>\n  Dav On\n  AuthType Basic\n\
           AuthName relgate\n  AuthUserFile {b}/htpasswd\n  Require valid-user\n</Directory>\n"
    ));
    c
}

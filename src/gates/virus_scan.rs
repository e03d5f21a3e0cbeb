//! The `virus-scan` gate: every staged artefact scanned by clamd; only `stream: OK` (or, for a
//! passed descriptor, `fd[N]: OK`) is clean.
//!
//! collect reads each staged file once. Over TCP it hashes exactly the bytes it streams to clamd
//! (INSTREAM). Over a Unix socket it opens the staged file, hashes it through that descriptor,
//! checks the digest against the staged one, and passes the same descriptor to clamd (FILDES),
//! so clamd scans the very file that was hashed, without copying it to its temporary folder.
//! Several files are in flight at once: up to `concurrency` in clamd (over a Unix socket at
//! most one per core), as many again being opened and hashed ahead of them. Files over `max_size` are recorded as not scanned before a
//! byte is sent. It also records clamd's raw VERSION reply (engine,
//! database version and date) and stores the staged `SHA256SUMS` as evidence, so that judge can
//! check — from the record alone — that every artefact of this release's subject was scanned
//! exactly once, that each scan covered the staged bytes, and that the signatures were fresh.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{CollectContext, CollectError, JudgeContext, Reason, Verdict};
use crate::clamd::{
    self, Address, Client, DaemonOptions, PrivateClamd, ScanReply, Timeouts, parse_fildes_reply,
    parse_scan_reply, parse_version,
};
use crate::gates::Code;
use crate::model::{ClamdAddr, GateSpec, VirusScanSpec};
use crate::stage::StagedArtefact;

/// ClamAV cannot scan files of 2 GB or more, whatever its limits say.
pub const CLAMAV_MAX_SIZE: u64 = (2 << 30) - 1;

/// What one run of the gate saw.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VirusScanEvidence {
    /// Where the scans went: `tcp://…`, `unix:…`, or `private:<db> unix:<socket>` (or
    /// `private:<db> tcp://127.0.0.1:N` when the private clamd fell back to TCP).
    pub clamd: String,
    /// clamd could not be started or reached, or did not answer VERSION: nothing was scanned.
    pub scanner_error: Option<String>,
    /// clamd's raw VERSION reply; the judge reads the database date from it.
    pub version_reply: Option<String>,
    /// Parsed from `version_reply`, for readers of the record.
    pub engine: Option<String>,
    pub db_version: Option<u64>,
    /// Unix seconds (clamd's ctime read as UTC).
    pub db_date: Option<i64>,
    /// Digest of the staged `SHA256SUMS`, stored as evidence: the artefacts to be scanned.
    pub sums: String,
    /// The size limit applied (bytes).
    pub max_size: u64,
    /// One entry per artefact, sorted by release path.
    pub files: Vec<FileScan>,
}

/// How clamd got the bytes of a file.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ScanMethod {
    /// Streamed over the socket (`zINSTREAM`); records made before FILDES existed are these.
    #[default]
    Instream,
    /// The staged file's open descriptor passed over a Unix socket (`zFILDES`).
    Fildes,
}

/// The scan of one staged artefact.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileScan {
    pub release_path: String,
    /// How the bytes reached clamd.
    #[serde(default)]
    pub method: ScanMethod,
    /// Size of the staged file.
    pub size: u64,
    /// instream: bytes streamed to clamd. fildes: bytes hashed through the descriptor passed.
    pub sent: u64,
    /// sha256 of exactly those bytes; `None` when nothing was read.
    pub sha256: Option<String>,
    /// instream: all bytes and the terminating zero chunk were sent before the reply.
    /// fildes: the descriptor was passed, and the file was unchanged (size, mtime, ctime) from
    /// before hashing until clamd's reply.
    pub complete: bool,
    /// clamd's raw reply, NUL terminator included when it arrived.
    pub reply: Option<String>,
    pub error: Option<String>,
    /// clamd could not be reached for this file.
    pub unavailable: bool,
    /// Why the file was not sent at all (e.g. `too large`).
    pub skipped: Option<String>,
}

/// Knobs that the pipeline does not set; tests shorten them.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub timeouts: Timeouts,
    pub retries: u32,
    pub daemon: DaemonOptions,
}

impl ScanOptions {
    pub fn for_gate(gate: &GateSpec, spec: &VirusScanSpec) -> Self {
        let timeouts = Timeouts {
            overall: Duration::from_secs(gate.timeout_secs.max(1)),
            ..Timeouts::default()
        };
        ScanOptions {
            timeouts,
            retries: 3,
            daemon: DaemonOptions {
                max_size: effective_max(spec),
                max_threads: private_threads(spec.concurrency),
                ..DaemonOptions::default()
            },
        }
    }
}

/// MaxThreads for the private clamd: one per scan in clamd at once, which over its Unix socket
/// is at most one per core of this host (see [`scan_all`]). clamd's own default is 10.
fn private_threads(concurrency: usize) -> u32 {
    u32::try_from(concurrency.clamp(1, 32).min(host_cores())).unwrap_or(2)
}

/// The cores this process may use (affinity and cgroup quota included), at least 1.
fn host_cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn effective_max(spec: &VirusScanSpec) -> u64 {
    spec.max_size.min(CLAMAV_MAX_SIZE)
}

pub async fn collect(
    gate: &GateSpec,
    spec: &VirusScanSpec,
    cx: &CollectContext,
) -> Result<VirusScanEvidence, CollectError> {
    collect_with(spec, cx, &ScanOptions::for_gate(gate, spec)).await
}

/// [`collect`] with explicit timeouts and daemon options.
pub async fn collect_with(
    spec: &VirusScanSpec,
    cx: &CollectContext,
    opts: &ScanOptions,
) -> Result<VirusScanEvidence, CollectError> {
    let sums = cx.record.put(&cx.staged.sums)?;
    let max_size = effective_max(spec);
    let mut ev = VirusScanEvidence {
        clamd: String::new(),
        scanner_error: None,
        version_reply: None,
        engine: None,
        db_version: None,
        db_date: None,
        sums,
        max_size,
        files: Vec::new(),
    };
    if *cx.cancel.borrow() {
        return Err(CollectError::Interrupted);
    }
    // The guard lives until the end of this function: dropping it (return, error, the engine
    // dropping this future on interrupt or timeout) kills the private clamd.
    let mut daemon: Option<PrivateClamd> = None;
    let addr = match &spec.clamd {
        ClamdAddr::Tcp(hp) => Address::Tcp(hp.clone()),
        ClamdAddr::Unix(p) => Address::Unix(p.clone()),
        ClamdAddr::Private { database } => {
            let db: PathBuf = cx.pipeline.root.join(database);
            ev.clamd = format!("private:{}", db.display());
            match PrivateClamd::start(&db, &opts.daemon, Some(cx.cancel.clone())).await {
                Ok(d) => {
                    let a = d.address().clone();
                    daemon = Some(d);
                    a
                }
                Err(clamd::DaemonError::Interrupted) => return Err(CollectError::Interrupted),
                Err(e) => {
                    ev.scanner_error = Some(format!(
                        "cannot start a private clamd on {}: {}",
                        db.display(),
                        clamd::client::error_chain(&e)
                    ));
                    return Ok(ev);
                }
            }
        }
    };
    ev.clamd = if ev.clamd.is_empty() {
        addr.to_string()
    } else {
        format!("{} {addr}", ev.clamd)
    };
    let mut client = Client::new(addr).with_timeouts(opts.timeouts);
    client.retries = opts.retries;
    match client.version().await {
        Ok(raw) => {
            if let Ok(v) = parse_version(&raw) {
                ev.engine = Some(v.engine);
                ev.db_version = v.db_version;
                ev.db_date = v.db_date;
            }
            ev.version_reply = Some(raw);
        }
        Err(e) => {
            ev.scanner_error = Some(clamd::client::error_chain(&e));
            if let Some(d) = daemon.take() {
                d.stop().await;
            }
            return Ok(ev);
        }
    }

    let files = scan_all(&client, cx, max_size, spec.concurrency).await;
    if let Some(d) = daemon.take() {
        d.stop().await;
    }
    ev.files = files?;
    Ok(ev)
}

/// Scan every staged artefact, up to `concurrency` at once in clamd; stops early on interrupt.
async fn scan_all(
    client: &Client,
    cx: &CollectContext,
    max_size: u64,
    concurrency: usize,
) -> Result<Vec<FileScan>, CollectError> {
    let concurrency = concurrency.max(1);
    // `window` bounds the files open at once (hashed, waiting for clamd, or in clamd); `scans`
    // bounds those in clamd. Hashing the next files while clamd scans the current ones keeps
    // clamd's threads busy; the window keeps the open descriptors few for large releases.
    // A clamd behind a Unix socket runs on this host and scanning warm files is CPU-bound:
    // more scans at once than cores only make clamd's threads and the hashing contend (on 2
    // cores, benches/clamd.sh: 3.1 s with 2 scans at once, 4.2 s with 4), so it gets at most
    // one per core. A clamd over TCP may have any number of cores: `concurrency` it is.
    let in_clamd = match &client.addr {
        Address::Unix(_) => concurrency.min(host_cores()),
        Address::Tcp(_) => concurrency,
    };
    let window = Arc::new(tokio::sync::Semaphore::new(concurrency * 2));
    let scans = Arc::new(tokio::sync::Semaphore::new(in_clamd));
    let mut set = tokio::task::JoinSet::new();
    for a in &cx.staged.artefacts {
        let client = client.clone();
        let path = cx.staged.path_of(a);
        let a = a.clone();
        let (window, scans) = (window.clone(), scans.clone());
        set.spawn(async move {
            let _open = window.acquire_owned().await;
            match &client.addr {
                Address::Unix(_) => scan_fildes(&client, &a, path, max_size, &scans).await,
                Address::Tcp(_) => {
                    let _scan = scans.acquire_owned().await;
                    scan_instream(&client, &a, path, max_size).await
                }
            }
        });
    }
    let mut cancel = cx.cancel.clone();
    let mut watching = true;
    let mut out = Vec::with_capacity(cx.staged.artefacts.len());
    loop {
        tokio::select! {
            r = set.join_next() => match r {
                None => break,
                Some(Ok(scan)) => out.push(scan),
                Some(Err(e)) => return Err(CollectError::Task(e)),
            },
            changed = cancel.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                } else if *cancel.borrow() {
                    set.abort_all();
                    return Err(CollectError::Interrupted);
                }
            }
        }
    }
    out.sort_by(|a, b| a.release_path.cmp(&b.release_path));
    Ok(out)
}

fn new_scan(a: &StagedArtefact, method: ScanMethod) -> FileScan {
    FileScan {
        release_path: a.release_path.clone(),
        method,
        size: a.size,
        sent: 0,
        sha256: None,
        complete: false,
        reply: None,
        error: None,
        unavailable: false,
        skipped: None,
    }
}

async fn scan_instream(
    client: &Client,
    a: &StagedArtefact,
    path: PathBuf,
    max_size: u64,
) -> FileScan {
    let mut scan = new_scan(a, ScanMethod::Instream);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            scan.error = Some(format!("cannot open {}: {e}", path.display()));
            return scan;
        }
    };
    let size = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => {
            scan.error = Some(format!("cannot read {}: {e}", path.display()));
            return scan;
        }
    };
    scan.size = size;
    if size > max_size || a.size > max_size {
        scan.skipped = Some(format!("too large: {size} bytes, limit {max_size}"));
        return scan;
    }
    let r = client.instream(file).await;
    scan.sent = r.sent;
    scan.sha256 = Some(r.sha256);
    scan.complete = r.complete;
    scan.reply = r.reply;
    scan.error = r.error;
    scan.unavailable = r.unavailable;
    scan
}

/// The staged file as opened and hashed: the descriptor clamd will get, and what was read.
struct Hashed {
    file: std::fs::File,
    stamp: Stamp,
    size: u64,
    read: u64,
    sha256: String,
}

/// Identity and change stamps of an open file: any write in between changes `ctime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(file: &std::fs::File) -> std::io::Result<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = file.metadata()?;
        Ok(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// Open (no symlinks, regular files only) and, unless it is over `max_size`, hash the file
/// through the descriptor: relgate's one read of it. `Ok(Err(size))` means too large.
fn open_and_hash(path: &std::path::Path, max_size: u64) -> std::io::Result<Result<Hashed, u64>> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: a FIFO put in place of the staged file must not hang the open; it has no
    // effect on the regular file that is read and passed.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let stamp = Stamp::of(&file)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if stamp.len > max_size {
        return Ok(Err(stamp.len));
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    let mut rd = &file;
    loop {
        let n = match rd.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        read += n as u64;
    }
    Ok(Ok(Hashed {
        file,
        size: stamp.len,
        stamp,
        read,
        sha256: hex::encode(hasher.finalize()),
    }))
}

/// Hash the staged file through one descriptor, check the digest, and pass that descriptor to
/// clamd once a scan slot is free.
async fn scan_fildes(
    client: &Client,
    a: &StagedArtefact,
    path: PathBuf,
    max_size: u64,
    scans: &tokio::sync::Semaphore,
) -> FileScan {
    let mut scan = new_scan(a, ScanMethod::Fildes);
    if a.size > max_size {
        scan.skipped = Some(format!("too large: {} bytes, limit {max_size}", a.size));
        return scan;
    }
    let p = path.clone();
    let hashed = match tokio::task::spawn_blocking(move || open_and_hash(&p, max_size)).await {
        Ok(Ok(Ok(h))) => h,
        Ok(Ok(Err(size))) => {
            scan.size = size;
            scan.skipped = Some(format!("too large: {size} bytes, limit {max_size}"));
            return scan;
        }
        Ok(Err(e)) => {
            scan.error = Some(format!("cannot read {}: {e}", path.display()));
            return scan;
        }
        Err(e) => {
            scan.error = Some(format!("hashing {} failed: {e}", path.display()));
            return scan;
        }
    };
    scan.size = hashed.size;
    scan.sent = hashed.read;
    scan.sha256 = Some(hashed.sha256.clone());
    if hashed.sha256 != a.sha256 || hashed.read != hashed.size {
        // Not passed to clamd: a verdict on other bytes than the staged ones proves nothing.
        scan.error = Some(format!(
            "the staged file changed after staging ({} bytes with sha256 {}); not scanned",
            hashed.read, hashed.sha256
        ));
        return scan;
    }
    let _slot = scans.acquire().await;
    let r = client.fildes(&hashed.file).await;
    let after = Stamp::of(&hashed.file);
    let unchanged = after.as_ref().is_ok_and(|s| *s == hashed.stamp);
    scan.complete = r.passed && unchanged;
    scan.reply = r.reply;
    scan.unavailable = r.unavailable;
    let mut errors: Vec<String> = r.error.into_iter().collect();
    if r.passed && !unchanged {
        errors.push(match after {
            Ok(_) => "the staged file changed while clamd scanned it".to_string(),
            Err(e) => format!("cannot check the staged file after the scan: {e}"),
        });
    }
    scan.error = (!errors.is_empty()).then(|| errors.join("; "));
    scan
}

/// Green iff every artefact of the subject's SHA256SUMS was scanned exactly once, over its
/// staged bytes, with exactly `stream: OK` (INSTREAM) or `fd[N]: OK` (FILDES), and the signatures were fresh enough.
pub fn judge(spec: &VirusScanSpec, ev: &VirusScanEvidence, cx: &JudgeContext<'_>) -> Verdict {
    if let Some(e) = &ev.scanner_error {
        // The recorded error names the address (or the private clamd's database folder).
        return Verdict::red(Code::ScannerUnavailable, e.clone());
    }
    let mut reasons = Vec::new();
    let expected = match staged_list(ev, cx) {
        Ok(list) => list,
        Err(r) => {
            reasons.push(r);
            Vec::new()
        }
    };
    for (sha, path) in &expected {
        let scans: Vec<&FileScan> = ev
            .files
            .iter()
            .filter(|f| &f.release_path == path)
            .collect();
        match scans.as_slice() {
            [] => reasons.push(Reason::new(
                Code::NotScanned,
                format!("{path}: not scanned"),
            )),
            [one] => {
                if let Some(r) = judge_file(one, sha) {
                    reasons.push(r);
                }
            }
            many => reasons.push(Reason::new(
                Code::NotScanned,
                format!("{path}: recorded {} times, expected once", many.len()),
            )),
        }
    }
    for f in &ev.files {
        if !expected.iter().any(|(_, p)| p == &f.release_path) && !expected.is_empty() {
            reasons.push(Reason::new(
                Code::NotScanned,
                format!(
                    "{}: scanned but not in the release's SHA256SUMS",
                    f.release_path
                ),
            ));
        }
    }
    if let Some(max_age) = spec.max_signature_age_secs {
        reasons.extend(judge_freshness(ev, max_age, cx.started_at));
    }
    Verdict::from_reasons(reasons)
}

/// The (sha256, release path) list of this release, from the stored SHA256SUMS.
fn staged_list(
    ev: &VirusScanEvidence,
    cx: &JudgeContext<'_>,
) -> Result<Vec<(String, String)>, Reason> {
    let missing = |why: String| Reason::new(Code::NotScanned, why);
    if format!("sha256:{}", ev.sums) != cx.subject {
        return Err(missing(format!(
            "the recorded artefact list sha256:{} is not this release's subject {}",
            ev.sums, cx.subject
        )));
    }
    let bytes = cx
        .blobs
        .get(&ev.sums)
        .map_err(|e| missing(format!("the recorded artefact list cannot be read: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| missing("the recorded artefact list is not UTF-8".to_string()))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((sha, path)) = line.split_once("  ") else {
            return Err(missing(format!(
                "the recorded artefact list has a bad line {line:?}"
            )));
        };
        out.push((sha.to_string(), path.to_string()));
    }
    Ok(out)
}

fn judge_file(f: &FileScan, staged_sha: &str) -> Option<Reason> {
    let path = &f.release_path;
    if let Some(why) = &f.skipped {
        let code = if why.starts_with("too large") {
            Code::TooLarge
        } else {
            Code::NotScanned
        };
        return Some(Reason::new(code, format!("{path}: not scanned: {why}")));
    }
    let Some(raw) = &f.reply else {
        let err = f.error.as_deref().unwrap_or("no reply");
        // A FILDES scan hashes first and is not sent when the digest is not the staged one.
        if f.method == ScanMethod::Fildes
            && let Some(sha) = f.sha256.as_deref()
            && sha != staged_sha
        {
            return Some(Reason::new(
                Code::DigestMismatch,
                format!(
                    "{path}: the staged file has sha256 {sha}, SHA256SUMS says {staged_sha}; {err}"
                ),
            ));
        }
        let code = if f.unavailable {
            Code::ScannerUnavailable
        } else {
            Code::ScanError
        };
        return Some(Reason::new(code, format!("{path}: {err}")));
    };
    let parsed = match f.method {
        ScanMethod::Instream => parse_scan_reply(raw),
        ScanMethod::Fildes => parse_fildes_reply(raw),
    };
    match parsed {
        // clamd names what it could not look into `Heuristics.Encrypted.*` (with AlertEncrypted):
        // not a virus, but nothing in it was scanned, so it is red with a code of its own.
        ScanReply::Found(name) if name.starts_with("Heuristics.Encrypted.") => Some(Reason::new(
            Code::EncryptedContent,
            format!("{path}: {name} FOUND"),
        )),
        ScanReply::Found(name) => Some(Reason::new(
            Code::VirusFound,
            format!("{path}: {name} FOUND"),
        )),
        ScanReply::NotClean(why) => {
            let extra = f
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            Some(Reason::new(
                Code::ScanError,
                format!("{path}: {why}{extra}"),
            ))
        }
        ScanReply::Clean => {
            if f.method == ScanMethod::Fildes && !f.complete {
                Some(Reason::new(
                    Code::DigestMismatch,
                    format!(
                        "{path}: clamd's OK does not cover the hashed file: {}",
                        f.error
                            .as_deref()
                            .unwrap_or("the descriptor was not passed whole")
                    ),
                ))
            } else if !f.complete || f.sent != f.size {
                Some(Reason::new(
                    Code::DigestMismatch,
                    format!(
                        "{path}: clamd answered after {} of {} bytes; the staged file was not scanned whole",
                        f.sent, f.size
                    ),
                ))
            } else if f.sha256.as_deref() != Some(staged_sha) {
                Some(Reason::new(
                    Code::DigestMismatch,
                    format!(
                        "{path}: the scanned bytes have sha256 {}, the staged file {staged_sha}",
                        f.sha256.as_deref().unwrap_or("(none)")
                    ),
                ))
            } else {
                None
            }
        }
    }
}

fn judge_freshness(ev: &VirusScanEvidence, max_age: u64, now: i64) -> Option<Reason> {
    let undated = |why: String| Some(Reason::new(Code::SignaturesUndated, why));
    let Some(raw) = &ev.version_reply else {
        return undated("clamd's VERSION reply was not recorded".into());
    };
    let v = match parse_version(raw) {
        Ok(v) => v,
        Err(e) => return undated(format!("cannot read clamd's VERSION reply: {e}")),
    };
    let Some(date) = v.db_date else {
        return undated(format!(
            "clamd reports no signature database date ({}); max_signature_age needs a daily database",
            clamd::reply::shown(raw.trim_end_matches('\0'))
        ));
    };
    let age = now.saturating_sub(date);
    if age > i64::try_from(max_age).unwrap_or(i64::MAX) {
        let version = v.db_version.map(|n| format!(" {n}")).unwrap_or_default();
        return Some(Reason::new(
            Code::SignaturesStale,
            format!(
                "signature database{version} is {} old (built {}), more than max_signature_age {}",
                human_secs(age.unsigned_abs()),
                iso_utc(date),
                human_secs(max_age)
            ),
        ));
    }
    None
}

fn human_secs(s: u64) -> String {
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h{m:02}m"),
        (d, h, _) => format!("{d}d{h:02}h"),
    }
}

fn iso_utc(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

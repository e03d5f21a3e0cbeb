//! `relgate verify DIR`: check a published release folder (SPEC §5) without the release record's
//! help: every file against `SHA256SUMS`, nothing unlisted, `SHA256SUMS.sig` made by the
//! release signer under a trust root from outside the folder (`crate::trust`), and the release's
//! attestation (`attestation.intoto.jsonl`, a SLSA VSA in a DSSE envelope) signed by that same
//! key over exactly the artefacts `SHA256SUMS` lists, with `release.pub.pem` that key.
//!
//! The checks mirror what a downstream user can run by hand (`sha256sum -c --strict` and
//! `ssh-keygen -Y verify -n file`), but stricter: the checksum file must be exactly what relgate
//! writes, and files that the checksum file does not list are refused, since a reader of the
//! folder cannot tell them from the release.
//!
//! The folder is a [`Folder`]: a path on this machine or a URL, checked by the same code.

use crate::digest::{is_hex_digest, sha256_reader};
use crate::folder::{Folder, FolderError, Item};
use crate::sshsig;
use crate::trust::TrustRoot;
use std::collections::BTreeSet;
use std::fmt;

pub use crate::layout::{AUDIT_DIR, AUDIT_SIGNERS, PUBKEY_FILE, SIG_FILE, SUMS_FILE, VSA_FILE};

/// One problem with the folder, about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file it concerns, as the user would name it (`SHA256SUMS:3`, `a.tar.gz`).
    pub file: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

fn problem(file: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        file: file.into(),
        message: message.into(),
    }
}

/// Why one file listed in `SHA256SUMS` does not verify; its message follows the file's name.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// It cannot be opened or read (missing, a symbolic link, a download cut off).
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error("checksum mismatch (SHA256SUMS line {line} lists {listed}, the file is {actual})")]
    Mismatch {
        line: usize,
        listed: String,
        actual: String,
    },
    /// No worker reported on it (cannot happen; reported rather than passed).
    #[error("was not checked")]
    NotChecked { rel: String },
}

/// A folder that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub files: usize,
    /// Who signed `SHA256SUMS`, as the trust root names them (`release@acme.test (SHA256:…)`).
    pub signer: String,
    /// The exact bytes of the verified `SHA256SUMS`.
    pub sums: Vec<u8>,
    /// The exact bytes of the verified `SHA256SUMS.sig`.
    pub signature: Vec<u8>,
    /// The exact bytes of the verified attestation's statement (replay derives them again).
    pub statement: Vec<u8>,
}

/// One line of `SHA256SUMS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SumsLine {
    pub line: usize,
    pub sha256: String,
    pub path: String,
}

/// Verify the folder; `at` (unix seconds) is the time the signers' validity windows are
/// checked at, as `ssh-keygen -Y verify` checks them at the current time.
pub fn check(folder: &dyn Folder, trust: &TrustRoot, at: i64) -> Result<Verified, Vec<Problem>> {
    if let Err(e) = folder.check_root() {
        return Err(vec![problem(folder.describe(), e.to_string())]);
    }
    let mut problems = Vec::new();

    let sums = match read_small(folder, SUMS_FILE) {
        Ok(b) => b,
        Err(e) => {
            problems.push(problem(SUMS_FILE, e.to_string()));
            // Without the checksum file nothing else can be judged; say what else is off.
            if let Err(e) = read_small(folder, SIG_FILE) {
                problems.push(problem(SIG_FILE, e.to_string()));
            }
            return Err(problems);
        }
    };
    let (lines, mut parse_problems) = parse_sums(&sums);
    problems.append(&mut parse_problems);

    for (l, r) in lines
        .iter()
        .zip(check_files(folder, &lines, folder.concurrency()))
    {
        if let Err(e) = r {
            problems.push(problem(&l.path, e.to_string()));
        }
    }
    let listed: BTreeSet<&str> = lines.iter().map(|l| l.path.as_str()).collect();
    problems.extend(unlisted(folder, &listed));

    let signature = check_signature(folder, trust, &sums, at);
    // The attestation is the same key's word on the same artefacts.
    let statement = match &signature {
        Ok((_, _, key)) => {
            let subjects: Vec<(String, String)> = lines
                .iter()
                .map(|l| (l.path.clone(), l.sha256.clone()))
                .collect();
            check_attestation(folder, key, &subjects)
                .map_err(|p| problems.push(p))
                .ok()
        }
        Err(_) => None,
    };
    match (signature, statement) {
        (Ok((signer, signature, _)), Some(statement)) if problems.is_empty() => Ok(Verified {
            files: lines.len(),
            signer,
            sums,
            signature,
            statement,
        }),
        (Ok(_), _) => Err(problems),
        (Err(mut p), _) => {
            problems.append(&mut p);
            Err(problems)
        }
    }
}

/// The attestation and the PEM beside it (`crate::intoto::vsa::check`); returns the statement.
fn check_attestation(
    folder: &dyn Folder,
    key: &ssh_key::PublicKey,
    subjects: &[(String, String)],
) -> Result<Vec<u8>, Problem> {
    let envelope = read_small(folder, VSA_FILE).map_err(|e| {
        problem(
            VSA_FILE,
            format!("{e} (every release carries its SLSA verification summary)"),
        )
    })?;
    let pem = read_small(folder, PUBKEY_FILE).map_err(|e| problem(PUBKEY_FILE, e.to_string()))?;
    crate::intoto::vsa::check(&envelope, &pem, key, subjects)
        .map_err(|(file, message)| problem(file, message))
}

/// The largest `SHA256SUMS` or signature file read: far beyond any real one, small enough
/// that a hostile folder cannot exhaust memory.
const MAX_SMALL_FILE: u64 = crate::folder::MAX_SMALL_FILE;

/// Read a small file of the folder (a regular file, not over [`MAX_SMALL_FILE`]).
fn read_small(folder: &dyn Folder, rel: &str) -> Result<Vec<u8>, FolderError> {
    crate::folder::read_capped(folder, rel, MAX_SMALL_FILE)
}

/// Parse `SHA256SUMS` strictly: GNU text-mode lines (`<64 lowercase hex>  <path>\n`), sorted
/// by path bytes, no duplicates, no escaped (`\`) lines, relative paths inside the folder.
/// Returns the good lines and a problem for each bad one.
pub fn parse_sums(bytes: &[u8]) -> (Vec<SumsLine>, Vec<Problem>) {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let at = |n: usize| format!("{SUMS_FILE}:{n}");
    let Ok(text) = std::str::from_utf8(bytes) else {
        return (lines, vec![problem(SUMS_FILE, "is not UTF-8")]);
    };
    if text.is_empty() {
        return (lines, vec![problem(SUMS_FILE, "lists no files")]);
    }
    let body = match text.strip_suffix('\n') {
        Some(b) => b,
        None => {
            problems.push(problem(SUMS_FILE, "does not end with a line feed"));
            text
        }
    };
    let mut prev: Option<String> = None;
    for (i, raw) in body.split('\n').enumerate() {
        let n = i + 1;
        match parse_sums_line(raw) {
            Ok((sha256, path)) => {
                if let Some(p) = &prev {
                    if p.as_str() == path {
                        problems.push(problem(at(n), format!("{path} is listed twice")));
                        continue;
                    }
                    if p.as_str() > path {
                        problems.push(problem(
                            at(n),
                            format!("{path} is out of order (after {p}); lines must be sorted"),
                        ));
                    }
                }
                prev = Some(path.to_string());
                lines.push(SumsLine {
                    line: n,
                    sha256: sha256.to_string(),
                    path: path.to_string(),
                });
            }
            Err(m) => problems.push(problem(at(n), m)),
        }
    }
    (lines, problems)
}

fn parse_sums_line(raw: &str) -> Result<(&str, &str), String> {
    if raw.starts_with('\\') {
        return Err("escaped line (a name with a backslash or line break) is not allowed".into());
    }
    if raw.contains('\r') {
        return Err("carriage return in line".into());
    }
    let (hash, rest) = raw
        .split_at_checked(64)
        .ok_or("expected 64 hex digits, two spaces and a path")?;
    if !is_hex_digest(hash) {
        return Err(format!("{hash:?} is not 64 lowercase hex digits"));
    }
    let path = if let Some(p) = rest.strip_prefix("  ") {
        p
    } else if rest.starts_with(" *") {
        return Err("binary-mode line (\" *\"); expected two spaces".into());
    } else {
        return Err("expected two spaces after the digest".into());
    };
    check_release_path(path)?;
    Ok((hash, path))
}

/// A listed path must follow the release-path rule (`crate::names`): the same one `check` and
/// `run` apply, so that every name relgate publishes verifies and nothing else does.
fn check_release_path(path: &str) -> Result<(), String> {
    crate::names::check_release_path(path).map_err(|p| format!("{path:?}: {p}"))
}

/// Check every listed file, up to `workers` at once; the results come in the order of `lines`
/// whatever order the files finish in, so messages are the same from run to run.
///
/// Largest first: the release takes as long as its longest file, so that one starts at once
/// and the small ones fill the other workers meanwhile. Each worker holds one read buffer
/// ([`sha256_reader`]'s), so memory stays bounded whatever the sizes.
fn check_files(
    folder: &dyn Folder,
    lines: &[SumsLine],
    workers: usize,
) -> Vec<Result<(), FileError>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let workers = workers.clamp(1, lines.len().max(1));
    if workers == 1 {
        return lines.iter().map(|l| check_file(folder, l)).collect();
    }
    let mut order: Vec<(std::cmp::Reverse<u64>, usize)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (std::cmp::Reverse(folder.size(&l.path).unwrap_or(0)), i))
        .collect();
    order.sort();
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<(), FileError>>>> =
        lines.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(&(_, i)) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let r = check_file(folder, &lines[i]);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .zip(lines)
        .map(|(slot, l)| {
            // Every index is taken by exactly one worker, and a worker that panics takes the
            // scope down with it; an empty slot is still reported rather than passed.
            slot.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(FileError::NotChecked {
                    rel: l.path.clone(),
                })
            })
        })
        .collect()
}

/// One listed file: reached without symbolic links, a regular file, with the listed digest
/// (hashed as it is read or downloaded).
fn check_file(folder: &dyn Folder, l: &SumsLine) -> Result<(), FileError> {
    let file = folder.open(&l.path)?;
    let (actual, _) = sha256_reader(file).map_err(|source| FolderError::Read {
        rel: l.path.clone(),
        source,
    })?;
    if actual != l.sha256 {
        return Err(FileError::Mismatch {
            line: l.line,
            listed: l.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Everything in the folder that is neither listed, nor one of the release's own files
/// (`SHA256SUMS`, its `.sig`, the attestation and its PEM), nor under audit/ (the release
/// record: replay's business, not part of the checksum file).
fn unlisted(folder: &dyn Folder, listed: &BTreeSet<&str>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for item in folder.walk(Some(AUDIT_DIR)) {
        match item {
            Item::Problem { at, why } => problems.push(problem(at, why.to_string())),
            Item::Entry { dir: true, .. } => {}
            Item::Entry { rel, .. } => {
                let audit = rel
                    .strip_prefix(AUDIT_DIR)
                    .is_some_and(|r| r.starts_with('/'));
                // The release's own files, each checked by its own step.
                let own = [SUMS_FILE, SIG_FILE, VSA_FILE, PUBKEY_FILE];
                if own.contains(&rel.as_str()) || audit || listed.contains(rel.as_str()) {
                    continue;
                }
                problems.push(problem(rel, "not listed in SHA256SUMS"));
            }
        }
    }
    problems
}

/// Verify `SHA256SUMS.sig` over `sums` in namespace `file` by the release signer under the
/// trust root; returns who signed, the signature's bytes and the key.
fn check_signature(
    folder: &dyn Folder,
    trust: &TrustRoot,
    sums: &[u8],
    at: i64,
) -> Result<(String, Vec<u8>, ssh_key::PublicKey), Vec<Problem>> {
    let sig = read_small(folder, SIG_FILE).map_err(|e| vec![problem(SIG_FILE, e.to_string())])?;
    let armored = std::str::from_utf8(&sig).map_err(|_| vec![problem(SIG_FILE, "is not text")])?;
    let key = sshsig::signature_key(armored).map_err(|e| vec![problem(SIG_FILE, e.to_string())])?;
    let fp = sshsig::fingerprint(&key);
    sshsig::verify_with_key(&key, sshsig::NS_FILE, sums, armored).map_err(|e| {
        vec![problem(
            SIG_FILE,
            format!("{e} (namespace file, SHA256SUMS, key {fp})"),
        )]
    })?;
    let who = trust
        .release_key(&key, sshsig::NS_FILE, at)
        .map_err(|m| vec![problem(SIG_FILE, m)])?;
    Ok((who, sig, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn good_sums_parse() {
        let text = format!("{}  a.tar.gz\n{}  linux/x.bin\n", h('a'), h('0'));
        let (lines, problems) = parse_sums(text.as_bytes());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].path, "linux/x.bin");
        assert_eq!(lines[1].sha256, h('0'));
    }

    #[test]
    fn every_bad_sums_line_is_reported() {
        let text = [
            format!("{}  b", h('a')),               // 1 fine
            format!("{}  a", h('a')),               // 2 out of order
            format!("{}  b", h('a')),               // 3 after a: b again; sorted, fine
            format!("{}  b", h('a')),               // 4 duplicate
            format!("{}  c", h('A')),               // 5 uppercase
            format!("{} *d", h('a')),               // 6 binary mode
            format!("\\{}  e\\\\x", h('a')),        // 7 escaped
            format!("{}  ../f", h('a')),            // 8 parent
            format!("{}  /g", h('a')),              // 9 absolute
            format!("{}  h//i", h('a')),            // 10 empty component
            format!("{}  SHA256SUMS.sig", h('a')),  // 11 reserved
            format!("{}  audit/log.jsonl", h('a')), // 12 reserved
            format!("{} j", h('a')),                // 13 one space
            "abc  k".to_string(),                   // 14 short digest
            format!("{}  l\r", h('a')),             // 15 CR
        ]
        .join("\n");
        let (lines, problems) = parse_sums(text.as_bytes());
        let at: Vec<&str> = problems.iter().map(|p| p.file.as_str()).collect();
        let mut want: Vec<String> = (2..=15)
            .filter(|n| *n != 3)
            .map(|n| format!("SHA256SUMS:{n}"))
            .collect();
        want.insert(0, "SHA256SUMS".into()); // no final line feed
        assert_eq!(at, want, "{problems:#?}");
        assert_eq!(lines.len(), 3);
    }

    /// A folder of files whose contents are their names. With `pair`, a file opens only while
    /// another one is open too: one file after another, the first open waits for a partner
    /// that never comes. Otherwise the later a file is listed, the sooner it opens.
    struct Names {
        open: std::sync::Mutex<usize>,
        changed: std::sync::Condvar,
        pair: bool,
    }

    impl Names {
        fn new(pair: bool) -> Names {
            Names {
                open: std::sync::Mutex::new(0),
                changed: std::sync::Condvar::new(),
                pair,
            }
        }
    }

    impl Folder for Names {
        fn describe(&self) -> String {
            "names".into()
        }
        fn check_root(&self) -> Result<(), FolderError> {
            Ok(())
        }
        fn open(&self, rel: &str) -> Result<Box<dyn std::io::Read + '_>, FolderError> {
            if self.pair {
                let mut open = self.open.lock().unwrap();
                *open += 1;
                self.changed.notify_all();
                let wait = std::time::Duration::from_secs(10);
                let (_open, timeout) = self
                    .changed
                    .wait_timeout_while(open, wait, |n| *n < 2)
                    .unwrap();
                if timeout.timed_out() {
                    return Err(FolderError::Read {
                        rel: rel.into(),
                        source: std::io::Error::other("opened alone"),
                    });
                }
            } else {
                let n: u64 = rel.trim_start_matches('f').parse().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(40 - n));
            }
            Ok(Box::new(std::io::Cursor::new(rel.as_bytes().to_vec())))
        }
        fn walk(&self, _: Option<&str>) -> Vec<Item> {
            Vec::new()
        }
        fn regular_files(&self) -> Result<Vec<String>, FolderError> {
            Ok(Vec::new())
        }
        fn is_dir(&self, _: &str) -> Result<bool, FolderError> {
            Ok(false)
        }
    }

    fn line(n: usize, path: &str) -> SumsLine {
        SumsLine {
            line: n,
            sha256: crate::digest::sha256_hex(path.as_bytes()),
            path: path.into(),
        }
    }

    #[test]
    fn files_are_hashed_at_once_on_several_workers() {
        let lines = [line(1, "a"), line(2, "b")];
        let results = check_files(&Names::new(true), &lines, 2);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(results.len(), 2);
    }

    #[test]
    fn results_keep_the_order_of_sums_whatever_finishes_first() {
        let mut lines: Vec<SumsLine> = (0..40).map(|i| line(i + 1, &format!("f{i:02}"))).collect();
        for l in lines.iter_mut().skip(3).step_by(7) {
            l.sha256 = h('0');
        }
        let results = check_files(&Names::new(false), &lines, 4);
        assert_eq!(results.len(), lines.len());
        for (l, r) in lines.iter().zip(&results) {
            let bad = l.sha256 == h('0');
            let mismatch = matches!(r, Err(FileError::Mismatch { line, .. }) if *line == l.line);
            assert_eq!(mismatch, bad, "{}: {r:?}", l.path);
            assert!(bad || r.is_ok(), "{}: {r:?}", l.path);
        }
    }

    #[test]
    fn empty_sums_is_a_problem() {
        let (_, p) = parse_sums(b"");
        assert_eq!(p[0].message, "lists no files");
    }
}

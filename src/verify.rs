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

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::digest::{is_hex_digest, sha256_reader};
use crate::sshsig;
use crate::trust::TrustRoot;

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
pub fn check(dir: &Path, trust: &TrustRoot, at: i64) -> Result<Verified, Vec<Problem>> {
    let shown = dir.display().to_string();
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(m) if m.file_type().is_symlink() => {
            return Err(vec![problem(shown, "is a symbolic link, not a folder")]);
        }
        Ok(_) => return Err(vec![problem(shown, "not a folder")]),
        Err(e) => return Err(vec![problem(shown, format!("cannot open the folder: {e}"))]),
    }
    let mut problems = Vec::new();

    let sums = match read_regular(&dir.join(SUMS_FILE)) {
        Ok(b) => b,
        Err(m) => {
            problems.push(problem(SUMS_FILE, m));
            // Without the checksum file nothing else can be judged; say what else is off.
            check_signature_file_exists(dir, &mut problems);
            return Err(problems);
        }
    };
    let (lines, mut parse_problems) = parse_sums(&sums);
    problems.append(&mut parse_problems);

    for l in &lines {
        if let Err(m) = check_file(dir, l) {
            problems.push(problem(&l.path, m));
        }
    }
    let listed: BTreeSet<&str> = lines.iter().map(|l| l.path.as_str()).collect();
    problems.extend(unlisted(dir, &listed));

    let signature = check_signature(dir, trust, &sums, at);
    // The attestation is the same key's word on the same artefacts.
    let statement = match &signature {
        Ok((_, _, key)) => {
            let subjects: Vec<(String, String)> = lines
                .iter()
                .map(|l| (l.path.clone(), l.sha256.clone()))
                .collect();
            check_attestation(dir, key, &subjects)
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
    dir: &Path,
    key: &ssh_key::PublicKey,
    subjects: &[(String, String)],
) -> Result<Vec<u8>, Problem> {
    let envelope = read_regular(&dir.join(VSA_FILE)).map_err(|m| {
        problem(
            VSA_FILE,
            format!("{m} (every release carries its SLSA verification summary)"),
        )
    })?;
    let pem = read_regular(&dir.join(PUBKEY_FILE)).map_err(|m| problem(PUBKEY_FILE, m))?;
    crate::intoto::vsa::check(&envelope, &pem, key, subjects)
        .map_err(|(file, message)| problem(file, message))
}

fn check_signature_file_exists(dir: &Path, problems: &mut Vec<Problem>) {
    if let Err(m) = read_regular(&dir.join(SIG_FILE)) {
        problems.push(problem(SIG_FILE, m));
    }
}

/// The largest `SHA256SUMS` or signature file read: far beyond any real one, small enough
/// that a hostile folder cannot exhaust memory.
const MAX_SMALL_FILE: u64 = 64 << 20;

/// Read a file that must be a regular file, not a symbolic link, FIFO or device, and not over
/// [`MAX_SMALL_FILE`].
pub(crate) fn read_regular(path: &Path) -> Result<Vec<u8>, String> {
    crate::record::read_capped(path, MAX_SMALL_FILE).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "missing".to_string(),
        _ => e.to_string(),
    })
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

/// One listed file: reached without symbolic links, a regular file, with the listed digest.
fn check_file(dir: &Path, l: &SumsLine) -> Result<(), String> {
    // Every folder on the way must be a real folder: a symlinked folder could point anywhere.
    let mut at = dir.to_path_buf();
    let parts: Vec<&str> = l.path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let meta = match fs::symlink_metadata(&at) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("missing".into()),
            Err(e) => return Err(format!("cannot read: {e}")),
        };
        let last = i + 1 == parts.len();
        if meta.file_type().is_symlink() {
            return Err(if last {
                "is a symbolic link".into()
            } else {
                format!("{} is a symbolic link", parts[..=i].join("/"))
            });
        }
        if last && !meta.is_file() {
            return Err("is not a regular file".into());
        }
        if !last && !meta.is_dir() {
            return Err(format!("{} is not a folder", parts[..=i].join("/")));
        }
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&at)
        .map_err(|e| format!("cannot open: {e}"))?;
    let (actual, _) = sha256_reader(file).map_err(|e| format!("cannot read: {e}"))?;
    if actual != l.sha256 {
        return Err(format!(
            "checksum mismatch (SHA256SUMS line {} lists {}, the file is {actual})",
            l.line, l.sha256
        ));
    }
    Ok(())
}

/// Everything in the folder that is neither listed, nor one of the release's own files
/// (`SHA256SUMS`, its `.sig`, the attestation and its PEM), nor under audit/.
fn unlisted(dir: &Path, listed: &BTreeSet<&str>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name();
    let mut it = walk.into_iter();
    while let Some(entry) = it.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let at = e
                    .path()
                    .and_then(|p| p.strip_prefix(dir).ok())
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| dir.display().to_string());
                problems.push(problem(at, format!("cannot read: {e}")));
                continue;
            }
        };
        let Ok(rel) = entry.path().strip_prefix(dir) else {
            continue;
        };
        let Some(rel_str) = rel.to_str() else {
            problems.push(problem(
                rel.display().to_string(),
                "name is not UTF-8; not listed in SHA256SUMS",
            ));
            continue;
        };
        let ft = entry.file_type();
        if ft.is_dir() {
            if rel_str == AUDIT_DIR {
                // The release record: replay's business, not part of the checksum file.
                it.skip_current_dir();
            }
            continue;
        }
        // The release's own files, each checked by its own step.
        let own = [SUMS_FILE, SIG_FILE, VSA_FILE, PUBKEY_FILE];
        if own.contains(&rel_str) || listed.contains(rel_str) {
            continue;
        }
        problems.push(problem(rel_str, "not listed in SHA256SUMS"));
    }
    problems
}

/// Verify `SHA256SUMS.sig` over `sums` in namespace `file` by the release signer under the
/// trust root; returns who signed, the signature's bytes and the key.
fn check_signature(
    dir: &Path,
    trust: &TrustRoot,
    sums: &[u8],
    at: i64,
) -> Result<(String, Vec<u8>, ssh_key::PublicKey), Vec<Problem>> {
    let sig = read_regular(&dir.join(SIG_FILE)).map_err(|m| vec![problem(SIG_FILE, m)])?;
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

    #[test]
    fn empty_sums_is_a_problem() {
        let (_, p) = parse_sums(b"");
        assert_eq!(p[0].message, "lists no files");
    }
}

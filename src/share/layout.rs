//! Where things are on a share (docs/team.md):
//!
//! ```text
//! <project>/releases/<version>/runs/<sha256>.json[.sig]        run reports; a pending one is the open request
//! <project>/releases/<version>/statements/<sha256>.json[.sig]  sign-offs, named by their statement's digest
//! <project>/releases/<version>/records/<id>/checkpoints/NAME[.sig]   each checkpoint of a release record
//! <project>/releases/<version>/lease/<seq>/lease.json          publish leases (released.json once given back)
//! <project>/dry-runs/<version>/runs/<sha256>.json[.sig]        dry runs' reports (a throwaway key signs them)
//! <project>/dry-runs/<version>/records/<id>/…                  dry runs' records
//! ```
//!
//! A record's `<id>` is the chain head of its log's first line: it names one record for good
//! (another record of the same version starts with another line), and a record cut back keeps it.

use super::ShareError;

/// The JSON object of a content-addressed pair; its signature is `NAME.sig`.
pub const JSON: &str = ".json";
pub const SIG: &str = ".sig";

/// `releases` or `dry-runs`: where a run's things go.
pub fn kind_dir(dry_run: bool) -> &'static str {
    if dry_run { "dry-runs" } else { "releases" }
}

/// `<project>/<releases|dry-runs>/<version>`.
pub fn release_dir(project: &str, version: &str, dry_run: bool) -> String {
    format!("{project}/{}/{version}", kind_dir(dry_run))
}

pub fn runs_dir(project: &str, version: &str, dry_run: bool) -> String {
    format!("{}/runs", release_dir(project, version, dry_run))
}

pub fn statements_dir(project: &str, version: &str) -> String {
    format!("{}/statements", release_dir(project, version, false))
}

pub fn record_dir(project: &str, version: &str, dry_run: bool, id: &str) -> String {
    format!("{}/records/{id}", release_dir(project, version, dry_run))
}

pub fn checkpoints_dir(project: &str, version: &str, id: &str) -> String {
    format!("{}/checkpoints", record_dir(project, version, false, id))
}

pub fn lease_dir(project: &str, version: &str) -> String {
    format!("{}/lease", release_dir(project, version, false))
}

/// `<sha256 hex>.json`, the name of a content-addressed object.
pub fn object_name(bytes: &[u8]) -> String {
    format!("{}{JSON}", crate::digest::sha256_hex(bytes))
}

/// Does `name` (a `<hex>.json`) name exactly these bytes?
pub fn names_bytes(name: &str, bytes: &[u8]) -> bool {
    name.strip_suffix(JSON)
        .is_some_and(|hex| crate::digest::sha256_hex(bytes) == hex)
}

/// Is `name` a `<64 hex>.json` object name?
pub fn is_object_name(name: &str) -> bool {
    name.strip_suffix(JSON)
        .is_some_and(crate::digest::is_hex_digest)
}

/// One part of a name on a share: what relgate writes, and all it reads. No separator, no
/// `.`/`..`, nothing hidden, nothing a server or a terminal could take for something else.
pub fn check_name(part: &str) -> Result<(), ShareError> {
    let ok = !part.is_empty()
        && part.len() <= 200
        && !part.starts_with('.')
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(ShareError::Refused {
            at: part.escape_debug().to_string(),
            why: "not a name relgate uses on a share".into(),
        })
    }
}

/// A `/`-separated path of [`check_name`] parts.
pub fn check_path(path: &str) -> Result<(), ShareError> {
    path.split('/').try_for_each(check_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_their_folder_are_refused() {
        for bad in ["..", ".", "", ".hidden", "a/b", "a\\b", "a b", "a\u{202e}b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_path("acme/releases/1.0.0+b1/runs").is_ok());
        assert!(check_path("acme/../x").is_err());
    }

    #[test]
    fn object_names_are_digests() {
        let name = object_name(b"x");
        assert!(is_object_name(&name) && names_bytes(&name, b"x"));
        assert!(!names_bytes(&name, b"y"));
    }
}

//! JUnit reports: finding the ones this run wrote after the command (collect side). Reading
//! them is [`super::report`]'s, counting their tests [`super::tally`]'s (judge side, pure).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Component, Path};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::record::{Record, RecordError};

/// Reports larger than this are not read (a runaway writer must not fill the record).
pub const MAX_REPORT_BYTES: u64 = 64 << 20;

/// One file matched by a `junit` glob.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct JunitFile {
    /// Path below the pipeline root, `/`-separated.
    pub path: String,
    /// The first glob (as written) that matched it.
    pub pattern: String,
    pub state: JunitState,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum JunitState {
    /// Written during the run; its bytes are in the evidence store under `sha256`.
    Fresh { sha256: String, size: u64 },
    /// Last modified before the command started: left over from an earlier build; ignored.
    Stale,
    /// Over [`MAX_REPORT_BYTES`]; not read.
    TooLarge { size: u64 },
    /// A symbolic link; not followed.
    Symlink,
    /// Could not be read.
    Unreadable { error: String },
}

/// A `junit` glob that could not be used.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BadPattern {
    pub pattern: String,
    pub error: String,
}

fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// The folder part of a glob that holds no metacharacter: the only place worth walking.
fn fixed_prefix(pattern: &str) -> String {
    let parts: Vec<&str> = pattern.split('/').collect();
    let n = parts
        .iter()
        .position(|p| has_glob_meta(p))
        .unwrap_or(parts.len().saturating_sub(1));
    parts[..n].join("/")
}

/// Find the reports matched by `patterns` below `root`. A file last modified before
/// `fresh_after` is recorded as stale; fresh ones are stored in `record`.
pub fn gather(
    root: &Path,
    patterns: &[String],
    fresh_after: SystemTime,
    record: &Record,
) -> Result<(Vec<JunitFile>, Vec<BadPattern>), RecordError> {
    let mut found: BTreeMap<String, JunitFile> = BTreeMap::new();
    let mut bad = Vec::new();
    for pattern in patterns {
        let as_path = Path::new(pattern);
        if as_path.is_absolute() || as_path.components().any(|c| c == Component::ParentDir) {
            bad.push(BadPattern {
                pattern: pattern.clone(),
                error: "leaves the pipeline folder".into(),
            });
            continue;
        }
        let glob = match globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
        {
            Ok(g) => g.compile_matcher(),
            Err(e) => {
                bad.push(BadPattern {
                    pattern: pattern.clone(),
                    error: e.kind().to_string(),
                });
                continue;
            }
        };
        let prefix = fixed_prefix(pattern);
        let base = root.join(&prefix);
        for entry in walkdir::WalkDir::new(&base)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
        {
            let Ok(rel) = entry.path().strip_prefix(root) else {
                continue;
            };
            let Some(rel) = rel.to_str() else { continue };
            if !glob.is_match(rel) || found.contains_key(rel) {
                continue;
            }
            let ft = entry.file_type();
            let state = if ft.is_symlink() {
                JunitState::Symlink
            } else if ft.is_file() {
                read_one(entry.path(), fresh_after, record)?
            } else {
                continue;
            };
            found.insert(
                rel.to_string(),
                JunitFile {
                    path: rel.to_string(),
                    pattern: pattern.clone(),
                    state,
                },
            );
        }
    }
    Ok((found.into_values().collect(), bad))
}

fn read_one(
    path: &Path,
    fresh_after: SystemTime,
    record: &Record,
) -> Result<JunitState, RecordError> {
    let unreadable = |e: std::io::Error| JunitState::Unreadable {
        error: e.to_string(),
    };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Ok(unreadable(e)),
    };
    let md = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Ok(unreadable(e)),
    };
    match md.modified() {
        Ok(m) if m < fresh_after => return Ok(JunitState::Stale),
        Ok(_) => {}
        Err(e) => return Ok(unreadable(e)),
    }
    if md.len() > MAX_REPORT_BYTES {
        return Ok(JunitState::TooLarge { size: md.len() });
    }
    let mut bytes = Vec::new();
    // take(): the file may still be growing if something outside the group writes it.
    if let Err(e) = file.take(MAX_REPORT_BYTES + 1).read_to_end(&mut bytes) {
        return Ok(unreadable(e));
    }
    let size = bytes.len() as u64;
    if size > MAX_REPORT_BYTES {
        return Ok(JunitState::TooLarge { size });
    }
    let sha256 = record.put(&bytes)?;
    Ok(JunitState::Fresh { sha256, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_prefix_stops_at_the_first_glob() {
        assert_eq!(fixed_prefix("target/junit/*.xml"), "target/junit");
        assert_eq!(fixed_prefix("**/TEST-*.xml"), "");
        assert_eq!(fixed_prefix("junit.xml"), "");
        assert_eq!(fixed_prefix("a/b/junit.xml"), "a/b");
    }
}

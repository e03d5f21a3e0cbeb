//! JUnit reports: finding the ones this run wrote after the command (collect side). Reading
//! them is [`super::report`]'s, counting their tests [`super::tally`]'s (judge side, pure).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Component, Path};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::record::{Record, RecordError};

/// Reports larger than this are not read (a runaway writer must not fill the record).
pub const MAX_REPORT_BYTES: u64 = 64 << 20;

/// How far past the end of the command window a report's modification time may lie and still
/// count as written during it: file systems that keep whole seconds, or a file server whose
/// clock is slightly ahead, must not turn a report of this run into one from the future.
pub const MTIME_SLACK: Duration = Duration::from_secs(1);

/// The command window: a report counts as written by this run only when its modification time
/// lies between the start of the command and the moment every process it started was gone.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: SystemTime,
    pub end: SystemTime,
}

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
    /// Last modified after the command window ended (a clock-tampered or future-dated file):
    /// not written by this run, and red.
    Future {
        mtime_unix_ms: i64,
        window_end_unix_ms: i64,
    },
    /// Found through a symbolically linked folder that leads out of the pipeline folder; not
    /// read. `resolved` is where it lies.
    OutsideProject { resolved: String },
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

/// Find the reports matched by `patterns` below `root`. A file modified outside `window` is
/// recorded as stale (before) or from the future (after); one that resolves outside `root`
/// through a linked folder is not read; the others are stored in `record`.
pub fn gather(
    root: &Path,
    patterns: &[String],
    window: Window,
    record: &Record,
) -> Result<(Vec<JunitFile>, Vec<BadPattern>), RecordError> {
    let mut found: BTreeMap<String, JunitFile> = BTreeMap::new();
    let mut bad = Vec::new();
    // Resolved once: a report must resolve below it. An unresolvable root leaves nothing inside.
    let real_root = fs::canonicalize(root).ok();
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
            let Some(raw) = rel.to_str() else { continue };
            if !glob.is_match(raw) {
                continue;
            }
            // One name per file whatever the glob spelt: `build/./r.xml` is `build/r.xml`.
            let rel = normalised(rel);
            if found.contains_key(&rel) {
                continue;
            }
            let ft = entry.file_type();
            let state = if ft.is_symlink() {
                JunitState::Symlink
            } else if ft.is_file() {
                match outside(entry.path(), real_root.as_deref()) {
                    Some(state) => state,
                    None => read_one(entry.path(), window, record)?,
                }
            } else {
                continue;
            };
            found.insert(
                rel.clone(),
                JunitFile {
                    path: rel,
                    pattern: pattern.clone(),
                    state,
                },
            );
        }
    }
    Ok((found.into_values().collect(), bad))
}

/// `rel` without `.` components, `/`-separated.
fn normalised(rel: &Path) -> String {
    rel.components()
        .filter(|c| *c != Component::CurDir)
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The walk does not follow links below its start, but the start itself (the glob's fixed
/// folder, `build` in `build/*.xml`) or one of its parents may be a link. A report reached
/// through a link that leads out of the pipeline folder is refused: the build must not pass
/// off files from elsewhere as its own. A link that stays inside is fine.
fn outside(path: &Path, real_root: Option<&Path>) -> Option<JunitState> {
    let unreadable = |error: String| Some(JunitState::Unreadable { error });
    let Some(real_root) = real_root else {
        return unreadable("the pipeline folder cannot be resolved".into());
    };
    match fs::canonicalize(path) {
        Ok(real) if real.starts_with(real_root) => None,
        Ok(real) => Some(JunitState::OutsideProject {
            resolved: real.to_string_lossy().into_owned(),
        }),
        Err(e) => unreadable(e.to_string()),
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

fn read_one(path: &Path, window: Window, record: &Record) -> Result<JunitState, RecordError> {
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
        Ok(m) if m < window.start => return Ok(JunitState::Stale),
        Ok(m) if m > window.end + MTIME_SLACK => {
            return Ok(JunitState::Future {
                mtime_unix_ms: unix_ms(m),
                window_end_unix_ms: unix_ms(window.end),
            });
        }
        Ok(_) => {}
        Err(e) => return Ok(unreadable(e)),
    }
    if md.len() > MAX_REPORT_BYTES {
        return Ok(JunitState::TooLarge { size: md.len() });
    }
    let mut bytes = Vec::new();
    // take(): bounded even if the file grows while we read it.
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

    #[test]
    fn dot_components_are_dropped_from_the_recorded_path() {
        assert_eq!(normalised(Path::new("build/./r.xml")), "build/r.xml");
        assert_eq!(normalised(Path::new("./build/r.xml")), "build/r.xml");
        assert_eq!(normalised(Path::new("a/b.xml")), "a/b.xml");
    }
}

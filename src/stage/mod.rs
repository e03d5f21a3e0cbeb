//! Artefacts: resolving the pipeline's globs to files with release paths, and staging them
//! (copy into the release record and hash in the same read), then `SHA256SUMS` and the subject.

use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

mod copy;
mod file_id;
mod lease;

use copy::MAX_WORKERS;
pub use copy::{copy_and_hash, copy_hash_and_stat};
pub use file_id::FileId;
pub use lease::{Lease, open_read_only, vouch};

/// One artefact file found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtefactFile {
    /// The glob (as written) that matched it.
    pub pattern: String,
    /// Path below the pipeline root.
    pub source: PathBuf,
    /// Path below the glob's fixed prefix, `/`-separated.
    pub release_path: String,
}

/// A problem resolving the artefact globs. Each is a configuration error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveProblem {
    #[error("glob {pattern:?} is not valid: {message}")]
    BadGlob { pattern: String, message: String },
    #[error("glob {pattern:?} leaves the pipeline folder")]
    Escapes { pattern: String },
    #[error("glob {pattern:?} matches no regular file")]
    NoMatch { pattern: String },
    #[error("{path} is a symbolic link (matched by {pattern:?}); artefacts must be regular files")]
    Symlink { pattern: String, path: String },
    #[error("{path:?}: {why}")]
    BadName {
        pattern: String,
        path: String,
        why: String,
    },
    #[error("{first} and {second} have the same release path {release_path:?}")]
    Collision {
        pattern: String,
        release_path: String,
        first: String,
        second: String,
    },
    #[error(
        "{first} and {second} differ only in letter case or Unicode normalisation; they would \
         overwrite each other when the release is unpacked on macOS or Windows"
    )]
    NearCollision {
        pattern: String,
        first: String,
        second: String,
    },
    #[error("cannot read {path}: {message}")]
    Io {
        pattern: String,
        path: String,
        message: String,
    },
}

impl ResolveProblem {
    /// The glob the problem belongs to, to point a diagnostic at it.
    pub fn pattern(&self) -> &str {
        match self {
            ResolveProblem::BadGlob { pattern, .. }
            | ResolveProblem::Escapes { pattern }
            | ResolveProblem::NoMatch { pattern }
            | ResolveProblem::Symlink { pattern, .. }
            | ResolveProblem::BadName { pattern, .. }
            | ResolveProblem::Collision { pattern, .. }
            | ResolveProblem::NearCollision { pattern, .. }
            | ResolveProblem::Io { pattern, .. } => pattern,
        }
    }
}

fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// Split a glob into its fixed folder prefix and the rest.
fn fixed_prefix(pattern: &str) -> (String, String) {
    let parts: Vec<&str> = pattern.split('/').collect();
    let n = parts
        .iter()
        .position(|p| has_glob_meta(p))
        .unwrap_or(parts.len().saturating_sub(1));
    (parts[..n].join("/"), parts[n..].join("/"))
}

/// Resolve every glob below `root`. Returns all problems at once.
pub fn resolve(root: &Path, patterns: &[String]) -> Result<Vec<ArtefactFile>, Vec<ResolveProblem>> {
    let mut files: Vec<ArtefactFile> = Vec::new();
    let mut problems = Vec::new();
    for pattern in patterns {
        match resolve_one(root, pattern) {
            Ok(found) => files.extend(found),
            Err(mut p) => problems.append(&mut p),
        }
    }
    // The same file matched by two globs with the same release path is one artefact.
    files.sort_by(|a, b| {
        a.release_path
            .cmp(&b.release_path)
            .then(a.source.cmp(&b.source))
    });
    files.dedup_by(|a, b| a.release_path == b.release_path && a.source == b.source);
    for pair in files.windows(2) {
        if pair[0].release_path == pair[1].release_path {
            problems.push(ResolveProblem::Collision {
                pattern: pair[1].pattern.clone(),
                release_path: pair[1].release_path.clone(),
                first: pair[0].source.display().to_string(),
                second: pair[1].source.display().to_string(),
            });
        }
    }
    // Names equal after case folding and NFC normalisation are one file on case-insensitive
    // or normalising file systems (macOS, Windows): refuse them as well.
    let mut folded: std::collections::BTreeMap<String, &ArtefactFile> =
        std::collections::BTreeMap::new();
    for f in &files {
        use unicode_normalization::UnicodeNormalization;
        let key: String = f.release_path.nfc().collect::<String>().to_lowercase();
        match folded.get(&key) {
            Some(first) if first.release_path != f.release_path => {
                problems.push(ResolveProblem::NearCollision {
                    pattern: f.pattern.clone(),
                    first: first.release_path.clone(),
                    second: f.release_path.clone(),
                });
            }
            Some(_) => {}
            None => {
                folded.insert(key, f);
            }
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(problems)
    }
}

/// Resolve one glob below `root`: every regular file it matches, with its release path, or
/// every problem found on the way.
///
/// Its steps, in this order: the glob itself checked (it must stay inside the pipeline
/// folder, then compile), its fixed prefix checked for symbolic links before anything below
/// it is read, the prefix folder walked, a glob without metacharacters taken as a plain file
/// path when the walk found nothing, and no match at all is a problem of its own.
fn resolve_one(root: &Path, pattern: &str) -> Result<Vec<ArtefactFile>, Vec<ResolveProblem>> {
    // 1. The glob: inside the pipeline folder, and valid.
    let glob = compile_glob(pattern)?;
    // 2. Its fixed prefix: no symbolic link on the way.
    let (prefix, _) = fixed_prefix(pattern);
    check_prefix(root, pattern, &prefix)?;
    let mut r = Resolving {
        root,
        pattern,
        prefix,
        glob,
        files: Vec::new(),
        problems: Vec::new(),
    };
    // 3. Walk the prefix folder.
    let base = if r.prefix.is_empty() {
        root.to_path_buf()
    } else {
        root.join(&r.prefix)
    };
    if base.is_dir() {
        r.walk(&base);
    } else if base.is_file() && r.glob.is_match(pattern) {
        r.named_file(&base);
    }
    // 4. A plain file path the walk did not find.
    if !has_glob_meta(pattern) && r.files.is_empty() && r.problems.is_empty() {
        r.plain_file();
    }
    // 5. Nothing at all.
    if r.files.is_empty() && r.problems.is_empty() {
        r.problems.push(ResolveProblem::NoMatch { pattern: r.p() });
    }
    if r.problems.is_empty() {
        Ok(r.files)
    } else {
        Err(r.problems)
    }
}

/// The glob compiled, once it is known not to leave the pipeline folder (no absolute path,
/// no `..`).
fn compile_glob(pattern: &str) -> Result<globset::GlobMatcher, Vec<ResolveProblem>> {
    let as_path = Path::new(pattern);
    if as_path.is_absolute()
        || as_path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(vec![ResolveProblem::Escapes {
            pattern: pattern.to_string(),
        }]);
    }
    Ok(globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| {
            vec![ResolveProblem::BadGlob {
                pattern: pattern.to_string(),
                message: e.kind().to_string(),
            }]
        })?
        .compile_matcher())
}

/// A symlinked prefix folder would let the glob read outside the pipeline folder: each folder
/// of the prefix, from the top, must not be a symbolic link.
fn check_prefix(root: &Path, pattern: &str, prefix: &str) -> Result<(), Vec<ResolveProblem>> {
    let mut walked = PathBuf::new();
    for comp in Path::new(prefix).components() {
        walked.push(comp);
        if let Ok(md) = fs::symlink_metadata(root.join(&walked))
            && md.file_type().is_symlink()
        {
            return Err(vec![ResolveProblem::Symlink {
                pattern: pattern.to_string(),
                path: walked.display().to_string(),
            }]);
        }
    }
    Ok(())
}

/// One glob being resolved: what its steps share, and what they found.
struct Resolving<'a> {
    root: &'a Path,
    pattern: &'a str,
    /// The glob's fixed folder prefix, below `root`.
    prefix: String,
    glob: globset::GlobMatcher,
    files: Vec<ArtefactFile>,
    problems: Vec<ResolveProblem>,
}

impl Resolving<'_> {
    fn p(&self) -> String {
        self.pattern.to_string()
    }

    /// Walk the prefix folder, in file-name order and without following links, taking each
    /// entry the glob matches.
    fn walk(&mut self, base: &Path) {
        for entry in walkdir::WalkDir::new(base)
            .follow_links(false)
            .sort_by_file_name()
        {
            match entry {
                Ok(e) => self.take(&e),
                Err(e) => self.problems.push(ResolveProblem::Io {
                    pattern: self.p(),
                    path: e
                        .path()
                        .map(|x| x.display().to_string())
                        .unwrap_or_default(),
                    message: e.to_string(),
                }),
            }
        }
    }

    /// One entry of the walk: a regular file the glob matches is an artefact, its release
    /// path the part below the prefix; a matched symbolic link, a name that is not UTF-8 or
    /// not a valid release path is a problem; anything else is passed over.
    fn take(&mut self, entry: &walkdir::DirEntry) {
        let Ok(rel) = entry.path().strip_prefix(self.root) else {
            return;
        };
        let Some(rel_str) = rel.to_str() else {
            self.problems.push(ResolveProblem::BadName {
                pattern: self.p(),
                path: rel.display().to_string(),
                why: "the name is not UTF-8".into(),
            });
            return;
        };
        if !self.glob.is_match(rel_str) {
            return;
        }
        let ft = entry.file_type();
        if ft.is_symlink() {
            self.problems.push(ResolveProblem::Symlink {
                pattern: self.p(),
                path: rel_str.to_string(),
            });
            return;
        }
        if !ft.is_file() {
            return;
        }
        let release_path = if self.prefix.is_empty() {
            rel_str.to_string()
        } else {
            rel_str[self.prefix.len()..]
                .trim_start_matches('/')
                .to_string()
        };
        if let Err(why) = crate::names::check_release_path(&release_path) {
            self.problems.push(ResolveProblem::BadName {
                pattern: self.p(),
                path: rel_str.to_string(),
                why: why.to_string(),
            });
            return;
        }
        self.files.push(ArtefactFile {
            pattern: self.p(),
            source: rel.to_path_buf(),
            release_path,
        });
    }

    /// The prefix is a file, not a folder, and the glob matches its own text: a symbolic link
    /// there is a problem. (A glob without metacharacters names one file, its release path
    /// its file name; it is taken as a plain file path next.)
    fn named_file(&mut self, base: &Path) {
        let md = fs::symlink_metadata(base);
        if md.map(|m| m.file_type().is_symlink()).unwrap_or(false) {
            self.problems.push(ResolveProblem::Symlink {
                pattern: self.p(),
                path: self.pattern.to_string(),
            });
        }
    }

    /// A plain file path: the "prefix" is its folder, the release path its file name.
    fn plain_file(&mut self) {
        let pattern = self.pattern;
        let full = self.root.join(pattern);
        match fs::symlink_metadata(&full) {
            Ok(md) if md.file_type().is_symlink() => self.problems.push(ResolveProblem::Symlink {
                pattern: self.p(),
                path: pattern.to_string(),
            }),
            Ok(md) if md.is_file() => {
                let name = pattern.rsplit('/').next().unwrap_or(pattern).to_string();
                if let Err(why) = crate::names::check_release_path(&name) {
                    self.problems.push(ResolveProblem::BadName {
                        pattern: self.p(),
                        path: pattern.to_string(),
                        why: why.to_string(),
                    });
                } else {
                    self.files.push(ArtefactFile {
                        pattern: self.p(),
                        source: PathBuf::from(pattern),
                        release_path: name,
                    });
                }
            }
            _ => {}
        }
    }
}

/// One staged artefact.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StagedArtefact {
    pub release_path: String,
    pub sha256: String,
    pub size: u64,
}

/// The staged set: the bytes every later step concerns.
#[derive(Clone, Debug)]
pub struct Staged {
    /// Folder holding the staged copies at their release paths, and `SHA256SUMS`.
    pub dir: PathBuf,
    pub artefacts: Vec<StagedArtefact>,
    /// The exact bytes of `SHA256SUMS`.
    pub sums: Vec<u8>,
    /// `sha256:<hex>` of `sums`.
    pub subject: String,
    /// Each staged copy as staging left it, by release path (publish moves a copy that is
    /// still exactly that file instead of copying it again).
    pub ids: std::collections::BTreeMap<String, FileId>,
}

impl Staged {
    pub fn path_of(&self, a: &StagedArtefact) -> PathBuf {
        self.dir.join(&a.release_path)
    }

    pub fn subject_hex(&self) -> &str {
        self.subject.trim_start_matches("sha256:")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("cannot stage {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} changed while it was being staged")]
    Changed { path: PathBuf },
}

/// Why the artefacts' subject cannot be worked out ([`subject_of`]).
#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    /// The patterns do not resolve: every problem, in order.
    #[error("{}", join(.0))]
    Resolve(Vec<ResolveProblem>),
    /// A matched file cannot be opened or read.
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn join(problems: &[ResolveProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// `SHA256SUMS` in GNU format: sorted by release path, two spaces, LF.
pub fn sums_text(artefacts: &[StagedArtefact]) -> Vec<u8> {
    let mut sorted: Vec<&StagedArtefact> = artefacts.iter().collect();
    sorted.sort_by(|a, b| a.release_path.cmp(&b.release_path));
    let mut out = String::new();
    for a in sorted {
        out.push_str(&a.sha256);
        out.push_str("  ");
        out.push_str(&a.release_path);
        out.push('\n');
    }
    out.into_bytes()
}

/// The subject the artefacts on disk would have if they were staged now: their hashes only,
/// nothing copied (`status` uses it to tell whether the next run sees the same bytes).
pub fn subject_of(root: &Path, patterns: &[String]) -> Result<String, SubjectError> {
    let files = resolve(root, patterns).map_err(SubjectError::Resolve)?;
    let mut artefacts = Vec::with_capacity(files.len());
    for f in &files {
        let path = root.join(&f.source);
        let read = |source| SubjectError::Read {
            path: path.clone(),
            source,
        };
        let file = fs::File::open(&path).map_err(read)?;
        let (sha256, size) = crate::digest::sha256_reader(file).map_err(read)?;
        artefacts.push(StagedArtefact {
            release_path: f.release_path.clone(),
            sha256,
            size,
        });
    }
    Ok(format!(
        "sha256:{}",
        crate::digest::sha256_hex(&sums_text(&artefacts))
    ))
}

/// Stage `files` (paths relative to `root`) into `dir`, using up to `workers` threads.
/// `dir` must not exist yet; it is created. Returns the staged set with `SHA256SUMS` written.
pub fn stage(
    root: &Path,
    files: &[ArtefactFile],
    dir: &Path,
    workers: usize,
) -> Result<Staged, StageError> {
    fs::create_dir_all(dir).map_err(|source| StageError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Slot = std::sync::Mutex<Option<Result<(String, u64, FileId), StageError>>>;
    let results: Vec<Slot> = files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let workers = workers.clamp(1, files.len().clamp(1, MAX_WORKERS));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(f) = files.get(i) else { break };
                    let r = copy_hash_and_stat(&root.join(&f.source), &dir.join(&f.release_path));
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let mut artefacts = Vec::with_capacity(files.len());
    let mut ids = std::collections::BTreeMap::new();
    for (f, slot) in files.iter().zip(results) {
        let r = slot.into_inner().ok().flatten().unwrap_or_else(|| {
            Err(StageError::Changed {
                path: f.source.clone(),
            })
        });
        let (sha256, size, id) = r?;
        ids.insert(f.release_path.clone(), id);
        artefacts.push(StagedArtefact {
            release_path: f.release_path.clone(),
            sha256,
            size,
        });
    }
    artefacts.sort_by(|a, b| a.release_path.cmp(&b.release_path));
    let sums = sums_text(&artefacts);
    let subject = format!("sha256:{}", crate::digest::sha256_hex(&sums));
    let sums_path = dir.join("SHA256SUMS");
    write_synced(&sums_path, &sums).map_err(|source| StageError::Io {
        path: sums_path.clone(),
        source,
    })?;
    Ok(Staged {
        dir: dir.to_path_buf(),
        artefacts,
        sums,
        subject,
        ids,
    })
}

/// Write a file and fsync it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // Written beside the target and renamed over it: whatever stood at `path` — a symbolic
    // link someone planted in a record, a FIFO — is replaced, never followed or blocked on.
    let dir = path.parent().unwrap_or(Path::new("."));
    // 0o666 less the umask, as `File::create` would (tempfile's default is 0o600, and these
    // files are published).
    let mut tmp = tempfile::Builder::new()
        .prefix(".write-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_prefix_splits_at_first_meta() {
        assert_eq!(
            fixed_prefix("dist/*.tar.gz"),
            ("dist".into(), "*.tar.gz".into())
        );
        assert_eq!(
            fixed_prefix("out/**/*.bin"),
            ("out".into(), "**/*.bin".into())
        );
        assert_eq!(fixed_prefix("*.zip"), ("".into(), "*.zip".into()));
    }

    #[test]
    fn release_paths_follow_the_glob_prefix() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("out/linux")).unwrap();
        fs::write(t.path().join("out/linux/x.bin"), b"x").unwrap();
        fs::write(t.path().join("out/y.bin"), b"y").unwrap();
        let got = resolve(t.path(), &["out/**/*.bin".into()]).unwrap();
        let names: Vec<_> = got.iter().map(|f| f.release_path.as_str()).collect();
        assert_eq!(names, ["linux/x.bin", "y.bin"]);
    }

    #[test]
    fn symlinks_and_escapes_and_collisions_are_problems() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("a")).unwrap();
        fs::create_dir_all(t.path().join("b")).unwrap();
        fs::write(t.path().join("a/x.txt"), b"1").unwrap();
        fs::write(t.path().join("b/x.txt"), b"2").unwrap();
        fs::create_dir_all(t.path().join("s")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("s/p.txt")).unwrap();
        let err = resolve(
            t.path(),
            &[
                "a/*.txt".into(),
                "b/*.txt".into(),
                "s/*.txt".into(),
                "../*.txt".into(),
                "c/*.z".into(),
            ],
        )
        .unwrap_err();
        assert!(
            err.iter()
                .any(|p| matches!(p, ResolveProblem::Symlink { .. })),
            "{err:?}"
        );
        assert!(
            err.iter()
                .any(|p| matches!(p, ResolveProblem::Escapes { .. })),
            "{err:?}"
        );
        assert!(
            err.iter()
                .any(|p| matches!(p, ResolveProblem::Collision { .. })),
            "{err:?}"
        );
        assert!(
            err.iter()
                .any(|p| matches!(p, ResolveProblem::NoMatch { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn names_equal_up_to_case_or_normalisation_collide() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("d")).unwrap();
        fs::write(t.path().join("d/README.txt"), b"1").unwrap();
        fs::write(t.path().join("d/readme.txt"), b"2").unwrap();
        fs::write(t.path().join("d/caf\u{e9}.txt"), b"3").unwrap();
        fs::write(t.path().join("d/cafe\u{301}.txt"), b"4").unwrap();
        fs::write(t.path().join("d/other.txt"), b"5").unwrap();
        let err = resolve(t.path(), &["d/*".into()]).unwrap_err();
        // The decomposed name is not NFC: refused on its own, before it could collide.
        assert!(
            err.iter().any(
                |p| matches!(p, ResolveProblem::BadName { path, .. } if path.contains('\u{301}'))
            ),
            "{err:?}"
        );
        fs::remove_file(t.path().join("d/cafe\u{301}.txt")).unwrap();
        let err = resolve(t.path(), &["d/*".into()]).unwrap_err();
        let near = err
            .iter()
            .filter(|p| matches!(p, ResolveProblem::NearCollision { .. }))
            .count();
        assert_eq!(near, 1, "{err:?}");
    }

    #[test]
    fn a_subject_that_cannot_be_worked_out_names_every_problem() {
        let t = tempfile::tempdir().unwrap();
        let err = subject_of(t.path(), &["a/*.bin".into(), "b/*.bin".into()]).unwrap_err();
        assert!(
            matches!(&err, SubjectError::Resolve(p) if p.len() == 2),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            r#"glob "a/*.bin" matches no regular file; glob "b/*.bin" matches no regular file"#
        );
    }

    #[test]
    fn sums_are_sorted_gnu_lines() {
        let a = StagedArtefact {
            release_path: "b".into(),
            sha256: "1".repeat(64),
            size: 1,
        };
        let b = StagedArtefact {
            release_path: "a".into(),
            sha256: "2".repeat(64),
            size: 1,
        };
        let text = String::from_utf8(sums_text(&[a, b])).unwrap();
        assert_eq!(
            text,
            format!("{}  a\n{}  b\n", "2".repeat(64), "1".repeat(64))
        );
    }
}

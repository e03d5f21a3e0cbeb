//! Loading `pipeline.yaml`: parse into a spanned tree, then validate into [`crate::model`]
//! types, collecting every problem before reporting.
//!
//! Two phases: [`yaml`] turns text into a generic tree that remembers where every node and key
//! is; [`validate`] (with [`gate`] and [`kinds`]) walks that tree by hand into the checked model.

mod cx;
pub mod diag;
mod gate;
mod kinds;
mod notify;
mod plan;
mod share;
pub mod suggest;
pub mod units;
mod validate;

#[cfg(test)]
mod tests;
pub mod yaml;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics};
pub use plan::{plan_text, plan_text_with};

/// Configuration files are small; anything bigger is refused before it is read, so a huge or
/// endless file cannot exhaust memory or time.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// A source file that went into the pipeline (the pipeline itself and each `uses:` file),
/// recorded verbatim in the release log.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SourceFile {
    /// Path relative to the pipeline root (the pipeline file itself by its file name).
    pub path: String,
    pub text: String,
}

/// A validated pipeline plus the sources it was read from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub pipeline: crate::model::Pipeline,
    pub sources: Vec<SourceFile>,
    /// The `notify:` webhooks (not part of the policy judges read).
    pub notify: Vec<crate::model::Notify>,
}

/// Why a configuration file could not be read as text.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("file {} not found", path.display())]
    Missing { path: PathBuf },
    #[error("{} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("{} is {size} bytes; configuration files are limited to {MAX_FILE_BYTES} bytes (1 MiB)", path.display())]
    TooBig { path: PathBuf, size: u64 },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not UTF-8 text (invalid byte at line {line}, column {column})", path.display())]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        column: usize,
    },
}

/// Read a configuration file as UTF-8 text, refusing anything over [`MAX_FILE_BYTES`]. A
/// leading byte-order mark is dropped.
/// `shown` is how messages name the file (relative to where the user stands).
pub(crate) fn read_limited(path: &Path, shown: &Path) -> Result<String, ReadError> {
    let p = || shown.to_path_buf();
    let md = match std::fs::metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReadError::Missing { path: p() });
        }
        Err(source) => return Err(ReadError::Io { path: p(), source }),
    };
    if !md.is_file() {
        return Err(ReadError::NotAFile { path: p() });
    }
    if md.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooBig {
            path: p(),
            size: md.len(),
        });
    }
    let file = std::fs::File::open(path).map_err(|source| ReadError::Io { path: p(), source })?;
    // The file may grow between the size check and the read: never read past the limit.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError::Io { path: p(), source })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooBig {
            path: p(),
            size: bytes.len() as u64,
        });
    }
    let mut text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            return Err(ReadError::NotUtf8 {
                path: p(),
                line,
                column,
            });
        }
    };
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(text)
}

/// Load and validate `file`. `state` overrides `state_dir`.
pub fn load(file: &Path, state: Option<&Path>) -> Result<Loaded, Diagnostics> {
    load_with(file, state, cx::Mode::Disk)
}

/// Load the policy in `file` without requiring what it names on disk (artefacts, folders, a git
/// work tree) to exist: the signers, roles and gates a trust root is taken from, in a checkout
/// that holds no build.
pub fn load_policy(file: &Path) -> Result<Loaded, Diagnostics> {
    load_with(file, None, cx::Mode::PolicyOnly)
}

/// [`load_policy`], with `state` overriding `state_dir` (`approve --state`, as `run --state`).
pub fn load_policy_at(file: &Path, state: Option<&Path>) -> Result<Loaded, Diagnostics> {
    load_with(file, state, cx::Mode::PolicyOnly)
}

/// Validate the sources a run recorded again, reading nothing from disk: `uses:` files come
/// from `sources`, the allowed_signers text is `signers`. `recorded` is the pipeline the run
/// recorded, which gives the paths it was loaded from (file, root, state folder). The result
/// is what that run's policy is, derived from its source bytes.
pub fn derive_recorded(
    recorded: &crate::model::Pipeline,
    sources: &[SourceFile],
    signers: Option<&str>,
) -> Result<Loaded, Diagnostics> {
    let Some((main, uses)) = sources.split_first() else {
        return Err(Diagnostics(vec![Diagnostic {
            file: recorded.file.clone(),
            line: 0,
            column: 0,
            key_path: String::new(),
            message: "no pipeline source was recorded".into(),
            source_line: None,
            help: None,
        }]));
    };
    let mode = cx::Mode::Recorded {
        files: uses
            .iter()
            .map(|s| (s.path.clone(), s.text.clone()))
            .collect(),
        signers: signers.map(str::to_string),
    };
    let inputs = validate::Inputs {
        file: recorded.file.clone(),
        root: recorded.root.clone(),
        shown_root: PathBuf::new(),
        state: Some(recorded.state_dir.clone()),
    };
    validate_text(PathBuf::from(&main.path), main.text.clone(), &inputs, mode)
}

/// Validate pipeline `text` the way [`derive_recorded`] does, reading nothing from disk:
/// `uses:` files come from `uses` (by path relative to the root), the allowed_signers text is
/// `signers`. The pipeline sits at `/fuzz/pipeline.yaml`. For the fuzz targets
/// ([`crate::fuzzing`]).
#[doc(hidden)]
pub fn validate_offline(
    text: &str,
    uses: &[SourceFile],
    signers: Option<&str>,
) -> Result<Loaded, Diagnostics> {
    let mode = cx::Mode::Recorded {
        files: uses
            .iter()
            .map(|s| (s.path.clone(), s.text.clone()))
            .collect(),
        signers: signers.map(str::to_string),
    };
    let inputs = validate::Inputs {
        file: PathBuf::from("/fuzz/pipeline.yaml"),
        root: PathBuf::from("/fuzz"),
        shown_root: PathBuf::new(),
        state: Some(PathBuf::from("/fuzz/.relgate")),
    };
    validate_text(
        PathBuf::from("pipeline.yaml"),
        text.to_string(),
        &inputs,
        mode,
    )
}

fn load_with(file: &Path, state: Option<&Path>, mode: cx::Mode) -> Result<Loaded, Diagnostics> {
    let at_file = |message: String, line: usize, column: usize| {
        Diagnostics(vec![Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            key_path: String::new(),
            message,
            source_line: None,
            help: None,
        }])
    };
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let abs_file = abs(file);
    let root = abs_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let text = match read_limited(file, file) {
        Ok(t) => t,
        Err(ReadError::NotUtf8 { line, column, .. }) => {
            return Err(at_file(
                "not UTF-8 text: a pipeline must be UTF-8".into(),
                line,
                column,
            ));
        }
        Err(e) => return Err(at_file(e.to_string(), 0, 0)),
    };
    let inputs = validate::Inputs {
        file: abs_file.clone(),
        root,
        shown_root: file.parent().map(Path::to_path_buf).unwrap_or_default(),
        state: state.map(abs),
    };
    validate_text(file.to_path_buf(), text, &inputs, mode)
}

/// Parse and validate the pipeline `text`; `display` is how diagnostics name it.
fn validate_text(
    display: PathBuf,
    text: String,
    inputs: &validate::Inputs,
    mode: cx::Mode,
) -> Result<Loaded, Diagnostics> {
    let rel = inputs
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pipeline.yaml".into());
    let mut cx = cx::Cx {
        mode,
        ..cx::Cx::default()
    };
    cx.sources.push(cx::Source { display, rel, text });
    let tree = match yaml::parse(&cx.sources[0].text, 0) {
        Ok(t) => t,
        Err(e) => {
            cx.error(e.pos, "", e.message);
            return Err(finish(cx));
        }
    };
    let pipeline = validate::pipeline(&mut cx, &tree, inputs);
    match pipeline {
        Some((pipeline, notify)) if cx.diags.is_empty() => {
            let mut sources: Vec<SourceFile> = Vec::new();
            for s in cx.sources {
                if !sources.iter().any(|x| x.path == s.rel) {
                    sources.push(SourceFile {
                        path: s.rel,
                        text: s.text,
                    });
                }
            }
            Ok(Loaded {
                pipeline,
                sources,
                notify,
            })
        }
        _ => Err(finish(cx)),
    }
}

/// Sort problems by file (pipeline first, then `uses:` files in the order met) and position.
fn finish(cx: cx::Cx) -> Diagnostics {
    let mut diags = cx.diags;
    if diags.is_empty() {
        // Validation stopped without saying why; never report success for it.
        diags.push((
            0,
            Diagnostic {
                file: cx
                    .sources
                    .first()
                    .map(|s| s.display.clone())
                    .unwrap_or_default(),
                line: 0,
                column: 0,
                key_path: String::new(),
                message: "the pipeline could not be validated".into(),
                source_line: None,
                help: None,
            },
        ));
    }
    diags.sort_by_key(|(src, d)| (*src, d.file.clone(), d.line, d.column));
    Diagnostics(diags.into_iter().map(|(_, d)| d).collect())
}

//! Loading `pipeline.yaml`: parse into a spanned tree, then validate into [`crate::model`]
//! types, collecting every problem before reporting.

pub mod diag;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics};

use crate::model::Pipeline;

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
    pub pipeline: Pipeline,
    pub sources: Vec<SourceFile>,
}

/// Load and validate `file`. `state` overrides `state_dir`.
pub fn load(file: &Path, state: Option<&Path>) -> Result<Loaded, Diagnostics> {
    let _ = (file, state);
    Err(Diagnostics(vec![Diagnostic {
        file: PathBuf::from(file),
        line: 0,
        column: 0,
        key_path: String::new(),
        message: "placeholder".into(),
        source_line: None,
        help: None,
    }]))
}

/// The text `relgate plan` prints: gates in order with needs, kinds and what each checks.
pub fn plan_text(pipeline: &Pipeline) -> String {
    let mut out = String::new();
    for g in &pipeline.gates {
        out.push_str(&format!("{} ({})\n", g.id, g.kind.name()));
    }
    out
}

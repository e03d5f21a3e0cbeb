//! Configuration diagnostics: `file:line:column: key.path: message`, the source line, a caret.

use std::fmt;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when unknown.
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
    /// e.g. `gates.unit-tests.timeout`.
    pub key_path: String,
    pub message: String,
    pub source_line: Option<String>,
    /// e.g. "did you mean `timeout`?"
    pub help: Option<String>,
}

/// Every problem found, in source order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A problem with the file as a whole (missing, too big) has no position to show.
        if self.line == 0 {
            write!(f, "{}: ", self.file.display())?;
        } else {
            write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        }
        if !self.key_path.is_empty() {
            write!(f, "{}: ", self.key_path)?;
        }
        writeln!(f, "{}", self.message)?;
        if let Some(line) = &self.source_line {
            writeln!(f, "    | {line}")?;
            let pad = " ".repeat(self.column.saturating_sub(1));
            writeln!(f, "    | {pad}^")?;
        }
        if let Some(help) = &self.help {
            writeln!(f, "    = help: {help}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

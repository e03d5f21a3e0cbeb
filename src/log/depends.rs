//! What an automated gate depended on, as observed just before it ran: recorded on its
//! `gate-started` and `gate-verdict` lines (docs/log-format.md). The observing is
//! `engine::reuse`'s; these are the recorded types, kept with the log that records them.

use serde::{Deserialize, Serialize};

/// What an automated gate depended on, as observed before it ran.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Dependencies {
    /// The git work tree the command runs in, when it runs in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitState>,
    /// The files the gate's `inputs:` globs matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<FilesState>,
    /// A keyed digest of the environment the command inherits (see `engine::reuse::KEY_FILE`): equal or
    /// not, without telling anything about the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The virus signatures a scan uses: clamd's VERSION reply, or a digest of the private
    /// clamd's database folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<String>,
    /// Why relgate cannot tell what the result depended on; then it is never kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsure: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GitState {
    /// The work tree's top folder.
    pub top: String,
    /// The commit HEAD named; `None` before the first commit.
    pub head: Option<String>,
    /// How many paths differed from HEAD (tracked changes and untracked files, outside the
    /// state folder, the artefacts and the JUnit reports).
    pub changed: u64,
    /// SHA-256 over those paths, their status and their content.
    pub changes: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FilesState {
    pub files: u64,
    /// SHA-256 over the matched paths and their content.
    pub digest: String,
}

impl Dependencies {
    pub(crate) fn unsure(why: impl Into<String>) -> Self {
        Dependencies {
            unsure: Some(why.into()),
            ..Dependencies::default()
        }
    }

    /// One line on what a kept result rests on, for people.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(g) = &self.git {
            let head = g
                .head
                .as_deref()
                .map(|h| format!("HEAD {}", &h[..h.len().min(12)]))
                .unwrap_or_else(|| "no commit yet".into());
            let tree = match g.changed {
                0 => "a clean work tree".to_string(),
                n => format!("the same {n} changed path(s)"),
            };
            parts.push(format!("{head}, {tree}"));
        }
        if let Some(f) = &self.files {
            parts.push(format!("the same {} file(s) of `inputs:`", f.files));
        }
        if let Some(s) = &self.signatures {
            parts.push(format!("signatures {s}"));
        }
        if self.environment.is_some() {
            parts.push("the same environment".into());
        }
        parts.join("; ")
    }
}

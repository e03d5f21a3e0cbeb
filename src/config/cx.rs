//! The validation context: the source files read so far and the problems found, plus the
//! small typed readers every part of the validator shares ("expected X, found Y").

use std::path::PathBuf;

use super::diag::Diagnostic;
use super::suggest;
use super::yaml::{Node, Pos, Value};

/// One file that went into the pipeline, as the user names it and as read.
pub(crate) struct Source {
    /// How diagnostics name the file.
    pub display: PathBuf,
    /// Path relative to the pipeline root, for [`super::SourceFile`].
    pub rel: String,
    pub text: String,
}

#[derive(Default)]
pub(crate) struct Cx {
    pub sources: Vec<Source>,
    /// (source index, diagnostic): sorted by file, then position, when reported.
    pub diags: Vec<(usize, Diagnostic)>,
    /// Where the files the pipeline names come from, and which of them must exist.
    pub mode: Mode,
}

/// What validation may look at besides the pipeline text.
#[derive(Clone, Debug, Default)]
pub(crate) enum Mode {
    /// Everything the pipeline names must be there: `check`, `plan`, `run`.
    #[default]
    Disk,
    /// The policy alone (signers, roles, gates, `uses:` files) read from disk, without
    /// requiring artefacts, folders or a git work tree to exist: what a trust root needs when
    /// an auditor verifies a release in a checkout that holds no build.
    PolicyOnly,
    /// Re-deriving a recorded policy: `uses:` files and the signers text come from the record
    /// and nothing on disk is looked at.
    Recorded {
        /// `uses:` files by their path relative to the pipeline root.
        files: std::collections::BTreeMap<String, String>,
        /// The allowed_signers text the run recorded.
        signers: Option<String>,
    },
}

impl Mode {
    /// Must files and folders the pipeline names exist on this machine?
    pub fn checks_disk(&self) -> bool {
        matches!(self, Mode::Disk)
    }
}

impl Cx {
    /// Report a problem at `pos` (which names its source file).
    pub fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) -> &mut Diagnostic {
        let src = self.sources.get(pos.src);
        let file = src.map(|s| s.display.clone()).unwrap_or_default();
        let source_line = src.and_then(|s| line_of(&s.text, pos.line));
        self.push(
            pos.src,
            Diagnostic {
                file,
                line: pos.line,
                column: pos.column,
                key_path: path.to_string(),
                message: message.into(),
                source_line,
                help: None,
            },
        )
    }

    /// Report a problem in a file that is not YAML source (e.g. `allowed_signers`); it sorts
    /// after the source that referred to it.
    pub fn push(&mut self, src: usize, d: Diagnostic) -> &mut Diagnostic {
        self.diags.push((src, d));
        let last = self.diags.len() - 1;
        &mut self.diags[last].1
    }

    /// "expected X, found Y" at `node`.
    pub fn expected(&mut self, node: &Node, path: &str, what: &str) -> &mut Diagnostic {
        let msg = format!("expected {what}, found {}", node.describe());
        self.error(node.pos, path, msg)
    }

    pub fn str<'a>(&mut self, node: &'a Node, path: &str, what: &str) -> Option<&'a str> {
        match &node.value {
            Value::Str(s) if !s.trim().is_empty() => Some(s),
            _ => {
                self.expected(node, path, what);
                None
            }
        }
    }

    /// A list of non-empty strings (empty lists allowed unless `non_empty`).
    pub fn str_list<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
        what: &str,
        non_empty: bool,
    ) -> Option<Vec<(&'a str, &'a Node)>> {
        let Some(items) = node.as_seq() else {
            self.expected(node, path, &format!("a list of {what}"));
            return None;
        };
        if non_empty && items.is_empty() {
            self.expected(node, path, &format!("a non-empty list of {what}"));
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.str(item, &format!("{path}[{i}]"), what) {
                Some(s) => out.push((s, item)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A non-negative integer.
    pub fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            _ => {
                self.expected(node, path, "true or false");
                None
            }
        }
    }

    pub fn uint(&mut self, node: &Node, path: &str, what: &str) -> Option<u64> {
        match &node.value {
            Value::Int(i) => match u64::try_from(*i) {
                Ok(v) => Some(v),
                Err(_) => {
                    self.expected(node, path, what);
                    None
                }
            },
            _ => {
                self.expected(node, path, what);
                None
            }
        }
    }

    pub fn duration(&mut self, node: &Node, path: &str) -> Option<u64> {
        let parsed = node.as_str().and_then(super::units::parse_duration);
        if parsed.is_none() {
            self.expected(
                node,
                path,
                "a duration like 30m or 14d (a whole number and a unit: s, m, h or d)",
            );
        }
        parsed
    }
}

fn line_of(text: &str, line: usize) -> Option<String> {
    if line == 0 {
        return None;
    }
    text.lines().nth(line - 1).map(|l| l.trim_end().to_string())
}

/// A mapping's entries, ready to be read by key. Unknown and duplicate keys were reported
/// when it was made; reading a duplicated key gives its first value.
pub(crate) struct Map<'a> {
    pub entries: Vec<(&'a Node, &'a Node)>,
    /// Where "missing key" problems point: the key that owns this mapping.
    pub anchor: Pos,
    pub path: String,
}

/// `parent.key`, or `key` at the top.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl<'a> Map<'a> {
    /// Check that `node` is a mapping; report duplicate keys and (when `allowed` is given)
    /// unknown keys.
    pub fn new(
        cx: &mut Cx,
        node: &'a Node,
        anchor: Pos,
        path: &str,
        what: &str,
        allowed: Option<&[&str]>,
    ) -> Option<Map<'a>> {
        let Some(entries) = node.as_map() else {
            let shown = if path.is_empty() { "" } else { path };
            cx.expected(node, shown, what);
            return None;
        };
        let entries: Vec<(&Node, &Node)> = entries.iter().map(|(k, v)| (k, v)).collect();
        report_duplicates(cx, &entries, path);
        if let Some(allowed) = allowed {
            report_unknown(cx, &entries, path, allowed, |_| None);
        }
        Some(Map {
            entries,
            anchor,
            path: path.to_string(),
        })
    }

    pub fn entry(&self, key: &str) -> Option<(&'a Node, &'a Node)> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .copied()
    }

    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entry(key).map(|(_, v)| v)
    }

    pub fn sub(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value of a required key, or a "missing" problem at the owning key.
    pub fn require(&self, cx: &mut Cx, key: &str, what: &str) -> Option<&'a Node> {
        let v = self.get(key);
        if v.is_none() {
            let place = if self.path.is_empty() {
                "the pipeline".to_string()
            } else {
                format!("`{}`", self.path)
            };
            cx.error(
                self.anchor,
                &self.sub(key),
                format!("missing required key `{key}` in {place} ({what})"),
            );
        }
        v
    }
}

pub(crate) fn report_duplicates(cx: &mut Cx, entries: &[(&Node, &Node)], path: &str) {
    for (i, (k, _)) in entries.iter().enumerate() {
        let name = k.key_text();
        if let Some((first, _)) = entries[..i].iter().find(|(p, _)| p.key_text() == name) {
            cx.error(
                k.pos,
                &join(path, &name),
                format!(
                    "duplicate key `{name}` (first written at line {})",
                    first.pos.line
                ),
            );
        }
    }
}

/// Report keys not in `allowed`; `elsewhere` may explain a key that belongs to another
/// context (e.g. a key of another gate kind).
pub(crate) fn report_unknown(
    cx: &mut Cx,
    entries: &[(&Node, &Node)],
    path: &str,
    allowed: &[&str],
    elsewhere: impl Fn(&str) -> Option<String>,
) {
    for (k, _) in entries {
        let name = k.key_text();
        if k.as_str().is_some() && allowed.contains(&name.as_str()) {
            continue;
        }
        let mut msg = format!(
            "unknown key `{name}`; expected one of: {}",
            allowed.join(", ")
        );
        if let Some(why) = elsewhere(&name) {
            msg = format!("unknown key `{name}`: {why}");
        }
        let help = suggest::did_you_mean(&name, allowed.iter().copied());
        cx.error(k.pos, &join(path, &name), msg).help = help;
    }
}

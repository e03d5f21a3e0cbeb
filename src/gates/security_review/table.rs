//! The findings table a security engineer works from: one row per finding (and per pentest
//! finding) with its severity, where it came from, its assignment and its verdict.

use serde::{Deserialize, Serialize};

use super::SecurityReviewEvidence;
use crate::model::SecurityReviewSpec;
use crate::record::Blobs;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingRow {
    /// Rule id (or pentest finding id).
    pub finding: String,
    pub tool: String,
    pub severity: Option<String>,
    /// `security-severity 7.5`, `cvss-4.0 9.3`, `level`.
    pub severity_source: Option<String>,
    /// `uri:line`.
    pub location: String,
    pub message: String,
    pub owner: Option<String>,
    pub ticket: Option<String>,
    pub due: Option<String>,
    pub status: Option<String>,
    /// The reason codes this finding raised; empty when it is fine.
    pub verdict: Vec<String>,
}

impl FindingRow {
    fn cells(&self) -> [String; 9] {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let severity = match (&self.severity, &self.severity_source) {
            (Some(s), Some(src)) => format!("{s} ({src})"),
            (Some(s), None) => s.clone(),
            _ => "-".into(),
        };
        [
            self.finding.clone(),
            self.tool.clone(),
            severity,
            self.location.clone(),
            opt(&self.owner),
            opt(&self.ticket),
            opt(&self.due),
            opt(&self.status),
            if self.verdict.is_empty() {
                "ok".into()
            } else {
                self.verdict.join(", ")
            },
        ]
    }
}

const HEADERS: [&str; 9] = [
    "finding", "tool", "severity", "location", "owner", "ticket", "due", "status", "verdict",
];

/// The rows for recorded evidence, judged as of `started_at`.
pub fn findings_table(
    spec: &SecurityReviewSpec,
    evidence: &SecurityReviewEvidence,
    blobs: &dyn Blobs,
    started_at: i64,
) -> Vec<FindingRow> {
    super::analyse(spec, evidence, blobs, started_at).rows
}

/// A Markdown table (what goes into the release record as `security-review.md`).
pub fn render_markdown(rows: &[FindingRow]) -> String {
    let mut out = String::from("# Security review\n\n");
    if rows.is_empty() {
        out.push_str("No findings.\n");
        return out;
    }
    out.push_str(&format!("| {} |\n", HEADERS.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(HEADERS.len())));
    for r in rows {
        let cells: Vec<String> = r.cells().iter().map(|c| md_escape(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// Aligned plain-text columns for a terminal.
pub fn render_human(rows: &[FindingRow]) -> String {
    if rows.is_empty() {
        return "no findings\n".into();
    }
    let table: Vec<[String; 9]> = rows.iter().map(FindingRow::cells).collect();
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.chars().count()).collect();
    for r in &table {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(&HEADERS.map(String::from));
    for r in &table {
        line(r);
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(verdict: &[&str]) -> FindingRow {
        FindingRow {
            finding: "B602".into(),
            tool: "Bandit".into(),
            severity: Some("high".into()),
            severity_source: Some("level".into()),
            location: "app.py:10".into(),
            message: "shell=True | bad".into(),
            owner: Some("dave@acme.test".into()),
            ticket: None,
            due: Some("2026-11-20".into()),
            status: Some("open".into()),
            verdict: verdict.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn markdown_table() {
        let md = render_markdown(&[r(&[]), r(&["remediation-overdue", "severity-blocks"])]);
        assert_eq!(
            md,
            "# Security review\n\n\
             | finding | tool | severity | location | owner | ticket | due | status | verdict |\n\
             |---|---|---|---|---|---|---|---|---|\n\
             | B602 | Bandit | high (level) | app.py:10 | dave@acme.test | - | 2026-11-20 | open | ok |\n\
             | B602 | Bandit | high (level) | app.py:10 | dave@acme.test | - | 2026-11-20 | open | remediation-overdue, severity-blocks |\n"
        );
        assert_eq!(render_markdown(&[]), "# Security review\n\nNo findings.\n");
    }

    #[test]
    fn human_columns_line_up() {
        let text = render_human(&[r(&[])]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].find("tool"), lines[1].find("Bandit"));
        assert_eq!(lines[0].find("verdict"), lines[1].find("ok"));
    }
}

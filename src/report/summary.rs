//! A Markdown summary of a run for a CI job's page: appended to the file `GITHUB_STEP_SUMMARY`
//! names when GitHub Actions sets it. The gates with their verdicts and times, the subject, and
//! for each sign-off still awaited who may still sign and the command to do it.

use std::fmt::Write;

use crate::engine::{GateState, RunSummary};
use crate::log::Decision;

/// The summary's Markdown.
pub fn markdown(summary: &RunSummary, project: &str, version: &str, dry_run: bool) -> String {
    let mut md = String::new();
    let decision = match summary.decision {
        Decision::Published => "published",
        Decision::Refused => "refused",
        Decision::Pending => "awaiting sign-off",
        Decision::DryRun => "dry run: nothing is red",
        Decision::Aborted => "interrupted",
    };
    let mode = if dry_run { " (dry run)" } else { "" };
    let _ = writeln!(
        md,
        "### relgate {project} {version}{mode}: {decision} (exit {})\n",
        summary.exit_code
    );
    let _ = writeln!(md, "Subject `{}`  ", summary.subject);
    let _ = writeln!(md, "Record `{}`\n", summary.record.display());
    if let Some(to) = &summary.published {
        let _ = writeln!(md, "Published to `{}`\n", to);
    }
    if let Some(m) = &summary.message {
        let _ = writeln!(md, "{}\n", cell(m));
    }
    md.push_str("| gate | kind | verdict | time | details |\n|---|---|---|---|---|\n");
    for g in &summary.gates {
        let details = match &g.state {
            GateState::Red { reasons } | GateState::Pending { reasons } => reasons
                .iter()
                .map(|r| format!("`{}` {}", r.code, r.message))
                .collect::<Vec<_>>()
                .join("; "),
            GateState::Blocked { waiting_on } | GateState::Waiting { waiting_on } => {
                format!("waiting on {}", waiting_on.join(", "))
            }
            GateState::Skipped { reason } => reason.clone(),
            GateState::Green { reused: true } => "kept from an earlier run".into(),
            GateState::Green { reused: false } | GateState::Aborted => String::new(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} s | {} |",
            cell(&g.id),
            g.kind,
            g.state.label(),
            g.elapsed_ms as f64 / 1000.0,
            cell(&details)
        );
    }
    if !dry_run
        && let Some(g) = summary
            .gates
            .iter()
            .find(|g| g.kind == "regression" && matches!(g.state, GateState::Red { .. }))
    {
        let _ = writeln!(
            md,
            "\n`relgate logs {version} {}` shows a red gate's output and failed tests.",
            g.id
        );
    }
    let awaited: Vec<_> = summary
        .gates
        .iter()
        .filter_map(|g| g.may_still_sign.as_ref().map(|who| (g, who)))
        .collect();
    if !awaited.is_empty() {
        md.push_str("\n**Sign-offs awaited**\n\n");
        for (g, who) in awaited {
            let who = if who.is_empty() {
                "nobody eligible is left".to_string()
            } else {
                who.join(", ")
            };
            let _ = writeln!(
                md,
                "- `{}`: may still sign: {}; with `relgate approve {version} --gate {} --key KEY --as PRINCIPAL --subject {}`",
                g.id,
                cell(&who),
                g.id,
                summary.subject
            );
        }
    }
    md.push('\n');
    md
}

/// Text for a table cell: one line, `|` escaped.
fn cell(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

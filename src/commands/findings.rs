//! `relgate findings VERSION`: the security review's findings table — finding, tool, severity
//! and its source, location, assignment and verdict — for the security engineer.
//!
//! The table comes from the evidence recorded for VERSION (the latest security-review verdict in
//! its release log, judged under the recorded policy and the run's time). Before any run of
//! VERSION it is built from the pipeline's current files instead, and says so.

use crate::output::{errln, out, outln};
use std::path::Path;

use serde::Serialize;

use super::Format;
use crate::config;
use crate::exit;
use crate::gates::Reason;
use crate::gates::security_review::{FindingRow, analyse, collect_blocking, render_human};
use crate::model::GateKind;
use crate::record::Record;

#[derive(Serialize)]
struct GateReport<'a> {
    gate: &'a str,
    /// Where the table comes from: a log line of the release record, or the working tree.
    source: String,
    rows: Vec<FindingRow>,
    reasons: Vec<Reason>,
    warnings: Vec<Reason>,
}

#[derive(Serialize)]
struct Report<'a> {
    version: &'a str,
    gates: Vec<GateReport<'a>>,
}

/// Exit 0 when every security-review gate would be green, 1 when one would be red, 2 when the
/// pipeline is invalid or has no security-review gate.
#[expect(
    clippy::too_many_lines,
    reason = "a sequence of steps not yet split into functions (issue 15)"
)]
pub fn run(pipeline: &Path, state: Option<&Path>, version: &str, format: Format) -> i32 {
    let loaded = match config::load(pipeline, state) {
        Ok(l) => l,
        Err(diags) => {
            super::config_problems(&diags);
            return exit::CONFIG;
        }
    };
    let p = &loaded.pipeline;
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            errln!("relgate: cannot create a scratch folder: {e}");
            return exit::CONFIG;
        }
    };
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let mut report = Report {
        version,
        gates: Vec::new(),
    };
    // A record that exists but does not verify is said, never silently replaced by the
    // working tree's view.
    let recorded = match super::read_release_log(p, version) {
        Ok(log) => Some(log),
        Err(super::ReleaseLogError::NoRecord { .. }) => None,
        Err(e) => {
            errln!("relgate: {e}");
            return e.exit_code();
        }
    };
    for gate in &p.gates {
        let GateKind::SecurityReview(spec) = &gate.kind else {
            continue;
        };
        if let Some(log) = &recorded
            && let Some((run, line, digest)) = super::latest_evidence(&log.entries, &gate.id)
        {
            let record = Record::new(&log.dir);
            let recorded_spec = match run.pipeline.gate(&gate.id).map(|g| &g.kind) {
                Some(GateKind::SecurityReview(s)) => s,
                _ => spec,
            };
            let ev = crate::record::Blobs::get(&record, &digest)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
            match ev {
                Ok(ev) => {
                    let a = analyse(recorded_spec, &ev, &record, run.started_at);
                    report.gates.push(GateReport {
                        gate: &gate.id,
                        source: format!(
                            "recorded: {}/log.jsonl line {line} (run {})",
                            log.dir.display(),
                            run.run
                        ),
                        rows: a.rows,
                        reasons: a.reasons,
                        warnings: a.warnings,
                    });
                    continue;
                }
                Err(e) => {
                    errln!("relgate: {}: recorded evidence unreadable: {e}", gate.id);
                    return exit::REFUSED;
                }
            }
        }
        let record = Record::new(scratch.path().join(&gate.id));
        let ev = match collect_blocking(&p.root, spec, &record, started_at) {
            Ok(ev) => ev,
            Err(e) => {
                errln!("relgate: {}: {e}", gate.id);
                return exit::CONFIG;
            }
        };
        let a = analyse(spec, &ev, &record, started_at);
        report.gates.push(GateReport {
            gate: &gate.id,
            source: format!("working tree: {version} has no recorded security review yet"),
            rows: a.rows,
            reasons: a.reasons,
            warnings: a.warnings,
        });
    }
    if report.gates.is_empty() {
        errln!(
            "relgate: {} has no security-review gate",
            pipeline.display()
        );
        return exit::CONFIG;
    }
    match format {
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(text) => outln!("{text}"),
            Err(e) => {
                errln!("relgate: cannot write JSON: {e}");
                return exit::CONFIG;
            }
        },
        Format::Human => {
            for g in &report.gates {
                outln!("{} ({version}) — {}", g.gate, g.source);
                out!("{}", render_human(&g.rows));
                for w in &g.warnings {
                    outln!("warning[{}]: {}", w.code, w.message);
                }
                for r in &g.reasons {
                    errln!("{}: {}: {}", g.gate, r.code, r.message);
                }
            }
        }
    }
    if report.gates.iter().any(|g| !g.reasons.is_empty()) {
        exit::REFUSED
    } else {
        exit::SUCCESS
    }
}

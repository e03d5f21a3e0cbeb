//! `relgate findings VERSION`: the security review's findings table — finding, tool, severity
//! and its source, location, assignment and verdict — for the security engineer.
//!
//! For now the table is built from the pipeline's current files (collect into a throwaway
//! record, then the same pure analysis the judge uses). Once the release log can be read, the
//! same [`findings_table`] runs on the evidence recorded for VERSION instead.

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
pub fn run(pipeline: &Path, state: Option<&Path>, version: &str, format: Format) -> i32 {
    let loaded = match config::load(pipeline, state) {
        Ok(l) => l,
        Err(diags) => {
            eprint!("{diags}");
            return exit::CONFIG;
        }
    };
    let p = &loaded.pipeline;
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("relgate: cannot create a scratch folder: {e}");
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
    for gate in &p.gates {
        let GateKind::SecurityReview(spec) = &gate.kind else {
            continue;
        };
        let record = Record::new(scratch.path().join(&gate.id));
        let ev = match collect_blocking(&p.root, spec, &record, started_at) {
            Ok(ev) => ev,
            Err(e) => {
                eprintln!("relgate: {}: {e}", gate.id);
                return exit::CONFIG;
            }
        };
        let a = analyse(spec, &ev, &record, started_at);
        report.gates.push(GateReport {
            gate: &gate.id,
            rows: a.rows,
            reasons: a.reasons,
            warnings: a.warnings,
        });
    }
    if report.gates.is_empty() {
        eprintln!(
            "relgate: {} has no security-review gate",
            pipeline.display()
        );
        return exit::CONFIG;
    }
    match format {
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("relgate: cannot write JSON: {e}");
                return exit::CONFIG;
            }
        },
        Format::Human => {
            for g in &report.gates {
                println!("{} ({version})", g.gate);
                print!("{}", render_human(&g.rows));
                for w in &g.warnings {
                    println!("warning[{}]: {}", w.code, w.message);
                }
                for r in &g.reasons {
                    eprintln!("{}: {}: {}", g.gate, r.code, r.message);
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

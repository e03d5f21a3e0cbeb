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
use crate::model::{GateKind, SecurityReviewSpec};
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
pub fn run(pipeline: &Path, state: Option<&Path>, version: &str, format: Format) -> i32 {
    steps(pipeline, state, version, format).unwrap_or_else(|code| code)
}

/// The steps of `findings`, in this order: the pipeline loaded; a scratch folder and the time
/// for evidence collected from the working tree; the release's log, when it has a record;
/// each security-review gate's table, from its latest recorded evidence or else from the
/// working tree; the tables printed. A step that ends the command has said why, and its exit
/// code is the error.
fn steps(pipeline: &Path, state: Option<&Path>, version: &str, format: Format) -> Result<i32, i32> {
    // 1. The pipeline.
    let loaded = config::load(pipeline, state).map_err(|diags| {
        super::config_problems(&diags);
        exit::CONFIG
    })?;
    let p = &loaded.pipeline;
    // 2. Where evidence from the working tree is collected, and when.
    let scratch = tempfile::tempdir().map_err(|e| {
        errln!("relgate: cannot create a scratch folder: {e}");
        exit::CONFIG
    })?;
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    // 3. The release's log, when there is a record.
    let recorded = recorded_log(p, version)?;
    // 4. Each security-review gate's table.
    let tables = Tables {
        root: &p.root,
        version,
        recorded: recorded.as_ref(),
        scratch: scratch.path(),
        started_at,
    };
    let mut report = Report {
        version,
        gates: Vec::new(),
    };
    for gate in &p.gates {
        let GateKind::SecurityReview(spec) = &gate.kind else {
            continue;
        };
        report.gates.push(tables.table(gate, spec)?);
    }
    if report.gates.is_empty() {
        errln!(
            "relgate: {} has no security-review gate",
            pipeline.display()
        );
        return Err(exit::CONFIG);
    }
    // 5. Print them.
    print(&report, format)?;
    if report.gates.iter().any(|g| !g.reasons.is_empty()) {
        Ok(exit::REFUSED)
    } else {
        Ok(exit::SUCCESS)
    }
}

/// The release's log, or `None` before any run of it. A record that exists but does not
/// verify is said, never silently replaced by the working tree's view.
fn recorded_log(
    p: &crate::model::Pipeline,
    version: &str,
) -> Result<Option<super::ReleaseLog>, i32> {
    match super::read_release_log(p, version) {
        Ok(log) => Ok(Some(log)),
        Err(super::ReleaseLogError::NoRecord { .. }) => Ok(None),
        Err(e) => {
            errln!("relgate: {e}");
            Err(e.exit_code())
        }
    }
}

/// What every gate's table is built from.
struct Tables<'a> {
    /// The pipeline folder (the working tree's evidence is read from it).
    root: &'a Path,
    version: &'a str,
    recorded: Option<&'a super::ReleaseLog>,
    /// Where evidence collected from the working tree is kept, a folder per gate.
    scratch: &'a Path,
    started_at: i64,
}

impl Tables<'_> {
    /// The table of a security-review gate: from its latest recorded evidence, else from the
    /// working tree.
    fn table<'g>(
        &self,
        gate: &'g crate::model::GateSpec,
        spec: &SecurityReviewSpec,
    ) -> Result<GateReport<'g>, i32> {
        match self.recorded_table(gate, spec)? {
            Some(table) => Ok(table),
            None => self.working_tree_table(gate, spec),
        }
    }

    /// The table from the gate's latest evidence in the release log, judged under the policy
    /// and time of the run that recorded it (`None` when none was recorded). Evidence that
    /// cannot be read is refused.
    fn recorded_table<'g>(
        &self,
        gate: &'g crate::model::GateSpec,
        spec: &SecurityReviewSpec,
    ) -> Result<Option<GateReport<'g>>, i32> {
        let Some(log) = self.recorded else {
            return Ok(None);
        };
        let Some((run, line, digest)) = super::latest_evidence(&log.entries, &gate.id) else {
            return Ok(None);
        };
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
                Ok(Some(GateReport {
                    gate: &gate.id,
                    source: format!(
                        "recorded: {}/log.jsonl line {line} (run {})",
                        log.dir.display(),
                        run.run
                    ),
                    rows: a.rows,
                    reasons: a.reasons,
                    warnings: a.warnings,
                }))
            }
            Err(e) => {
                errln!("relgate: {}: recorded evidence unreadable: {e}", gate.id);
                Err(exit::REFUSED)
            }
        }
    }

    /// The table from evidence collected now from the working tree, for a release with no
    /// recorded security review yet.
    fn working_tree_table<'g>(
        &self,
        gate: &'g crate::model::GateSpec,
        spec: &SecurityReviewSpec,
    ) -> Result<GateReport<'g>, i32> {
        let record = Record::new(self.scratch.join(&gate.id));
        let ev = match collect_blocking(self.root, spec, &record, self.started_at) {
            Ok(ev) => ev,
            Err(e) => {
                errln!("relgate: {}: {e}", gate.id);
                return Err(exit::CONFIG);
            }
        };
        let a = analyse(spec, &ev, &record, self.started_at);
        Ok(GateReport {
            gate: &gate.id,
            source: format!(
                "working tree: {} has no recorded security review yet",
                self.version
            ),
            rows: a.rows,
            reasons: a.reasons,
            warnings: a.warnings,
        })
    }
}

/// Print the tables: as one JSON document, or for a person (each gate's reasons on stderr).
fn print(report: &Report, format: Format) -> Result<(), i32> {
    match format {
        Format::Json => match serde_json::to_string_pretty(report) {
            Ok(text) => outln!("{text}"),
            Err(e) => {
                errln!("relgate: cannot write JSON: {e}");
                return Err(exit::CONFIG);
            }
        },
        Format::Human => {
            let version = report.version;
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
    Ok(())
}

//! The commands behind the CLI. Each returns an exit code from [`crate::exit`]; output goes to
//! stdout (results) and stderr (problems, refusals).

pub mod approve;
pub mod findings;

use std::path::{Path, PathBuf};

mod run;
mod status;

use crate::config;
use crate::exit;

pub mod verify;

pub use approve::{ApproveArgs, approve};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub struct RunArgs {
    pub pipeline: PathBuf,
    pub state: Option<PathBuf>,
    pub version: String,
    pub dry_run: bool,
    pub format: Format,
    pub junit: Option<PathBuf>,
    pub operator: Option<String>,
    pub rerun: bool,
}

/// `relgate check`.
pub fn check(pipeline: &Path, state: Option<&Path>) -> i32 {
    match config::load(pipeline, state) {
        Ok(loaded) => {
            println!(
                "{}: valid ({} gates)",
                pipeline.display(),
                loaded.pipeline.gates.len()
            );
            exit::SUCCESS
        }
        Err(diags) => {
            eprint!("{diags}");
            eprintln!(
                "error: {} problem(s) in {}",
                diags.0.len(),
                pipeline.display()
            );
            exit::CONFIG
        }
    }
}

/// `relgate plan`.
pub fn plan(pipeline: &Path, state: Option<&Path>) -> i32 {
    match config::load(pipeline, state) {
        Ok(loaded) => {
            print!("{}", config::plan_text(&loaded.pipeline));
            exit::SUCCESS
        }
        Err(diags) => {
            eprint!("{diags}");
            exit::CONFIG
        }
    }
}

/// `relgate run`.
pub fn run(args: RunArgs) -> i32 {
    run::run(args)
}

/// `relgate status`.
pub fn status(pipeline: &Path, state: Option<&Path>, version: &str, format: Format) -> i32 {
    status::status(pipeline, state, version, format)
}

/// `relgate replay`.
pub fn replay(path: &Path, signers: Option<&Path>, format: Format) -> i32 {
    let override_text = match signers {
        Some(f) => match std::fs::read_to_string(f) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("relgate: cannot read {}: {e}", f.display());
                return exit::CONFIG;
            }
        },
        None => None,
    };
    let report = crate::replay::replay(path, override_text.as_deref());
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Format::Human => {
            if let Some(p) = &report.problem {
                if p.line > 0 {
                    eprintln!(
                        "relgate: replay failed: {}/log.jsonl line {}: {}",
                        report.record.display(),
                        p.line,
                        p.message
                    );
                } else {
                    eprintln!(
                        "relgate: replay failed: {}: {}",
                        report.record.display(),
                        p.message
                    );
                }
            } else {
                println!(
                    "relgate: replay verified {}: {} lines, {} run(s), {} verdict(s) judged again from their evidence{}",
                    report.record.display(),
                    report.lines,
                    report.runs,
                    report.verdicts_rejudged,
                    if report.published {
                        ", every publish decided with every gate green"
                    } else {
                        ""
                    }
                );
                if let Some(s) = &report.checkpoint_signer {
                    println!("  checkpoint signed by {s}");
                }
                for n in &report.notes {
                    println!("  note: {n}");
                }
            }
        }
    }
    if report.ok {
        exit::SUCCESS
    } else {
        exit::REFUSED
    }
}

pub fn verify(dir: &Path, signers: Option<&Path>) -> i32 {
    verify::run(dir, signers)
}

/// A release's log, read and verified (status, findings and approve read the record this way).
pub(crate) struct ReleaseLog {
    pub dir: PathBuf,
    pub entries: Vec<crate::log::Entry>,
}

pub(crate) fn read_release_log(
    p: &crate::model::Pipeline,
    version: &str,
) -> Result<ReleaseLog, String> {
    if !crate::engine::valid_version(version) {
        return Err(format!("{version:?} is not a valid release version"));
    }
    let dir = crate::engine::record_dir(p, version, false);
    let path = dir.join(crate::record::LOG_FILE);
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("no release record for {version} ({}: {e})", path.display()))?;
    let (entries, _) = crate::log::read_log(&bytes)
        .map_err(|problem| format!("the release log is damaged: {problem}"))?;
    Ok(ReleaseLog { dir, entries })
}

/// The latest verdict of `gate` that has evidence, with the run it belongs to and its line.
pub(crate) fn latest_evidence<'a>(
    entries: &'a [crate::log::Entry],
    gate: &str,
) -> Option<(&'a crate::log::RunStarted, usize, String)> {
    let mut run = None;
    let mut found = None;
    for e in entries {
        match &e.record {
            crate::log::Record::RunStarted(r) => run = Some(r.as_ref()),
            crate::log::Record::GateVerdict(v) if v.gate == gate => {
                if let (Some(r), Some(d)) = (run, &v.evidence) {
                    found = Some((r, e.line, d.clone()));
                }
            }
            _ => {}
        }
    }
    found
}

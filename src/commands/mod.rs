//! The commands behind the CLI. Each returns an exit code from [`crate::exit`]; output goes to
//! stdout (results) and stderr (problems, refusals).

mod annotate;
pub mod approve;
pub mod approve_from;
pub mod ci_upload;
pub mod findings;
pub mod history;
pub mod logs;
pub mod report;

use crate::output::{err, errln, out, outln};
use std::path::{Path, PathBuf};

mod next_run;
mod run;
mod status;
mod whatif;

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

/// Print configuration problems (every one, with position and caret) on stderr; under GitHub
/// Actions also as `::error` workflow commands on stdout, where the runner reads them, so that
/// each shows on the line of the file it concerns.
pub(crate) fn config_problems(diags: &config::Diagnostics) {
    err!("{diags}");
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        let workspace = std::env::var_os("GITHUB_WORKSPACE").map(PathBuf::from);
        for d in &diags.0 {
            outln!("{}", annotate::error(d, workspace.as_deref()));
        }
    }
}

/// `relgate check`.
pub fn check(pipeline: &Path, state: Option<&Path>) -> i32 {
    match config::load(pipeline, state) {
        Ok(loaded) => {
            outln!(
                "{}: valid ({} gates)",
                pipeline.display(),
                loaded.pipeline.gates.len()
            );
            exit::SUCCESS
        }
        Err(diags) => {
            config_problems(&diags);
            errln!(
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
            let p = &loaded.pipeline;
            // Which green results a later run would keep: that needs to know whether each
            // automated gate runs in a git work tree.
            let reuse = next_run::block_on(async {
                let mut lines = std::collections::BTreeMap::new();
                let (_tx, cancel) = tokio::sync::watch::channel(false);
                for g in &p.gates {
                    if let Some(line) = crate::engine::reuse::plan_line(g, p, cancel.clone()).await
                    {
                        lines.insert(g.id.clone(), line);
                    }
                }
                lines
            })
            .unwrap_or_default();
            out!("{}", config::plan_text_with(p, &reuse));
            exit::SUCCESS
        }
        Err(diags) => {
            config_problems(&diags);
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

/// `relgate replay PATH --policy FILE`: what-if replay (see [`whatif`] for its exit codes).
pub fn what_if(
    path: &Path,
    trust_args: &crate::trust::TrustArgs,
    pipeline: &Path,
    policy: &Path,
    format: Format,
    access: &crate::folder::Access,
) -> i32 {
    whatif::run(path, trust_args, pipeline, policy, format, access)
}

/// `relgate replay`.
pub fn replay(
    path: &Path,
    trust_args: &crate::trust::TrustArgs,
    pipeline: &Path,
    checkpoints: &[PathBuf],
    format: Format,
    access: &crate::folder::Access,
) -> i32 {
    let trust = crate::trust::resolve(trust_args, pipeline, path);
    let folder = match crate::folder::open(path, &access.with_pipeline(pipeline)) {
        Ok(f) => f,
        Err(e) => {
            if let Err(t) = &trust {
                errln!("relgate: {t}");
            }
            errln!("relgate: {e}");
            return exit::CONFIG;
        }
    };
    let trust = match trust {
        Ok(t) => t,
        Err(e) => {
            errln!("relgate: {e}");
            if matches!(e, crate::trust::TrustError::Missing) {
                let signers = if folder.is_dir(crate::layout::AUDIT_DIR).unwrap_or(false) {
                    crate::layout::AUDIT_SIGNERS
                } else {
                    crate::audit::SIGNERS_COPY
                };
                verify::show_untrusted_signers(folder.as_ref(), signers);
            }
            return exit::CONFIG;
        }
    };
    let report = crate::replay::replay_folder(
        folder.as_ref(),
        &crate::replay::ReplayOptions {
            trust: &trust,
            checkpoints,
        },
    );
    print_replay(&report, format)
}

/// Print a replay report; the exit code it calls for.
fn print_replay(report: &crate::replay::ReplayReport, format: Format) -> i32 {
    match format {
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Format::Human => {
            if let Some(p) = &report.problem {
                if p.line > 0 {
                    errln!(
                        "relgate: replay failed: {}/log.jsonl line {}: {}",
                        report.record.display(),
                        p.line,
                        p.message
                    );
                } else {
                    errln!(
                        "relgate: replay failed: {}: {}",
                        report.record.display(),
                        p.message
                    );
                }
            } else {
                outln!(
                    "relgate: replay verified {} {} ({}): {} lines, {} run(s), {} verdict(s) judged again from their evidence{}",
                    report.project.as_deref().unwrap_or("?"),
                    report.version.as_deref().unwrap_or("?"),
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
                if report.folder_checked {
                    outln!(
                        "  the published files are exactly the gated ones, and nothing else is there"
                    );
                }
                if let Some(s) = &report.checkpoint_signer {
                    outln!(
                        "  {} checkpoint(s), the newest signed by {s} (trust root: {})",
                        report.checkpoints,
                        report.trust_root
                    );
                }
                for n in &report.notes {
                    outln!("  note: {n}");
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

pub fn verify(
    dir: &Path,
    trust: &crate::trust::TrustArgs,
    pipeline: &Path,
    access: &crate::folder::Access,
) -> i32 {
    verify::run(dir, trust, pipeline, access)
}

/// A release's log, read and verified (status, findings and approve read the record this way):
/// only the lines a checkpoint signed by the release signer covers.
pub(crate) struct ReleaseLog {
    pub dir: PathBuf,
    /// The lines attested in time (the only ones relied on).
    pub entries: Vec<crate::log::Entry>,
    pub notes: Vec<String>,
}

/// Why a release's log cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReleaseLogError {
    #[error("{0:?} is not a valid release version")]
    BadVersion(String),
    #[error("no release record for {version} ({} does not exist)", .log.display())]
    NoRecord { version: String, log: PathBuf },
    #[error("the pipeline's signers cannot serve as the trust root: {0}")]
    Trust(#[from] crate::trust::TrustError),
    #[error(
        "the release record {} does not verify, so nothing in it is used: {problem}. It may have \
         been tampered with; keep it as evidence (mv {dir} {dir}.suspect) and run the release again",
        .dir.display(), dir = .dir.display()
    )]
    Untrusted {
        dir: PathBuf,
        problem: crate::log::attest::AttestProblem,
    },
}

impl ReleaseLogError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ReleaseLogError::BadVersion(_) | ReleaseLogError::Trust(_) => exit::CONFIG,
            ReleaseLogError::NoRecord { .. } | ReleaseLogError::Untrusted { .. } => exit::REFUSED,
        }
    }
}

pub(crate) fn read_release_log(
    p: &crate::model::Pipeline,
    version: &str,
) -> Result<ReleaseLog, ReleaseLogError> {
    if !crate::engine::valid_version(version) {
        return Err(ReleaseLogError::BadVersion(version.to_string()));
    }
    let dir = crate::engine::record_dir(p, version, false);
    let log = dir.join(crate::record::LOG_FILE);
    if std::fs::symlink_metadata(&log).is_err() {
        return Err(ReleaseLogError::NoRecord {
            version: version.to_string(),
            log,
        });
    }
    let trust = crate::trust::TrustRoot::from_pipeline(p)?;
    let used = crate::log::attest::read_for_use(&dir, &trust).map_err(|problem| {
        ReleaseLogError::Untrusted {
            dir: dir.clone(),
            problem,
        }
    })?;
    let notes = used.notes.clone();
    let entries = used.trusted_entries();
    Ok(ReleaseLog {
        dir,
        entries,
        notes,
    })
}

/// The latest verdict of `gate` that has evidence, with the run it belongs to and its line.
pub(crate) fn latest_evidence<'a>(
    entries: &'a [crate::log::Entry],
    gate: &str,
) -> Option<(&'a crate::log::RunStarted, usize, String)> {
    crate::view::ReleaseView::new(entries)
        .latest_evidence(gate)
        .map(|(run, line, digest)| (run, line, digest.to_string()))
}

/// What a command that reads or writes a share by URL starts from: the trust root (from
/// outside the share: `--trust-key`, `--signers`, or the project's pipeline), the share, and a
/// runtime to reach it with. On failure the message is printed and the exit code returned.
pub(crate) fn open_share(
    url: &str,
    trust_args: &crate::trust::TrustArgs,
    pipeline: &Path,
    access: &crate::share::Access,
) -> Result<
    (
        crate::trust::TrustRoot,
        crate::share::Share,
        tokio::runtime::Runtime,
    ),
    i32,
> {
    // No folder is checked here; `""` keeps the pipeline from being refused as lying inside it.
    let trust = crate::trust::resolve(trust_args, pipeline, Path::new("")).map_err(|e| {
        errln!("error: {e}");
        exit::CONFIG
    })?;
    let share = crate::share::open(url, None, access).map_err(|e| {
        errln!("error: {e}");
        exit::CONFIG
    })?;
    let rt = runtime()?;
    Ok((trust, share, rt))
}

/// A runtime for a command's network work; on failure the message is printed and the exit
/// code returned.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            errln!("error: cannot start the runtime: {e}");
            exit::REFUSED
        })
}

//! `relgate run`: load the pipeline, run the release, report, and map the decision to an exit code.

use crate::output::{errln, outln};
use std::path::Path;
use std::sync::Arc;

use super::{Format, RunArgs};
use crate::engine::{self, RunOptions};
use crate::{config, exit, report};

pub fn run(args: RunArgs) -> i32 {
    let loaded = match config::load(&args.pipeline, args.state.as_deref()) {
        Ok(l) => l,
        Err(diags) => {
            super::config_problems(&diags);
            errln!(
                "relgate: nothing was run: {} configuration problem(s)",
                diags.0.len()
            );
            return exit::CONFIG;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("relgate: cannot start the runtime: {e}");
            return exit::REFUSED;
        }
    };
    rt.block_on(run_async(args, loaded))
}

/// The run, step by step: signals armed before anything starts, the release run with its
/// events shown (the display ended before anything else is said), the reports asked for
/// written, the run left on the share, what to say on stderr, and the result on stdout last.
async fn run_async(args: RunArgs, loaded: config::Loaded) -> i32 {
    // 1. Ctrl-C and SIGTERM stop the gates.
    let cancel = cancel_on_signals();
    // 2. Run the release, showing its events as they come.
    let pipeline = Arc::new(loaded.pipeline);
    let opts = RunOptions {
        pipeline: pipeline.clone(),
        sources: loaded.sources,
        version: args.version.clone(),
        dry_run: args.dry_run,
        operator: args.operator.clone(),
        rerun: args.rerun,
        cancel,
        notify: loaded.notify,
    };
    let summary = match run_shown(opts, args.format).await {
        Ok(s) => s,
        Err(e) => {
            errln!("relgate: {e}");
            return e.exit_code();
        }
    };
    // 3. The reports asked for: JUnit, GitHub's step summary.
    if let Some(path) = &args.junit {
        write_junit(path, &summary, &pipeline.project, &args.version);
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        append_step_summary(&path, &summary, &pipeline.project, &args);
    }
    // 4. The team's share.
    if let Some(spec) = &pipeline.share {
        push_to_share(spec, &pipeline, &args, &summary).await;
    }
    // 5. On stderr: why, where to read more, how the notifications went.
    explain(&summary, &args);
    // 6. The result.
    match args.format {
        Format::Json => {
            let doc = report::json::document(
                &summary,
                &pipeline.project,
                &args.version,
                args.dry_run,
                summary.message.as_deref(),
            );
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Human => print_human(&summary, &pipeline.project, &args.version),
    }
    summary.exit_code
}

/// Ctrl-C: tell every gate to stop (they kill their process groups); the run records the
/// abort and exits non-zero. SIGTERM (what CI systems send when a job is cancelled) is
/// treated the same way. The receiver is what the run watches.
fn cancel_on_signals() -> tokio::sync::watch::Receiver<bool> {
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { return },
            () = term => {}
        }
        let _ = cancel_tx.send(true);
    });
    cancel_rx
}

/// Run the release, its events shown on stderr as they come (quietly under `--format json`);
/// the display has ended before anything else is said.
async fn run_shown(
    opts: RunOptions,
    format: Format,
) -> Result<engine::RunSummary, engine::RunError> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let quiet = format == Format::Json;
    let display = tokio::spawn(report::terminal::consume(rx, quiet));
    let result = engine::run(opts, tx).await;
    let _ = display.await;
    result
}

/// `--junit`: the run as a JUnit file; a file that cannot be written is said, the run stands.
fn write_junit(path: &Path, summary: &engine::RunSummary, project: &str, version: &str) {
    match report::junit::render(summary, project, version) {
        Ok(xml) => {
            if let Err(e) = std::fs::write(path, xml) {
                errln!("relgate: cannot write {}: {e}", path.display());
            }
        }
        Err(e) => errln!("relgate: cannot render JUnit: {e}"),
    }
}

/// The Markdown summary, appended to `GITHUB_STEP_SUMMARY`: earlier steps of the job write
/// there too.
fn append_step_summary(
    path: &std::ffi::OsStr,
    summary: &engine::RunSummary,
    project: &str,
    args: &RunArgs,
) {
    let md = report::summary::markdown(summary, project, &args.version, args.dry_run);
    let written = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, md.as_bytes()));
    if let Err(e) = written {
        errln!(
            "relgate: cannot append the summary to {} (GITHUB_STEP_SUMMARY): {e}",
            Path::new(path).display()
        );
    }
}

/// What stderr says after the run: why it refused, where to read a failed regression's
/// output, how each notification went, and the run's message.
fn explain(summary: &engine::RunSummary, args: &RunArgs) {
    for line in report::refusal_lines(summary) {
        errln!("{line}");
    }
    // Where to read more: the record of a real run keeps each gate's output and reports.
    if !args.dry_run
        && let Some(id) = summary
            .gates
            .iter()
            .find(|g| g.kind == "regression" && matches!(g.state, engine::GateState::Red { .. }))
            .map(|g| &g.id)
    {
        errln!(
            "relgate: `relgate logs {} {id}` shows its output and failed tests",
            args.version
        );
    }
    // How each notification went: shown, never the verdict's business.
    for d in &summary.notifications {
        if d.delivered {
            errln!(
                "relgate: notified {} ({}, {})",
                report::printable(&d.target),
                d.event,
                d.format
            );
        } else {
            errln!(
                "relgate: notification failed: {} ({}): {}{}; the decision and exit code stand",
                report::printable(&d.target),
                d.event,
                report::printable(d.error.as_deref().unwrap_or("not delivered")),
                if d.attempts > 0 {
                    format!(" after {} attempt(s)", d.attempts)
                } else {
                    String::new()
                }
            );
        }
    }
    // A refusal with every gate green (a failed publish) must still say why, on stderr.
    if let Some(m) = &summary.message {
        errln!("relgate: {m}");
    }
}

/// The result for a person: the decision in words and the subject.
fn print_human(summary: &engine::RunSummary, project: &str, version: &str) {
    let what = match summary.decision {
        crate::log::Decision::Published => match &summary.published {
            Some(p) => format!("published {p}"),
            None => "accepted (no publish target configured)".into(),
        },
        crate::log::Decision::Refused => "refused: not published".into(),
        crate::log::Decision::Pending => "pending: awaiting sign-off; not published".into(),
        crate::log::Decision::DryRun => "dry run: nothing is red (never published)".into(),
        crate::log::Decision::Aborted => "interrupted: not published; the next run resumes".into(),
    };
    outln!("relgate: {project} {version}: {what}");
    outln!("  subject {}", summary.subject);
}

/// Leave the run on the team's share (docs/team.md): its checkpoints, or a dry run's record,
/// and its report — the open request, with each eligible signer's approve command, when the
/// run awaits sign-offs. What cannot be pushed is said; the run's outcome stands.
async fn push_to_share(
    spec: &crate::model::ShareSpec,
    pipeline: &crate::model::Pipeline,
    args: &RunArgs,
    summary: &engine::RunSummary,
) {
    let share = match crate::share::open_spec(spec, &pipeline.root) {
        Ok(s) => s,
        Err(e) => {
            errln!("relgate: share: nothing pushed: {e}");
            return;
        }
    };
    let pushed =
        crate::share::push::after_run(&share, pipeline, &args.version, summary, args.dry_run).await;
    for note in &pushed.notes {
        errln!("relgate: {note}");
    }
    let Some(at) = &pushed.report else {
        return;
    };
    if pushed.commands.is_empty() {
        errln!("relgate: share: the run's report is at {at}");
        return;
    }
    errln!(
        "relgate: share: the request for sign-off is at {at}; each eligible signer approves \
         from any machine with:"
    );
    for cmd in &pushed.commands {
        errln!("  {cmd}");
    }
}

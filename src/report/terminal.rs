//! The terminal display: one live line per gate (spinner and elapsed time) on a terminal,
//! plain lines otherwise. Everything goes to stderr; stdout is kept for results.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::engine::{Event, GateState};

pub async fn consume(mut rx: UnboundedReceiver<Event>, quiet: bool) {
    let live = !quiet && std::io::stderr().is_terminal();
    let multi = MultiProgress::with_draw_target(if live {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let running = ProgressStyle::with_template("{spinner} {prefix:<32} {msg} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    // Waiting and finished lines have no spinner; a finished one keeps its verdict on screen.
    let still = ProgressStyle::with_template("  {prefix:<32} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    // The upload of a remote release: a byte bar on a terminal, a line per quarter otherwise.
    let mut upload: Option<(ProgressBar, u64)> = None;
    let plain = |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::RunStarted {
                project,
                version,
                subject,
                dry_run,
                record,
                gates,
                notes,
            } => {
                let mode = if dry_run { " (dry run)" } else { "" };
                let header = format!(
                    "relgate: {project} {version}{mode}\n  subject {subject}\n  record  {record}"
                );
                if live {
                    let _ = multi.println(&header);
                } else {
                    plain(header);
                }
                for n in notes {
                    let line = format!("  note: {n}");
                    if live {
                        let _ = multi.println(&line);
                    } else {
                        plain(line);
                    }
                }
                for (id, kind) in gates {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(still.clone());
                    bar.set_prefix(format!("{id} ({kind})"));
                    bar.set_message("waiting");
                    bars.insert(id, bar);
                }
            }
            Event::GateStarted { gate } => {
                if let Some(bar) = bars.get(&gate) {
                    bar.set_style(running.clone());
                    bar.reset_elapsed();
                    bar.set_message("running");
                    bar.enable_steady_tick(Duration::from_millis(120));
                }
                if !live {
                    plain(format!("  {gate}: started"));
                }
            }
            Event::GateFinished {
                gate,
                state,
                elapsed_ms,
                notes,
                ..
            } => {
                let text = describe(&state);
                let secs = elapsed_ms as f64 / 1000.0;
                if let Some(bar) = bars.get(&gate) {
                    bar.set_style(still.clone());
                    bar.finish_with_message(format!("{text} ({secs:.1}s)"));
                }
                if !live {
                    plain(format!("  {gate}: {text} ({secs:.1}s)"));
                }
                for n in notes {
                    let line = format!("  {gate}: note: {n}");
                    if live {
                        let _ = multi.println(&line);
                    } else {
                        plain(line);
                    }
                }
            }
            Event::Uploading { to, sent, total } => {
                let (bar, shown) = upload.get_or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(total));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "  uploading {bytes}/{total_bytes} {bar:30} {binary_bytes_per_sec}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    if !live {
                        plain(format!("  uploading {} to {to}", human_bytes(total)));
                    }
                    (bar, 0)
                });
                bar.set_position(sent);
                let quarter = (sent * 4).checked_div(total).unwrap_or(4);
                if !live && quarter > *shown {
                    *shown = quarter;
                    plain(format!(
                        "  uploaded {} of {}",
                        human_bytes(sent),
                        human_bytes(total)
                    ));
                }
            }
            Event::Published { to } => {
                if let Some((bar, _)) = upload.take() {
                    bar.finish_and_clear();
                }
                let line = format!("  published {to}");
                if live {
                    let _ = multi.println(&line);
                } else {
                    plain(line);
                }
            }
            Event::Finished { .. } => {}
        }
    }
}

/// A byte count for a progress line (binary units, one decimal).
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn describe(state: &GateState) -> String {
    match state {
        GateState::Green { reused: true } => "green (kept from an earlier run)".into(),
        GateState::Green { reused: false } => "green".into(),
        GateState::Red { reasons } => format!(
            "red: {}",
            reasons
                .iter()
                .map(|r| r.code.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        GateState::Pending { .. } => "pending: awaiting sign-off".into(),
        GateState::Blocked { waiting_on } => {
            format!("blocked: waiting on {}", waiting_on.join(", "))
        }
        GateState::Skipped { reason } => format!("skipped: {reason}"),
        GateState::Aborted => "aborted".into(),
    }
}

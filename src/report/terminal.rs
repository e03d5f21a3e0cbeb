//! The terminal display: one live line per gate (spinner and elapsed time) on a terminal,
//! plain lines otherwise. Everything goes to stderr; stdout is kept for results.
//!
//! A live line never outgrows the terminal: a line that wraps is redrawn in the wrong place.
//! The gate column is as wide as the longest `id (kind)` but leaves room for a verdict, and a
//! longer name is cut with `…` (the id's start is kept: that is how people tell gates apart);
//! the message takes what is left of the line and is cut by the display.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::engine::{Event, GateState};
use crate::output::errln;

/// Columns a live line keeps for the verdict or the running time after the gate column.
const MESSAGE_ROOM: usize = 28;
/// The gate column is never narrower than this, however narrow the terminal.
const MIN_GATE_COLUMN: usize = 12;

#[expect(
    clippy::too_many_lines,
    reason = "one arm per event kind, each a few lines of output"
)]
pub async fn consume(mut rx: UnboundedReceiver<Event>, quiet: bool) {
    let live = !quiet && std::io::stderr().is_terminal();
    let multi = MultiProgress::with_draw_target(if live {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    // The prefix comes fitted to its column (see `gate_column`); `wide_msg` is cut to what is
    // left of the line.
    let running = ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    // Waiting and finished lines have no spinner; a finished one keeps its verdict on screen.
    let still = ProgressStyle::with_template("  {prefix} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    // The upload of a remote release: a byte bar on a terminal, a line per quarter otherwise.
    let mut upload: Option<(ProgressBar, u64)> = None;
    let plain = |line: String| {
        if !quiet {
            errln!("{line}");
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
                // `subject sha256:<64 hex>` is 79 columns: it fits an 80-column terminal.
                let header = format!(
                    "relgate: {project} {version}{mode}\nsubject {subject}\nrecord  {record}"
                );
                if live {
                    let _ = multi.println(&header);
                } else {
                    plain(header);
                }
                for n in notes {
                    let line = format!("  note: {}", super::printable(&n));
                    if live {
                        let _ = multi.println(&line);
                    } else {
                        plain(line);
                    }
                }
                let names: Vec<String> = gates
                    .iter()
                    .map(|(id, kind)| format!("{id} ({kind})"))
                    .collect();
                let columns = console::Term::stderr().size().1;
                let width = gate_column(&names, usize::from(columns));
                for ((id, _), name) in gates.into_iter().zip(names) {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(still.clone());
                    bar.set_prefix(fit(&name, width));
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
                    let line = format!("  {gate}: note: {}", super::printable(&n));
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
        GateState::Waiting { waiting_on } => {
            format!("pending: waiting on {}", waiting_on.join(", "))
        }
        GateState::Skipped { reason } => format!("skipped: {reason}"),
        GateState::Aborted => "aborted".into(),
    }
}

/// The width of the gate column on a terminal of `columns`: the longest name, unless that
/// leaves less than [`MESSAGE_ROOM`] for the rest of the line (two columns go to the spinner).
fn gate_column(names: &[String], columns: usize) -> usize {
    let longest = names
        .iter()
        .map(|n| console::measure_text_width(n))
        .max()
        .unwrap_or(0);
    let room = columns.saturating_sub(2 + 1 + MESSAGE_ROOM);
    longest.min(room.max(MIN_GATE_COLUMN))
}

/// `text` padded to `width` columns, or cut to `width - 1` and ended with `…`.
fn fit(text: &str, width: usize) -> String {
    let have = console::measure_text_width(text);
    if have <= width {
        return format!("{text}{}", " ".repeat(width - have));
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = console::measure_text_width(c.encode_utf8(&mut [0; 4]));
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    used += 1;
    out.push_str(&" ".repeat(width.saturating_sub(used)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_padded_and_long_ones_cut_with_an_ellipsis() {
        assert_eq!(fit("unit (regression)", 20), "unit (regression)   ");
        assert_eq!(fit("abcdefghij", 6), "abcde…");
        assert_eq!(console::measure_text_width(&fit("äöü-long-name", 5)), 5);
    }

    #[test]
    fn the_gate_column_leaves_room_for_the_message() {
        let names = vec!["x".repeat(70), "short".into()];
        assert_eq!(gate_column(&names, 80), 80 - 3 - MESSAGE_ROOM);
        assert_eq!(gate_column(&names, 200), 70);
        assert_eq!(gate_column(&["ab".into()], 80), 2);
        assert_eq!(gate_column(&names, 20), MIN_GATE_COLUMN);
    }
}

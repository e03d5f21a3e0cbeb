//! Writing results (stdout) and messages (stderr) without ever panicking.
//!
//! `println!` panics when a write fails, and a reader that went away — `relgate run 1.0.0
//! --format json | head -c 100`, a CI step that stops reading — makes every later write fail
//! with EPIPE (Rust ignores SIGPIPE, so the write returns an error instead of killing us; we
//! keep it that way, since a clamd socket or a child's pipe closing must not kill a run).
//! What relgate prints reports work already done and recorded: a run's verdicts are in its log
//! before they are shown. So a reader leaving ends that stream quietly and the command keeps
//! its exit code, as ripgrep does. Any other failure to write stdout (a full disk under
//! `> run.json`) is remembered: `main` says so and does not exit 0, because a script would
//! otherwise take a truncated document for the whole answer.
//!
//! Every line the commands and reporters print goes through [`out!`], [`outln!`], [`err!`] and
//! [`errln!`]; clippy's `print_stdout`/`print_stderr` lints keep `println!` out of the crate.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout cannot take more: nothing more is written to it.
static STDOUT_DONE: AtomicBool = AtomicBool::new(false);
/// Set once stderr cannot take more.
static STDERR_DONE: AtomicBool = AtomicBool::new(false);
/// The first stdout write error other than a closed pipe.
static STDOUT_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Write to stdout; see the module documentation for what happens when that fails.
pub fn write_out(args: fmt::Arguments<'_>) {
    if STDOUT_DONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args) {
        STDOUT_DONE.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe
            && let Ok(mut first) = STDOUT_ERROR.lock()
        {
            first.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Write to stderr. A failure there has nowhere to be reported: the stream is given up.
pub fn write_err(args: fmt::Arguments<'_>) {
    if STDERR_DONE.load(Ordering::Relaxed) {
        return;
    }
    if io::stderr().lock().write_fmt(args).is_err() {
        STDERR_DONE.store(true, Ordering::Relaxed);
    }
}

/// Flush stdout and return the first error writing it, unless the error was only that the
/// reader had gone (a closed pipe), which is not worth a word.
pub fn finish() -> Option<String> {
    if !STDOUT_DONE.load(Ordering::Relaxed)
        && let Err(e) = io::stdout().lock().flush()
        && e.kind() != io::ErrorKind::BrokenPipe
        && let Ok(mut first) = STDOUT_ERROR.lock()
    {
        first.get_or_insert_with(|| e.to_string());
    }
    STDOUT_ERROR.lock().ok().and_then(|e| e.clone())
}

/// Like `print!`, without the panic.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_out(format_args!($($arg)*)) };
}

/// Like `println!`, without the panic.
macro_rules! outln {
    () => { $crate::output::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Like `eprint!`, without the panic.
macro_rules! err {
    ($($arg:tt)*) => { $crate::output::write_err(format_args!($($arg)*)) };
}

/// Like `eprintln!`, without the panic.
macro_rules! errln {
    () => { $crate::output::write_err(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_err(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {err, errln, out, outln};

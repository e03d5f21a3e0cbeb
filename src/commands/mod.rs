//! The commands behind the CLI. Each returns an exit code from [`crate::exit`]; output goes to
//! stdout (results) and stderr (problems, refusals).

pub mod findings;

use std::path::{Path, PathBuf};

use crate::config;
use crate::exit;

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

pub fn run(args: RunArgs) -> i32 {
    let _ = args;
    eprintln!("relgate: run is not wired yet");
    exit::CONFIG
}

pub fn status(pipeline: &Path, state: Option<&Path>, version: &str, format: Format) -> i32 {
    let _ = (pipeline, state, version, format);
    eprintln!("relgate: status is not wired yet");
    exit::CONFIG
}

pub fn replay(path: &Path, signers: Option<&Path>, format: Format) -> i32 {
    let _ = (path, signers, format);
    eprintln!("relgate: replay is not wired yet");
    exit::CONFIG
}

pub fn verify(dir: &Path, signers: Option<&Path>) -> i32 {
    let _ = (dir, signers);
    eprintln!("relgate: verify is not wired yet");
    exit::CONFIG
}

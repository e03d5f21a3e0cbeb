//! `relgate approve`: write a signed sign-off (or rejection) for one signoff gate.

use std::path::PathBuf;

use crate::approval::{self, ApproveError, ApproveRequest};
use crate::config;
use crate::exit;
use crate::record::Record;

pub struct ApproveArgs {
    pub pipeline: PathBuf,
    pub state: Option<PathBuf>,
    pub version: String,
    pub gate: String,
    pub key: PathBuf,
    pub principal: String,
    pub comment: Option<String>,
    pub reject: bool,
    /// Sign for this subject without the local release record; the pair goes into the
    /// current folder.
    pub subject: Option<String>,
}

/// `relgate approve`.
pub fn approve(args: ApproveArgs) -> i32 {
    let loaded = match config::load(&args.pipeline, args.state.as_deref()) {
        Ok(l) => l,
        Err(diags) => {
            eprint!("{diags}");
            return exit::CONFIG;
        }
    };
    let pipeline = &loaded.pipeline;
    // The same rule as `run`: a version that could never have a record is refused up front.
    if !crate::engine::valid_version(&args.version) {
        eprintln!("error: {:?} is not a valid release version", args.version);
        return exit::CONFIG;
    }
    let located = match &args.subject {
        Some(subject) => std::env::current_dir()
            .map(|cwd| (subject.clone(), cwd))
            .map_err(|source| ApproveError::Write {
                path: PathBuf::from("."),
                source,
            }),
        None => {
            let record = Record::new(approval::record_dir(pipeline, &args.version));
            if record.dir.is_dir() {
                approval::staged_subject(&record).map(|s| (s, record.approvals_dir()))
            } else {
                Err(ApproveError::UnknownRelease {
                    version: args.version.clone(),
                    dir: record.dir.clone(),
                })
            }
        }
    };
    let (subject, out_dir) = match located {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            return exit::CONFIG;
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let req = ApproveRequest {
        pipeline,
        version: &args.version,
        gate: &args.gate,
        key: &args.key,
        principal: &args.principal,
        comment: args.comment.as_deref(),
        reject: args.reject,
        subject: &subject,
        out_dir: &out_dir,
        now,
    };
    match approval::approve(&req) {
        Ok(path) => {
            let what = if args.reject { "rejection" } else { "approval" };
            println!(
                "{what} of gate {} for {} {} (subject {subject}) written to {} and {}.sig",
                args.gate,
                pipeline.project,
                args.version,
                path.display(),
                path.display()
            );
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            exit::CONFIG
        }
    }
}

/// The error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

//! `relgate approve`: write a signed sign-off (or rejection) for one signoff gate.

use crate::output::{errln, outln};
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
    // The policy alone: an approver's checkout need not hold the build's artefacts.
    let loaded = match config::load_policy(&args.pipeline) {
        Ok(l) => l,
        Err(diags) => {
            super::config_problems(&diags);
            return exit::CONFIG;
        }
    };
    let pipeline = &loaded.pipeline;
    // The same rule as `run`: a version that could never have a record is refused up front.
    if !crate::engine::valid_version(&args.version) {
        errln!("error: {:?} is not a valid release version", args.version);
        return exit::CONFIG;
    }
    let located = match &args.subject {
        Some(subject) => std::env::current_dir()
            .map(|cwd| {
                (
                    subject.clone(),
                    crate::digest::policy_digest(&loaded.sources),
                    cwd,
                )
            })
            .map_err(|source| ApproveError::Write {
                path: PathBuf::from("."),
                source,
            }),
        None => {
            let record = Record::new(approval::record_dir(pipeline, &args.version));
            if !record.dir.is_dir() {
                Err(ApproveError::UnknownRelease {
                    version: args.version.clone(),
                    dir: record.dir.clone(),
                })
            } else {
                match latest_run(pipeline, &record) {
                    Ok((subject, policy)) => Ok((subject, policy, record.approvals_dir())),
                    Err(message) => {
                        errln!("error: {message}");
                        return exit::REFUSED;
                    }
                }
            }
        }
    };
    let (subject, policy, out_dir) = match located {
        Ok(x) => x,
        Err(e) => {
            errln!("error: {}", chain(&e));
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
        policy: &policy,
        out_dir: &out_dir,
        now,
    };
    match approval::approve(&req) {
        Ok(path) => {
            let what = if args.reject { "rejection" } else { "approval" };
            outln!(
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
            errln!("error: {}", chain(&e));
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

/// The subject and policy of the release's latest run, from a record that verifies under the
/// pipeline's signers: an approver is never led to sign a subject that only an unsigned or
/// tampered record names.
fn latest_run(
    pipeline: &crate::model::Pipeline,
    record: &Record,
) -> Result<(String, String), String> {
    let trust = crate::trust::TrustRoot::from_pipeline(pipeline).map_err(|e| e.to_string())?;
    let used = crate::log::attest::read_for_use(&record.dir, &trust).map_err(|problem| {
        format!(
            "the release record {} does not verify, so its subject cannot be signed: {problem}. \
             It may have been tampered with; keep it as evidence (mv {} {}.suspect), run the \
             release again, and sign the new subject",
            record.dir.display(),
            record.dir.display(),
            record.dir.display()
        )
    })?;
    let latest = |entries: &[crate::log::Entry]| {
        entries.iter().rev().find_map(|e| match &e.record {
            crate::log::Record::RunStarted(r) => Some((e.line, r.clone())),
            _ => None,
        })
    };
    let Some((line, run)) = latest(used.attested_entries()) else {
        return Err(format!(
            "the release record {} holds no run that a signed checkpoint covers (the release key \
             was not available, or no run finished); run the release with its key, or sign a \
             subject you checked yourself with --subject",
            record.dir.display()
        ));
    };
    if let Some((later, _)) = latest(&used.entries)
        && later != line
    {
        return Err(format!(
            "the latest run (log line {later}) did not finish, so nothing vouches for what it \
             staged; run the release again before signing"
        ));
    }
    Ok((
        run.subject.clone(),
        crate::digest::policy_digest(&run.sources),
    ))
}

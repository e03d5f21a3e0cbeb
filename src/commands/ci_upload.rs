//! `relgate ci-upload --share URL --project P --commit SHA --job NAME --key KEY --as PRINCIPAL
//! JUNIT…`: what a CI job runs after its tests, so that a regression gate with `from_share:`
//! counts them on the release machine (docs/team.md, "Evidence from CI"). It needs the relgate
//! binary, the CI's key (listed for its principal in the project's allowed_signers) and the
//! share's URL and credentials — no release record, no release key.
//!
//! Each report is checked to be a JUnit report the gate's reader takes, then written
//! create-only under its digest, then the signed statement naming them.

use std::path::PathBuf;

use crate::exit;
use crate::gates::regression::junit::MAX_REPORT_BYTES;
use crate::output::{errln, outln};
use crate::share::{self, ci};

pub struct CiUploadArgs {
    pub share: String,
    pub project: String,
    pub commit: String,
    pub job: String,
    pub key: PathBuf,
    pub principal: String,
    pub reports: Vec<PathBuf>,
    pub access: share::Access,
}

pub fn ci_upload(args: CiUploadArgs) -> i32 {
    match prepare(&args) {
        Ok((key, reports)) => {
            let rt = match super::runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            rt.block_on(upload(&args, &key, &reports))
        }
        Err(e) => {
            errln!("error: {e}");
            exit::CONFIG
        }
    }
}

/// Check the arguments and read the key and the reports; nothing is written before this passes.
fn prepare(args: &CiUploadArgs) -> Result<(crate::signkey::SignKey, Vec<ci::Upload>), String> {
    if share::layout::check_name(&args.project).is_err() {
        return Err(format!(
            "--project {:?} is not a project name",
            args.project
        ));
    }
    if !ci::is_commit_id(&args.commit) {
        return Err(format!(
            "--commit {:?}: expected the full commit id (40 or 64 lowercase hex digits, as `git \
             rev-parse HEAD` prints it)",
            args.commit
        ));
    }
    if !ci::is_job_name(&args.job) {
        return Err(format!(
            "--job {:?}: expected a job name of letters, digits, `.`, `_`, `-`, `+` and `@`",
            args.job
        ));
    }
    if args.principal.trim().is_empty() {
        return Err("--as: the principal must not be empty".into());
    }
    let mut reports = Vec::new();
    for path in &args.reports {
        let shown = path.display();
        let md = std::fs::symlink_metadata(path).map_err(|e| format!("{shown}: {e}"))?;
        if !md.is_file() {
            return Err(format!("{shown}: not a regular file"));
        }
        if md.len() > MAX_REPORT_BYTES {
            return Err(format!(
                "{shown}: {} bytes, over the {MAX_REPORT_BYTES} byte limit",
                md.len()
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
        // The release's judge reads it strictly: refuse here what it would refuse there.
        crate::gates::regression::report::read(&bytes)
            .map_err(|e| format!("{shown}: not a JUnit report relgate reads: {e}"))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "report.xml".into());
        reports.push(ci::Upload { name, bytes });
    }
    let key = crate::signkey::load(&args.key).map_err(|e| format!("--key: {e}"))?;
    Ok((key, reports))
}

async fn upload(args: &CiUploadArgs, key: &crate::signkey::SignKey, reports: &[ci::Upload]) -> i32 {
    let s = match share::open(&args.share, None, &args.access) {
        Ok(s) => s,
        Err(e) => {
            errln!("error: {e}");
            return exit::CONFIG;
        }
    };
    let run = ci::run_identity();
    let pair = match ci::sign(&ci::SignRequest {
        project: &args.project,
        commit: &args.commit,
        job: &args.job,
        principal: &args.principal,
        key,
        now: share::now(),
        run,
        reports,
    }) {
        Ok(p) => p,
        Err(e) => {
            errln!("error: cannot sign the statement: {e}");
            return exit::REFUSED;
        }
    };
    match ci::upload(&s, &args.project, &args.commit, &pair, reports).await {
        Ok(at) => {
            outln!(
                "uploaded {} JUnit report(s) of job {} for {} at commit {}; the statement is at {at}",
                reports.len(),
                args.job,
                args.project,
                args.commit
            );
            exit::SUCCESS
        }
        Err(e) => {
            errln!("relgate: cannot upload to the share: {e}; a retry writes the same objects");
            exit::REFUSED
        }
    }
}

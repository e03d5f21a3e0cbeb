//! `relgate approve`: write a signed sign-off (or rejection) for one signoff gate — but only one
//! that will count. The statement is signed, then judged together with the approvals already
//! there exactly as the next run would judge it (`gates::signoff::preview`); one the judge would
//! ignore (an author's, the operator's, the release signer's, another subject's, ...) is refused
//! with its reason and nothing is written, unless `--force` says to write it anyway.

use crate::output::{errln, outln};
use std::path::PathBuf;

use crate::approval::{self, ApproveError, ApproveRequest};
use crate::config;
use crate::exit;
use crate::gates::signoff::preview::{self, PreviewRequest};
use crate::log::{Entry, RunStarted};
use crate::model::GateKind;
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
    /// Write the statement even when it will not count.
    pub force: bool,
}

/// Why a sign-off would not count: `(code, reason)` pairs.
type Reasons = Vec<(String, String)>;

/// The release's latest run and the lines of its record a signed checkpoint covers.
struct Latest {
    run: RunStarted,
    entries: Vec<Entry>,
}

/// `relgate approve`.
pub fn approve(args: ApproveArgs) -> i32 {
    steps(&args).unwrap_or_else(|code| code)
}

/// The steps of `approve`, in this order: the policy loaded and the version checked; what is
/// signed and where it goes (a subject given, or the one the verified record staged); the
/// statement signed; then judged with the approvals already there as the next run would, so
/// that one that would not count is refused before anything is written; then written. A step
/// that ends the command has said why, and its exit code is the error.
fn steps(args: &ApproveArgs) -> Result<i32, i32> {
    // 1. The policy, and a version that could have a record.
    let loaded = load(args)?;
    let pipeline = &loaded.pipeline;
    let record = Record::new(approval::record_dir(pipeline, &args.version));
    // 2. What is signed, and where the statement goes.
    let mut signing = match &args.subject {
        Some(subject) => given_subject(&loaded, &record, subject)?,
        None => recorded_subject(args, pipeline, &record)?,
    };
    // 3. Sign it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let pair = sign(args, pipeline, &signing, now)?;
    // 4. Judge it as the next run would.
    would_count(args, &loaded, &record, &mut signing, &pair, now)?;
    // 5. Refuse one that would not count, unless forced.
    if !signing.refusals.is_empty() && !args.force {
        return Ok(refuse(&signing.refusals, true));
    }
    // 6. Write it.
    Ok(write(args, pipeline, &signing, &pair))
}

/// What is signed and where it goes, and why it would not count as far as known yet.
struct Signing {
    subject: String,
    /// The policy digest the statement names.
    policy: String,
    /// Where the statement and its signature are written.
    out_dir: PathBuf,
    /// The release's latest run, when its record is here and verifies.
    latest: Option<Latest>,
    refusals: Reasons,
}

/// The policy alone (an approver's checkout need not hold the build's artefacts), and the
/// same rule as `run`: a version that could never have a record is refused up front.
fn load(args: &ApproveArgs) -> Result<config::Loaded, i32> {
    let loaded = match config::load_policy_at(&args.pipeline, args.state.as_deref()) {
        Ok(l) => l,
        Err(diags) => {
            super::config_problems(&diags);
            return Err(exit::CONFIG);
        }
    };
    if !crate::engine::valid_version(&args.version) {
        errln!("error: {:?} is not a valid release version", args.version);
        return Err(exit::CONFIG);
    }
    Ok(loaded)
}

/// `--subject`: signed elsewhere, counted where the record is. The pair goes into the current
/// folder, under the pipeline's policy as it is; when the record is here, its staged subject
/// is the one that counts, and another is a refusal.
fn given_subject(loaded: &config::Loaded, record: &Record, subject: &str) -> Result<Signing, i32> {
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(e) => {
            errln!("error: cannot tell the current folder: {e}");
            return Err(exit::CONFIG);
        }
    };
    let latest = if record.dir.is_dir() {
        latest_run(&loaded.pipeline, record).ok()
    } else {
        None
    };
    let mut refusals: Reasons = Vec::new();
    if let Some(l) = &latest
        && l.run.subject != *subject
    {
        refusals.push((
            "approval-other-subject".into(),
            format!(
                "it is for subject {subject}, not the staged {} (the release record {})",
                l.run.subject,
                record.dir.display()
            ),
        ));
    }
    Ok(Signing {
        subject: subject.to_string(),
        policy: crate::digest::policy_digest(&loaded.sources),
        out_dir: cwd,
        latest,
        refusals,
    })
}

/// No `--subject`: the subject and policy of the release's latest run, from its record, which
/// must be here and verify; the pair goes into the record's approvals.
fn recorded_subject(
    args: &ApproveArgs,
    pipeline: &crate::model::Pipeline,
    record: &Record,
) -> Result<Signing, i32> {
    if !record.dir.is_dir() {
        let e = ApproveError::UnknownRelease {
            version: args.version.clone(),
            dir: record.dir.clone(),
        };
        errln!("error: {}", chain(&e));
        return Err(exit::CONFIG);
    }
    match latest_run(pipeline, record) {
        Ok(l) => Ok(Signing {
            subject: l.run.subject.clone(),
            policy: crate::digest::policy_digest(&l.run.sources),
            out_dir: record.approvals_dir(),
            latest: Some(l),
            refusals: Vec::new(),
        }),
        Err(message) => {
            errln!("error: {message}");
            Err(exit::REFUSED)
        }
    }
}

/// Sign the statement. A signer the judge would never count (not allowed, outside the gate's
/// role) is refused here, and `--force` does not change that; any other problem is a mistake
/// in the request.
fn sign(
    args: &ApproveArgs,
    pipeline: &crate::model::Pipeline,
    signing: &Signing,
    now: i64,
) -> Result<approval::Pair, i32> {
    let req = ApproveRequest {
        pipeline,
        version: &args.version,
        gate: &args.gate,
        key: &args.key,
        principal: &args.principal,
        comment: args.comment.as_deref(),
        reject: args.reject,
        subject: &signing.subject,
        policy: &signing.policy,
        out_dir: &signing.out_dir,
        now,
    };
    approval::sign(&req).map_err(|e| match e.code() {
        Some(code) => refuse(&[(code.to_string(), chain(&e))], false),
        None => {
            errln!("error: {}", chain(&e));
            exit::CONFIG
        }
    })
}

/// Judge the signed pair with the approvals already there ([`judge_now`]): its warnings are
/// shown, and the reasons it would be ignored for join the refusals (each code once).
fn would_count(
    args: &ApproveArgs,
    loaded: &config::Loaded,
    record: &Record,
    signing: &mut Signing,
    pair: &approval::Pair,
    now: i64,
) -> Result<(), i32> {
    let latest = signing.latest.take();
    let (ignored, warnings) =
        match judge_now(loaded, args, &signing.subject, record, latest, pair, now) {
            Ok(x) => x,
            Err(e) => {
                errln!("error: {e}");
                return Err(exit::CONFIG);
            }
        };
    for w in &warnings {
        errln!("warning: {w}");
    }
    for r in ignored {
        if !signing.refusals.iter().any(|(code, _)| *code == r.0) {
            signing.refusals.push(r);
        }
    }
    Ok(())
}

/// Write the pair, say where, and (under `--force`) why it will not count.
fn write(
    args: &ApproveArgs,
    pipeline: &crate::model::Pipeline,
    signing: &Signing,
    pair: &approval::Pair,
) -> i32 {
    match approval::write(&signing.out_dir, pair) {
        Ok(path) => {
            let what = if args.reject { "rejection" } else { "approval" };
            outln!(
                "{what} of gate {} for {} {} (subject {}) written to {} and {}.sig",
                args.gate,
                pipeline.project,
                args.version,
                signing.subject,
                path.display(),
                path.display()
            );
            for (code, reason) in &signing.refusals {
                errln!("warning: written with --force, but it will not count: {code}: {reason}");
            }
            exit::SUCCESS
        }
        Err(e) => {
            errln!("error: {}", chain(&e));
            exit::CONFIG
        }
    }
}

/// Refuse a sign-off that would not count: each reason on its own line, exit 1.
pub(crate) fn refuse(reasons: &[(String, String)], forcible: bool) -> i32 {
    for (code, reason) in reasons {
        errln!("relgate: approve refused: {code}: {reason}");
    }
    if forcible {
        errln!(
            "relgate: nothing was written: the sign-off would not count (--force writes it anyway)"
        );
    } else {
        errln!("relgate: nothing was written: the sign-off would not count");
    }
    exit::REFUSED
}

/// Judge the signed `pair` with the approvals already there, as the next run would: under the
/// pipeline as it is now, for the operator of the latest run and the one this shell names
/// (`RELGATE_OPERATOR`). Returns the reasons it would be ignored for, and warnings.
fn judge_now(
    loaded: &config::Loaded,
    args: &ApproveArgs,
    subject: &str,
    record: &Record,
    latest: Option<Latest>,
    pair: &approval::Pair,
    now: i64,
) -> Result<(Reasons, Vec<String>), String> {
    let p = &loaded.pipeline;
    let Some(gate) = p.gate(&args.gate) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let GateKind::Signoff(spec) = &gate.kind else {
        return Ok((Vec::new(), Vec::new()));
    };
    let signers = match &p.signers {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let folder = if record.dir.is_dir() {
        approval::load_folder(&record.approvals_dir())
            .map_err(|e| format!("cannot read {}: {e}", record.approvals_dir().display()))?
    } else {
        approval::Folder::default()
    };
    let entries = latest.as_ref().map(|l| l.entries.as_slice()).unwrap_or(&[]);
    let subject_since = entries
        .iter()
        .find_map(|e| match &e.record {
            crate::log::Record::RunStarted(r) if r.subject == subject => Some(r.started_at),
            _ => None,
        })
        .unwrap_or(now);
    let mut operators: Vec<Option<String>> = Vec::new();
    if let Ok(op) = std::env::var("RELGATE_OPERATOR")
        && !op.trim().is_empty()
    {
        operators.push(Some(op));
    }
    if let Some(op) = latest.as_ref().and_then(|l| l.run.operator.clone())
        && !operators.contains(&Some(op.clone()))
    {
        operators.push(Some(op));
    }
    if operators.is_empty() {
        operators.push(None);
    }
    let policy = crate::digest::policy_digest(&loaded.sources);
    let mut ignored: Reasons = Vec::new();
    let mut warnings = Vec::new();
    for operator in &operators {
        let req = PreviewRequest {
            pipeline: p,
            gate,
            spec,
            version: &args.version,
            subject,
            policy: &policy,
            operator: operator.as_deref(),
            signers: signers.as_deref(),
            subject_since,
            now,
            prior: entries,
            record: record.dir.is_dir().then_some(record),
            folder: &folder,
            extra: Some(pair),
            known_authors: None,
        };
        let (_tx, cancel) = tokio::sync::watch::channel(false);
        let got =
            super::next_run::block_on(preview::preview(&req, cancel)).map_err(|e| e.to_string())?;
        if let Some(why) = got.authors_unknown
            && !warnings.iter().any(|w: &String| w.contains(&why))
        {
            warnings.push(format!(
                "cannot tell whether {} wrote a change in changes.range ({why}); the next run \
                 cannot either, and its gate {} will be red until it can",
                args.principal, args.gate
            ));
        }
        for i in got.report.ignored.iter().filter(|i| i.name == pair.name) {
            if !ignored.iter().any(|(code, _)| *code == i.code) {
                ignored.push((i.code.to_string(), i.reason.clone()));
            }
        }
    }
    Ok((ignored, warnings))
}

/// The error and its causes on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// The latest run of the release, from a record that verifies under the pipeline's signers: an
/// approver is never led to sign a subject that only an unsigned or tampered record names.
fn latest_run(pipeline: &crate::model::Pipeline, record: &Record) -> Result<Latest, String> {
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
    let latest = |entries: &[Entry]| {
        entries.iter().rev().find_map(|e| match &e.record {
            crate::log::Record::RunStarted(r) => Some((e.line, r.clone())),
            _ => None,
        })
    };
    let Some((line, run)) = latest(&used.trusted_entries()) else {
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
    Ok(Latest {
        run: *run,
        entries: used.trusted_entries(),
    })
}

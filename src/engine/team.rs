//! The run's side of the team's share (`share:` in the pipeline, docs/team.md): before anything
//! is judged, the record is held against its checkpoints on the share and the sign-offs there
//! are taken in; before publishing, the release's lease is taken, and given back after. A dry
//! run only reports (commands/run.rs pushes after the run).

use super::RunError;
use crate::log::attest::ForUse;
use crate::model::Pipeline;
use crate::record::Record;
use crate::share::{self, Share, lease};
use crate::trust::TrustRoot;

/// The share of a real run, if the pipeline names one.
pub(crate) fn open(p: &Pipeline, dry_run: bool) -> Result<Option<Share>, RunError> {
    match &p.share {
        Some(spec) if !dry_run => share::open_spec(spec, &p.root)
            .map(Some)
            .map_err(RunError::Share),
        _ => Ok(None),
    }
}

/// Hold the record against the share, then take in the sign-offs there. Returns notes for the
/// run's start.
pub(crate) async fn before_run(
    s: &Share,
    p: &Pipeline,
    version: &str,
    record: &Record,
    verified: &ForUse,
    trust: &TrustRoot,
) -> Result<Vec<String>, RunError> {
    let failed = |e: share::sync::SyncError| match e {
        e @ share::sync::SyncError::RolledBack { .. } => RunError::RolledBack(e),
        e => RunError::ShareSync(e),
    };
    let mut notes =
        share::sync::check_rollback(s, &p.project, version, record, &verified.entries, trust)
            .await
            .map_err(failed)?;
    let signers = match &p.signers {
        Some(path) => std::fs::read_to_string(path).ok(),
        None => None,
    };
    notes.extend(
        share::sync::pull_statements(s, &p.project, version, record, signers.as_deref())
            .await
            .map_err(failed)?,
    );
    Ok(notes)
}

/// Why a run did not publish although every gate is green, with its exit code.
pub(crate) struct NotTaken {
    pub exit_code: i32,
    pub message: String,
}

/// Take the release's lease before publishing (`None`: no share).
pub(crate) async fn take_lease(
    s: Option<&Share>,
    p: &Pipeline,
    version: &str,
    record_id: &str,
    operator: Option<&str>,
) -> Result<Option<lease::Lease>, NotTaken> {
    let (Some(s), Some(spec)) = (s, &p.share) else {
        return Ok(None);
    };
    match lease::take(s, &p.project, version, record_id, operator, spec.lease_secs).await {
        Ok(l) => Ok(Some(l)),
        Err(e @ lease::LeaseError::Held { .. }) => Err(NotTaken {
            exit_code: crate::exit::BUSY,
            message: e.to_string(),
        }),
        Err(e) => Err(NotTaken {
            exit_code: crate::exit::REFUSED,
            message: format!("{e}; nothing was published"),
        }),
    }
}

/// Give the lease back once the publish is over; if that fails, it expires. Returns what to
/// say about it.
pub(crate) async fn give_back(s: Option<&Share>, l: Option<lease::Lease>) -> Option<String> {
    let (Some(s), Some(l)) = (s, l) else {
        return None;
    };
    lease::give_back(s, &l).await.err().map(|e| {
        format!(
            "the publish lease could not be given back ({e}); it expires at {}",
            share::rfc3339(l.doc.expires)
        )
    })
}

//! The run's side of the team's share (`share:` in the pipeline, docs/team.md): before anything
//! is judged, the record is held against its checkpoints on the share and the sign-offs there
//! are taken in. A dry
//! run only reports (commands/run.rs pushes after the run).

use super::RunError;
use crate::log::attest::ForUse;
use crate::model::Pipeline;
use crate::record::Record;
use crate::share::{self, Share};
use crate::trust::TrustRoot;

/// The share of a real run, if the pipeline names one.
pub(crate) fn open(p: &Pipeline, dry_run: bool) -> Result<Option<Share>, RunError> {
    match &p.share {
        Some(spec) if !dry_run => share::open_spec(spec, &p.root)
            .map(Some)
            .map_err(|e| RunError::Share(e.to_string())),
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
        e @ share::sync::SyncError::RolledBack { .. } => RunError::Share(e.to_string()),
        e => RunError::Share(format!("{e}; nothing was run")),
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

//! The keys of a run: the one that signs its checkpoints (the sign gate's, or a dry run's
//! throwaway key), the checkpoints themselves, and the attestation made with that key.

use super::{RunError, SharedLog};
use crate::log::{self, CheckpointKey};
use crate::model::Pipeline;
use crate::publish;
use crate::record::Record;
use crate::signkey::{RawSigner, SignKey};
use crate::sshsig;

/// The VSA and the key's PEM, to sit beside `SHA256SUMS` (`crate::intoto::vsa`), signed by the
/// key that signs the checkpoints.
pub(super) fn attestation_files(
    record: &Record,
    key: Option<&(SignKey, CheckpointKey)>,
    dry_run_to: Option<&str>,
) -> Result<Vec<publish::ReleaseFile>, publish::PublishError> {
    let (key, _) = key.ok_or(publish::PublishError::NoAttestationKey)?;
    let a = crate::intoto::vsa::for_record(&record.dir, key, dry_run_to)
        .map_err(publish::PublishError::Attestation)?;
    Ok(vec![
        publish::ReleaseFile {
            path: crate::layout::VSA_FILE.into(),
            source: publish::Source::Bytes(a.envelope.into_bytes()),
        },
        publish::ReleaseFile {
            path: crate::layout::PUBKEY_FILE.into(),
            source: publish::Source::Bytes(a.pem.into_bytes()),
        },
    ])
}

/// `relgate/<project>/<version>`: what a checkpoint speaks about.
pub fn origin(p: &Pipeline, version: &str) -> String {
    format!("relgate/{}/{}", p.project, version)
}

pub(crate) fn write_checkpoint(
    log: &SharedLog,
    record: &Record,
    key: Option<&crate::signkey::SignKey>,
    origin: &str,
) -> Result<(), RunError> {
    let (size, head) = {
        let w = log.lock().map_err(|_| RunError::Poisoned)?;
        (w.len(), w.head())
    };
    let cp = log::checkpoint::Checkpoint::new(origin, size, head);
    // Without a key the checkpoint is written unsigned, and replay will say so.
    let signer = key.map(|k| k as &dyn crate::signkey::RawSigner);
    log::checkpoint::write(&record.dir, &cp, signer)?;
    // This machine remembers the newest checkpoint it signed, outside the record (never a dry
    // run's: a throwaway key vouches for nothing).
    let dry_run = record.dir.components().any(|c| c.as_os_str() == "dry-runs");
    if key.is_some()
        && !dry_run
        && let Ok(stored) = log::checkpoint::read_stored(
            &record.dir.join(crate::record::CHECKPOINT_FILE),
            crate::record::CHECKPOINT_FILE,
        )
    {
        log::pin::remember(&record.dir, &stored);
    }
    Ok(())
}

/// The key that signs checkpoints: the sign gate's key, or in a dry run without one, a
/// throwaway key.
pub(super) fn checkpoint_key(
    p: &Pipeline,
    dry_run: bool,
) -> (Option<(SignKey, CheckpointKey)>, Option<String>) {
    // A dry run never signs with the release key: a real signature would exist for bytes
    // nobody accepted. Its throwaway key proves the record intact, never who made it. (Nor is
    // an agent asked: a token would want a touch for a rehearsal.)
    let loaded = if dry_run {
        Err(String::new())
    } else {
        p.sign_gate()
            .ok_or_else(|| "the pipeline has no sign gate".to_string())
            .and_then(|(_, spec)| crate::gates::sign::key_path(spec, &p.root))
            .and_then(|path| {
                let key = crate::signkey::load(&path).map_err(|e| e.to_string())?;
                crate::signkey::check_release_key(&key, &path).map_err(|e| e.to_string())?;
                Ok(key)
            })
    };
    let (key, throwaway, note) = match loaded {
        _ if dry_run => match crate::signkey::throwaway() {
            Ok(k) => (
                k,
                true,
                // Short: notes are shown whole on an 80-column terminal.
                Some("a dry run signs with a throwaway key, never the release key".to_string()),
            ),
            Err(e) => return (None, Some(format!("no throwaway key: {e}"))),
        },
        Ok(k) => (k, false, None),
        Err(why) => {
            return (
                None,
                Some(format!(
                    "signing key not available ({why}): the log checkpoint stays unsigned"
                )),
            );
        }
    };
    let info = CheckpointKey {
        public: sshsig::public_line(key.public_key()),
        fingerprint: sshsig::fingerprint(key.public_key()),
        throwaway,
    };
    (Some((key, info)), note)
}

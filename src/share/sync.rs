//! What `run` takes from the share before it judges anything: the record's checkpoints there
//! (the local record must extend each one the release signer signed: a record rolled back on
//! the release machine is caught, whatever its pins say), and the sign-offs approvers left
//! there (copied into the record's `approvals/`, where the signoff gate reads them as it reads
//! a pair dropped in by hand).

use super::layout::{self, SIG};
use super::{Share, Store};
use crate::approval::{self, Pair};
use crate::log::Entry;
use crate::log::attest::{CheckpointError, check_checkpoint};
use crate::log::checkpoint::{Stored, history_name, is_history_name};
use crate::record::Record;
use crate::trust::TrustRoot;

/// The largest checkpoint or signature read from a share.
const MAX_CHECKPOINT_BYTES: u64 = 64 << 10;

/// The record's id on a share: the chain head of its log's first line.
pub fn record_id(entries: &[Entry]) -> Option<String> {
    entries.first().map(|e| e.head.hex())
}

/// Why a record may not be used.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot read the share: {0}")]
    Share(#[from] super::ShareError),
    #[error(
        "the release record {dir} does not extend the checkpoint {at} that the share holds for \
         it: {message}. The record was rolled back or forked since that checkpoint was signed. \
         Keep it as evidence and start over: move it aside (mv {dir} {dir}.suspect) and run \
         again; a new record starts from nothing"
    )]
    RolledBack {
        dir: String,
        at: String,
        message: String,
    },
}

/// Check the local record against every checkpoint of it on the share. Only checkpoints whose
/// name is their text's and whose signature the trust root allows are held against it: anyone
/// can write the share, and junk there must not stop a release. Returns notes on what was
/// passed over.
pub async fn check_rollback(
    share: &Share,
    project: &str,
    version: &str,
    record: &Record,
    entries: &[Entry],
    trust: &TrustRoot,
) -> Result<Vec<String>, SyncError> {
    let Some(id) = record_id(entries) else {
        return Ok(Vec::new());
    };
    let dir = layout::checkpoints_dir(project, version, &id);
    let mut notes = Vec::new();
    // A link or a file planted where the folder should be is junk like any other (and hides
    // no more than deleting the folder would): said, and passed over.
    let names = match share.list(&dir).await {
        Ok(n) => n,
        Err(e) if e.about_the_object() => {
            notes.push(format!(
                "share: ignored {dir}: {}",
                crate::report::printable(&e.to_string())
            ));
            return Ok(notes);
        }
        Err(e) => return Err(e.into()),
    };
    for name in names.iter().filter(|n| !n.ends_with(SIG)) {
        let at = format!("{dir}/{name}");
        if !is_history_name(name) {
            notes.push(format!("share: ignored {at}: not a name relgate writes"));
            continue;
        }
        // Junk in the folder — a file too large, a folder or a link where a checkpoint should
        // be — is said and passed over: it must not stop a release. A share that cannot be
        // reached still stops the run: its checkpoints could not be held against the record.
        let pair = match (
            share.get(&at, MAX_CHECKPOINT_BYTES).await,
            share.get(&format!("{at}{SIG}"), MAX_CHECKPOINT_BYTES).await,
        ) {
            (Ok(t), Ok(s)) => t.zip(s),
            (Err(e), _) | (_, Err(e)) if e.about_the_object() => {
                notes.push(format!(
                    "share: ignored {at}: cannot be read: {}",
                    crate::report::printable(&e.to_string())
                ));
                continue;
            }
            (Err(e), _) | (_, Err(e)) => return Err(e.into()),
        };
        let Some((text, sig)) = pair else {
            continue;
        };
        let stored = Stored {
            file: share.shown(&at),
            text: String::from_utf8_lossy(&text).into_owned(),
            sig: Some(String::from_utf8_lossy(&sig).into_owned()),
        };
        let origin = format!("relgate/{project}/{version}");
        if let Err(why) = signed_by_release(&stored, name, &origin, trust) {
            notes.push(format!("share: ignored {at}: {why}"));
            continue;
        }
        match check_checkpoint(&stored, entries, trust) {
            Ok(_) => {}
            Err(CheckpointError::Invalid(_, message)) => {
                return Err(SyncError::RolledBack {
                    dir: record.dir.display().to_string(),
                    at: stored.file,
                    message,
                });
            }
            Err(CheckpointError::BadSignature(m)) => {
                notes.push(format!("share: ignored {at}: {m}"));
            }
            Err(CheckpointError::Unsigned) => {}
        }
    }
    Ok(notes)
}

/// Is `stored` a checkpoint of `origin` named as relgate names it, signed by the release
/// signer?
fn signed_by_release(
    stored: &Stored,
    name: &str,
    origin: &str,
    trust: &TrustRoot,
) -> Result<(), String> {
    let sig = stored.sig.as_deref().unwrap_or_default();
    match super::request::release_signed(stored.text.as_bytes(), sig.as_bytes(), origin, trust) {
        Some(cp) if is_history_name(name) && history_name(&cp) == name => Ok(()),
        Some(_) => Err("its content does not match its name".into()),
        None => Err(format!(
            "not a checkpoint of {origin} signed by the release signer ({})",
            trust.source
        )),
    }
}

/// Copy the release's sign-offs from the share into `approvals/`: each pair whose name is its
/// statement's digest and whose signature verifies for a principal `signers` allows now. What
/// does not is left where it is and said (a tampered statement on the share must not pass
/// unnoticed); whether a pair that is copied counts is the gate's to judge.
pub async fn pull_statements(
    share: &Share,
    project: &str,
    version: &str,
    record: &Record,
    signers: Option<&str>,
) -> Result<Vec<String>, SyncError> {
    let found = super::statements::read(share, project, version).await?;
    let mut notes: Vec<String> = found
        .ignored
        .iter()
        .map(|(at, why)| format!("share: ignored {at}: {why}"))
        .collect();
    let Some(signers) = signers.and_then(|t| crate::signers::parse(t).ok()) else {
        return Ok(notes);
    };
    let dir = record.approvals_dir();
    let present = approval::load_folder(&dir).unwrap_or_default();
    let now = super::now();
    let mut pulled = Vec::new();
    for pair in &found.pairs {
        let shown = format!("statements/{}", pair.name);
        let verified = match approval::verify_pair(&pair.statement, &pair.signature, &signers, now)
        {
            Ok(v) => v,
            Err(p) => {
                notes.push(format!(
                    "share: ignored {shown}: {}: {}",
                    p.code(),
                    crate::report::printable(&p.to_string())
                ));
                continue;
            }
        };
        let st = &verified.statement;
        if st.project != project || st.version != version {
            notes.push(format!(
                "share: ignored {shown}: it is for {} {}",
                crate::report::printable(&st.project),
                crate::report::printable(&st.version)
            ));
            continue;
        }
        if present.pairs.iter().any(|p| p.statement == pair.statement) {
            continue;
        }
        let local = Pair {
            name: approval::pair_name(st, &pair.statement),
            statement: pair.statement.clone(),
            signature: pair.signature.clone(),
        };
        match approval::write(&dir, &local) {
            Ok(_) => pulled.push(format!(
                "{} {} of {}",
                crate::report::printable(&st.signer),
                st.decision.as_str(),
                crate::report::printable(&st.gate)
            )),
            Err(e) => notes.push(format!("share: cannot copy {shown} into the record: {e}")),
        }
    }
    if !pulled.is_empty() {
        notes.push(format!(
            "share: {} new sign-off(s) taken from the share: {}",
            pulled.len(),
            pulled.join(", ")
        ));
    }
    Ok(notes)
}

//! The open request of a release, as an approver finds it on the share: the newest run report
//! of the release that the release signer signed (under a trust root the approver brings),
//! provided that run awaits sign-offs and nothing newer of its record is on the share. Reports
//! that do not check — a wrong name, another key, a dry run's — are passed over and said.

use super::layout::{self, SIG};
use super::report::{self, Checked};
use super::{MAX_OBJECT_BYTES, Share, ShareError, Store};
use crate::log::checkpoint::{Checkpoint, is_history_name};
use crate::trust::TrustRoot;

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("cannot read the share: {0}")]
    Share(#[from] ShareError),
    #[error(
        "no request of {project} {version} signed by the release signer is on the share ({at}); \
         the release engineer's `relgate run` leaves one when it stops for sign-offs"
    )]
    None {
        project: String,
        version: String,
        at: String,
    },
    #[error(
        "the request is closed: the latest run of {project} {version} (run {run}, {time}) ended \
         {decision}, not awaiting sign-offs"
    )]
    Closed {
        project: String,
        version: String,
        run: u32,
        time: String,
        decision: String,
    },
    #[error(
        "the request is closed: the release record went on after it (a checkpoint of {size} \
         lines, newer than the request's {had}, is on the share); ask the release engineer to \
         run the release again"
    )]
    Superseded { size: u64, had: u64 },
}

impl RequestError {
    /// The stable code a refusal shows.
    pub fn code(&self) -> crate::gates::Code {
        match self {
            RequestError::Share(_) => crate::gates::Code::ShareUnreadable,
            RequestError::None { .. } => crate::gates::Code::RequestMissing,
            RequestError::Closed { .. } | RequestError::Superseded { .. } => {
                crate::gates::Code::RequestClosed
            }
        }
    }
}

/// The release's open request; notes on every report passed over, whatever the outcome.
pub async fn open(
    share: &Share,
    project: &str,
    version: &str,
    trust: &TrustRoot,
) -> (Vec<String>, Result<Checked, RequestError>) {
    match reports(share, project, version, false, Some(trust)).await {
        Ok((found, notes)) => {
            let open = newest_open(share, project, version, trust, found).await;
            (notes, open)
        }
        Err(e) => (Vec::new(), Err(e.into())),
    }
}

async fn newest_open(
    share: &Share,
    project: &str,
    version: &str,
    trust: &TrustRoot,
    mut found: Vec<Checked>,
) -> Result<Checked, RequestError> {
    found.retain(|c| c.report.project == project && c.report.version == version);
    let Some(newest) = found
        .into_iter()
        .max_by_key(|c| (c.report.started_at, c.report.run, c.report.time.clone()))
    else {
        return Err(RequestError::None {
            project: project.into(),
            version: version.into(),
            at: share.shown(&layout::runs_dir(project, version, false)),
        });
    };
    let r = &newest.report;
    if r.decision != "pending" {
        return Err(RequestError::Closed {
            project: project.into(),
            version: version.into(),
            run: r.run,
            time: r.time.clone(),
            decision: r.decision.clone(),
        });
    }
    let had = r
        .checkpoint
        .as_ref()
        .and_then(|c| Checkpoint::parse(&c.text).ok())
        .map_or(0, |c| c.size);
    let newer = newest_checkpoint(share, project, version, &r.record, trust).await?;
    if newer > had {
        return Err(RequestError::Superseded { size: newer, had });
    }
    Ok(newest)
}

/// Every report of a release (`dry_run`: of its dry runs) that checks — under `trust`, when
/// given — with a note for each one that does not.
pub async fn reports(
    share: &Share,
    project: &str,
    version: &str,
    dry_run: bool,
    trust: Option<&TrustRoot>,
) -> Result<(Vec<Checked>, Vec<String>), ShareError> {
    let dir = layout::runs_dir(project, version, dry_run);
    let names = share.list(&dir).await?;
    let mut found = Vec::new();
    let mut notes = Vec::new();
    for name in names.iter().filter(|n| !n.ends_with(SIG)) {
        let at = format!("{dir}/{name}");
        if !layout::is_object_name(name) {
            notes.push(format!("ignored {at}: not a name relgate writes"));
            continue;
        }
        // `list` is sorted: a lookup per name, not a scan (anyone can leave names by the
        // hundred thousand).
        if names.binary_search(&format!("{name}{SIG}")).is_err() {
            continue;
        }
        // One object that cannot be read (a folder or a link in its place, one too large) is
        // passed over like any other that does not check: it must not hide the rest.
        let pair = match (
            share.get(&at, MAX_OBJECT_BYTES).await,
            share.get(&format!("{at}{SIG}"), MAX_OBJECT_BYTES).await,
        ) {
            (Ok(b), Ok(s)) => b.zip(s),
            (Err(e), _) | (_, Err(e)) if e.about_the_object() => {
                notes.push(format!(
                    "ignored {at}: cannot be read: {}",
                    crate::report::printable(&e.to_string())
                ));
                continue;
            }
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        let Some((bytes, sig)) = pair else {
            continue;
        };
        let checked = match trust {
            Some(t) => report::check(name, &bytes, &sig, t),
            // No root: only a dry run's report can be read, for what it is.
            None => Err("no trust root was given to check it with".to_string()),
        };
        match checked {
            Ok(c) if c.report.dry_run != dry_run => notes.push(format!(
                "ignored {at}: it reports a {}",
                if c.report.dry_run {
                    "dry run"
                } else {
                    "release run"
                }
            )),
            Ok(c) => found.push(c),
            Err(why) => notes.push(format!("ignored {at}: {}", crate::report::printable(&why))),
        }
    }
    Ok((found, notes))
}

/// The size of the newest checkpoint of record `id` on the share that the release signer
/// signed (0: none).
async fn newest_checkpoint(
    share: &Share,
    project: &str,
    version: &str,
    id: &str,
    trust: &TrustRoot,
) -> Result<u64, ShareError> {
    let dir = layout::checkpoints_dir(project, version, id);
    let origin = format!("relgate/{project}/{version}");
    let mut newest = 0;
    let names = match share.list(&dir).await {
        Ok(n) => n,
        // Junk where the folder should be proves nothing either way.
        Err(e) if e.about_the_object() => Vec::new(),
        Err(e) => return Err(e),
    };
    for name in names {
        if name.ends_with(SIG) || !is_history_name(&name) {
            continue;
        }
        let at = format!("{dir}/{name}");
        let pair = match (
            share.get(&at, 64 << 10).await,
            share.get(&format!("{at}{SIG}"), 64 << 10).await,
        ) {
            (Ok(t), Ok(s)) => t.zip(s),
            // Junk under a checkpoint's name proves nothing either way.
            (Err(e), _) | (_, Err(e)) if e.about_the_object() => None,
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        let Some((text, sig)) = pair else {
            continue;
        };
        if let Some(cp) = release_signed(&text, &sig, &origin, trust)
            && crate::log::checkpoint::history_name(&cp) == name
        {
            newest = newest.max(cp.size);
        }
    }
    Ok(newest)
}

/// A checkpoint of `origin` that the release signer signed.
pub fn release_signed(
    text: &[u8],
    sig: &[u8],
    origin: &str,
    trust: &TrustRoot,
) -> Option<Checkpoint> {
    let text = std::str::from_utf8(text).ok()?;
    let sig = std::str::from_utf8(sig).ok()?;
    let cp = Checkpoint::parse(text).ok()?;
    if cp.origin != origin {
        return None;
    }
    let key = crate::sshsig::signature_key(sig).ok()?;
    crate::sshsig::verify_with_key(&key, crate::sshsig::NS_CHECKPOINT, text.as_bytes(), sig)
        .ok()?;
    let at = time::OffsetDateTime::parse(&cp.time, &time::format_description::well_known::Rfc3339)
        .ok()?
        .unix_timestamp();
    trust
        .release_key(&key, crate::sshsig::NS_CHECKPOINT, at)
        .ok()?;
    Some(cp)
}

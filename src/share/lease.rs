//! One publisher at a time: before it publishes, `run` takes the release's lease on the share,
//! and gives it back once the publish is over. Two release engineers running the same version
//! on two machines cannot both publish: the second is told who holds the release.
//!
//! Leases are numbered folders, `lease/<seq>/`, each holding `lease.json` (who, where, until
//! when) and, once given back, `released.json`. To take the lease, `run` reads the newest one:
//! held (not given back, not expired) by someone else, the run stops; else it claims the next
//! number — a claim of one folder that exactly one claimant wins (`Store::claim`), so two
//! machines that both found the release free cannot both take it. Nothing is overwritten or
//! deleted: the lease folders are the history of who published when.
//!
//! A lease is coordination, not security: anyone who can write the share can write one, and so
//! keep a release from being published (as they could by filling the share). That no release is
//! published twice rests on the publish target's own create-only writes (docs/publish.md).

use serde::{Deserialize, Serialize};

use super::{MAX_OBJECT_BYTES, Put, Share, ShareError, Store, layout};

pub const LEASE_TYPE: &str = "relgate-lease/v1";
const LEASE_FILE: &str = "lease.json";
const RELEASED_FILE: &str = "released.json";
/// How many numbers a taker tries when others take them under it.
const TRIES: u32 = 8;

/// What a lease says.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeaseDoc {
    #[serde(rename = "type")]
    pub kind: String,
    pub project: String,
    pub version: String,
    /// Who took it: the operator, else the user running relgate.
    pub holder: String,
    pub host: String,
    pub pid: u32,
    /// The release record publishing (its id, see `share::layout`).
    pub record: String,
    /// Unix seconds.
    pub taken: i64,
    pub expires: i64,
    /// Only its taker knows it; it marks the lease as theirs, and its giving back.
    pub token: String,
}

/// A lease this run holds.
#[derive(Debug)]
pub struct Lease {
    pub seq: u64,
    pub doc: LeaseDoc,
}

/// Why the lease could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "{project} {version} is being published from another machine: the lease is held by \
         {holder} on {host} (pid {pid}) since {taken}, until {expires} ({at}); nothing was \
         published. Run again once that run has finished"
    )]
    Held {
        project: String,
        version: String,
        holder: String,
        host: String,
        pid: u32,
        taken: String,
        expires: String,
        at: String,
    },
    #[error("cannot take the publish lease: {0}")]
    Share(#[from] ShareError),
    #[error("cannot take the publish lease: {0}")]
    Unreadable(String),
}

/// Who this process is, as a lease names it.
pub fn this_holder(operator: Option<&str>) -> (String, String) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".into());
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown user".into());
    let holder = operator
        .map(str::to_string)
        .unwrap_or_else(|| format!("{user}@{host}"));
    (holder, host)
}

/// The state of the newest lease.
enum Newest {
    None,
    Free(u64),
    Held(u64, LeaseDoc),
}

async fn newest(share: &Share, dir: &str, now: i64) -> Result<Newest, LeaseError> {
    let seqs: Vec<u64> = share
        .list(dir)
        .await?
        .iter()
        .filter_map(|n| n.parse::<u64>().ok())
        .collect();
    let Some(seq) = seqs.into_iter().max() else {
        return Ok(Newest::None);
    };
    let at = format!("{dir}/{seq:06}");
    let Some(bytes) = share
        .get(&format!("{at}/{LEASE_FILE}"), MAX_OBJECT_BYTES)
        .await?
    else {
        // Fail closed: a lease folder without its lease cannot say it is free.
        return Err(LeaseError::Unreadable(format!(
            "{} holds no {LEASE_FILE}",
            share.shown(&at)
        )));
    };
    let doc: LeaseDoc = serde_json::from_slice(&bytes)
        .map_err(|e| LeaseError::Unreadable(format!("{}/{LEASE_FILE}: {e}", share.shown(&at))))?;
    let released = share
        .get(&format!("{at}/{RELEASED_FILE}"), MAX_OBJECT_BYTES)
        .await?
        .and_then(|b| serde_json::from_slice::<Released>(&b).ok())
        .is_some_and(|r| r.token == doc.token);
    if released || doc.expires <= now {
        Ok(Newest::Free(seq))
    } else {
        Ok(Newest::Held(seq, doc))
    }
}

#[derive(Serialize, Deserialize)]
struct Released {
    token: String,
    time: i64,
}

/// Take the release's lease for `secs` seconds.
pub async fn take(
    share: &Share,
    project: &str,
    version: &str,
    record: &str,
    operator: Option<&str>,
    secs: u64,
) -> Result<Lease, LeaseError> {
    let dir = layout::lease_dir(project, version);
    let (holder, host) = this_holder(operator);
    for _ in 0..TRIES {
        let now = super::now();
        let after = match newest(share, &dir, now).await? {
            Newest::None => 0,
            Newest::Free(seq) => seq,
            // Runs of one record hold its lock in turn: a lease of this record is a killed
            // run's, and this run takes over from it.
            Newest::Held(seq, doc) if doc.record == record => seq,
            Newest::Held(seq, doc) => return Err(held(share, &dir, seq, doc)),
        };
        // Anyone who can write the share can name a lease folder with the largest number there
        // is: no number follows it, and the lease cannot be taken (refused, never wrapped).
        let Some(next) = after.checked_add(1) else {
            return Err(LeaseError::Unreadable(format!(
                "{} is numbered {after}, and no lease can follow it; the share's keeper should \
                 look at it",
                share.shown(&format!("{dir}/{after:06}"))
            )));
        };
        let doc = LeaseDoc {
            kind: LEASE_TYPE.into(),
            project: project.into(),
            version: version.into(),
            holder: holder.clone(),
            host: host.clone(),
            pid: std::process::id(),
            record: record.into(),
            taken: now,
            expires: now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
            token: super::unique(),
        };
        let bytes = crate::digest::canonical_json(&doc)
            .map_err(|e| LeaseError::Unreadable(e.to_string()))?
            .into_bytes();
        match share
            .claim(&format!("{dir}/{next:06}"), LEASE_FILE, &bytes)
            .await?
        {
            Put::Created => return Ok(Lease { seq: next, doc }),
            // Someone took this number first: look again (it is theirs now, or given back).
            Put::Exists => continue,
        }
    }
    Err(LeaseError::Unreadable(format!(
        "{} keeps changing; try again",
        share.shown(&dir)
    )))
}

fn held(share: &Share, dir: &str, seq: u64, doc: LeaseDoc) -> LeaseError {
    let p = crate::report::printable;
    LeaseError::Held {
        project: p(&doc.project),
        version: p(&doc.version),
        holder: p(&doc.holder),
        host: p(&doc.host),
        pid: doc.pid,
        taken: super::rfc3339(doc.taken),
        expires: super::rfc3339(doc.expires),
        at: share.shown(&format!("{dir}/{seq:06}")),
    }
}

/// Give the lease back (a create-only `released.json` beside it); should that fail, it expires.
pub async fn give_back(share: &Share, lease: &Lease) -> Result<(), ShareError> {
    let dir = layout::lease_dir(&lease.doc.project, &lease.doc.version);
    let bytes = serde_json::to_vec(&Released {
        token: lease.doc.token.clone(),
        time: super::now(),
    })
    .unwrap_or_default();
    share
        .put(&format!("{dir}/{:06}/{RELEASED_FILE}", lease.seq), &bytes)
        .await
        .map(|_| ())
}

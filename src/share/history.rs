//! The history a share holds: every run of every release and every dry run that left a report,
//! with its date, subject, decision and first red gate — where an auditor starts, and the trend
//! a release manager watches. A release run counts only when the release signer signed its
//! report; a dry run's report is signed by a throwaway key and is shown as unauthenticated.

use serde::Serialize;

use super::layout::kind_dir;
use super::report::Voucher;
use super::{Share, ShareError, Store};
use crate::trust::TrustRoot;

/// One run, as `relgate history` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    pub project: String,
    pub version: String,
    pub dry_run: bool,
    pub run: u32,
    /// When the run started (RFC 3339 UTC).
    pub date: String,
    pub subject: String,
    pub decision: String,
    /// `gate: code` of the first red gate.
    pub first_red: Option<String>,
    /// Who vouches for the report: the release signer, or nobody (a throwaway key).
    pub signed_by: String,
    pub authenticated: bool,
    /// Where the report is on the share.
    pub report: String,
    /// For a dry run, where its record is on the share.
    pub record: Option<String>,
    #[serde(skip)]
    started_at: i64,
}

/// Every run on the share (of `project` only, when given), oldest first, and a note for every
/// report passed over.
pub async fn read(
    share: &Share,
    project: Option<&str>,
    trust: &TrustRoot,
) -> Result<(Vec<Line>, Vec<String>), ShareError> {
    let projects = match project {
        Some(p) => vec![p.to_string()],
        None => share.list("").await?,
    };
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    for p in &projects {
        for dry_run in [false, true] {
            // A link or file where a folder should be (anyone can write one) is said and passed
            // over: it must not hide the releases beside it.
            let dir = format!("{p}/{}", kind_dir(dry_run));
            let versions = match share.list(&dir).await {
                Ok(v) => v,
                Err(e) if e.about_the_object() => {
                    notes.push(format!(
                        "ignored {}: {}",
                        share.shown(&dir),
                        crate::report::printable(&e.to_string())
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for version in versions {
                let (found, ignored) =
                    match super::request::reports(share, p, &version, dry_run, Some(trust)).await {
                        Ok(x) => x,
                        Err(e) if e.about_the_object() => {
                            notes.push(format!(
                                "ignored {}/{version}: {}",
                                share.shown(&dir),
                                crate::report::printable(&e.to_string())
                            ));
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                notes.extend(ignored);
                for c in found {
                    let r = &c.report;
                    if r.project != *p || r.version != version {
                        notes.push(format!(
                            "ignored {}: it reports {} {}",
                            share.shown(&format!(
                                "{}/{}",
                                super::layout::runs_dir(p, &version, dry_run),
                                c.name
                            )),
                            crate::report::printable(&r.project),
                            crate::report::printable(&r.version)
                        ));
                        continue;
                    }
                    let (signed_by, authenticated) = match &c.voucher {
                        Voucher::Release(who) => (who.clone(), true),
                        Voucher::Throwaway(fp) => (
                            format!("unauthenticated: a dry run's throwaway key {fp}"),
                            false,
                        ),
                    };
                    lines.push(Line {
                        project: p.clone(),
                        version: version.clone(),
                        dry_run,
                        run: r.run,
                        date: super::rfc3339(r.started_at),
                        subject: r.subject.clone(),
                        decision: r.decision.clone(),
                        first_red: r.first_red().map(|g| match g.reasons.first() {
                            Some(reason) => format!("{}: {}", g.id, reason.code),
                            None => g.id.clone(),
                        }),
                        signed_by,
                        authenticated,
                        report: share.shown(&format!(
                            "{}/{}",
                            super::layout::runs_dir(p, &version, dry_run),
                            c.name
                        )),
                        record: dry_run.then(|| {
                            share.shown(&super::layout::record_dir(p, &version, true, &r.record))
                        }),
                        started_at: r.started_at,
                    });
                }
            }
        }
    }
    lines.sort_by(|a, b| {
        (a.started_at, &a.project, &a.version, a.run).cmp(&(
            b.started_at,
            &b.project,
            &b.version,
            b.run,
        ))
    });
    Ok((lines, notes))
}

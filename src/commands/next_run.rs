//! What the next run of a release would do with what the latest run left: which green
//! automated results it would keep, and why; what each signoff gate would count. Reads the
//! project and the record; writes nothing to the record.

use std::future::Future;

use crate::engine::{inputs_digest, reuse};
use crate::gates::signoff::preview;
use crate::log::{GateVerdict, RunStarted};
use crate::model::Pipeline;

/// The small runtime [`block_on`] needs could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the runtime: {0}")]
pub(crate) struct NoRuntime(#[source] std::io::Error);

/// Run `f` to its end on a small runtime of its own (the commands that need git are
/// otherwise synchronous).
pub(crate) fn block_on<F: Future>(f: F) -> Result<F::Output, NoRuntime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(f))
        .map_err(NoRuntime)
}

/// Would the next run keep a green result, and why (or why not)?
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct NextRun {
    pub kept: bool,
    pub reason: String,
}

impl NextRun {
    fn again(reason: impl Into<String>) -> NextRun {
        NextRun {
            kept: false,
            reason: reason.into(),
        }
    }
}

/// Whether the next run would keep the green verdict `v` of `run`, checked the way the run
/// checks it: the same inputs digest over what it observes now.
pub(crate) async fn reuse(p: &Pipeline, run: &RunStarted, v: &GateVerdict) -> NextRun {
    let Some(gate) = p.gate(&v.gate) else {
        return NextRun::again("the gate is no longer in the pipeline");
    };
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let Some(now) = reuse::observe(gate, p, cancel).await else {
        return NextRun::again("results of this kind of gate are never kept");
    };
    if let Some(why) = &now.unsure {
        return NextRun::again(why.clone());
    }
    if run.pipeline.gate(&v.gate) != Some(gate) {
        return NextRun::again("the gate's settings in the pipeline changed");
    }
    let subject = match crate::stage::subject_of(&p.root, &p.artefacts) {
        Ok(s) => s,
        Err(e) => return NextRun::again(format!("the artefacts cannot be read: {e}")),
    };
    if subject != run.subject {
        return NextRun::again(format!("the artefacts changed (subject {subject} now)"));
    }
    let signers = match &p.signers {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) => return NextRun::again(format!("cannot read {}: {e}", path.display())),
        },
        None => None,
    };
    let signers_digest = signers
        .as_deref()
        .map(|t| crate::digest::sha256_hex(t.as_bytes()));
    if signers_digest != run.signers {
        return NextRun::again("the signers file changed");
    }
    let inputs = inputs_digest(
        gate,
        &subject,
        &p.project,
        &run.version,
        signers.as_deref(),
        Some(&now),
    );
    if inputs == v.inputs {
        NextRun {
            kept: true,
            reason: format!("same settings and artefacts; {}", now.summary()),
        }
    } else {
        NextRun::again(
            reuse::difference(v.depends_on.as_ref(), &now)
                .unwrap_or_else(|| "what it ran against changed".into()),
        )
    }
}

/// What the next run would count for the signoff gate `gate_id`: the approvals folder as it
/// is now, under the pipeline as it is now, for the latest run's subject and operator (or the
/// operator this shell names in `RELGATE_OPERATOR`). `None` when the pipeline has no such
/// signoff gate any more.
pub(crate) async fn signoffs(
    p: &Pipeline,
    policy: &str,
    run: &RunStarted,
    entries: &[crate::log::Entry],
    record: &crate::record::Record,
    gate_id: &str,
) -> Option<Result<preview::Preview, String>> {
    let gate = p.gate(gate_id)?;
    let crate::model::GateKind::Signoff(spec) = &gate.kind else {
        return None;
    };
    let folder = match crate::approval::load_folder(&record.approvals_dir()) {
        Ok(f) => f,
        Err(e) => {
            return Some(Err(format!(
                "cannot read {}: {e}",
                record.approvals_dir().display()
            )));
        }
    };
    let signers = match &p.signers {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) => return Some(Err(format!("cannot read {}: {e}", path.display()))),
        },
        None => None,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let subject_since = entries
        .iter()
        .find_map(|e| match &e.record {
            crate::log::Record::RunStarted(r) if r.subject == run.subject => Some(r.started_at),
            _ => None,
        })
        .unwrap_or(now);
    let operator = std::env::var("RELGATE_OPERATOR")
        .ok()
        .filter(|o| !o.trim().is_empty())
        .or_else(|| run.operator.clone());
    let req = preview::PreviewRequest {
        pipeline: p,
        gate,
        spec,
        version: &run.version,
        subject: &run.subject,
        policy,
        operator: operator.as_deref(),
        signers: signers.as_deref(),
        subject_since,
        now,
        prior: entries,
        record: Some(record),
        folder: &folder,
        extra: None,
        known_authors: None,
    };
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    Some(Ok(preview::preview(&req, cancel).await))
}

//! What a run hands a gate, built the one way for the tests that call a gate's `collect` and
//! `judge` through the library (to reach cases the binary cannot stage): a pipeline, the
//! collect context of a run over a staged release, and the judge context the engine (and
//! replay) derive from it. Tests change the fields they are about on the returned values.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use relgate::gates::{CollectContext, JudgeContext};
use relgate::model::{GateSpec, Pipeline};
use relgate::record::Record;
use relgate::stage::Staged;
use tokio::sync::watch;

/// The start of every library-level run, unless a test says otherwise.
pub const STARTED_AT: i64 = 1_790_000_000;

/// A pipeline in `root` with these artefacts and gates, and nothing else.
pub fn pipeline(root: &Path, project: &str, artefacts: &[&str], gates: Vec<GateSpec>) -> Pipeline {
    Pipeline {
        file: root.join("pipeline.yaml"),
        root: root.to_path_buf(),
        project: project.into(),
        state_dir: root.join(".relgate"),
        artefacts: artefacts.iter().map(|a| a.to_string()).collect(),
        signers: None,
        roles: BTreeMap::new(),
        changes: None,
        gates,
        publish: None,
        share: None,
    }
}

/// A real run's collect context: version `version`, started at [`STARTED_AT`], not a dry
/// run, no operator, no earlier lines; and the sender that interrupts it.
pub fn collect_context(
    pipeline: impl Into<Arc<Pipeline>>,
    record: Record,
    staged: impl Into<Arc<Staged>>,
    version: &str,
) -> (CollectContext, watch::Sender<bool>) {
    let (cancel, rx) = watch::channel(false);
    let cx = CollectContext {
        pipeline: pipeline.into(),
        record,
        staged: staged.into(),
        version: version.into(),
        operator: None,
        dry_run: false,
        started_at: STARTED_AT,
        policy: String::new(),
        subject_since: 0,
        prior: Arc::new(Vec::new()),
        cancel: rx,
        rehearsal: false,
    };
    (cx, cancel)
}

/// The judge context the engine derives from `cx`, judging against its record, with the
/// allowed_signers text `signers` in force.
pub fn judge_context<'a>(cx: &'a CollectContext, signers: Option<&'a str>) -> JudgeContext<'a> {
    JudgeContext {
        project: &cx.pipeline.project,
        version: &cx.version,
        subject: &cx.staged.subject,
        operator: cx.operator.as_deref(),
        started_at: cx.started_at,
        dry_run: cx.dry_run,
        signers,
        pipeline: &cx.pipeline,
        policy: &cx.policy,
        subject_since: cx.subject_since,
        blobs: &cx.record,
    }
}

/// Collect on a runtime of its own, as the engine would (errors unwrapped: a test's setup).
pub fn collect(gate: &GateSpec, cx: &CollectContext) -> serde_json::Value {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(relgate::gates::collect(gate, cx))
        .unwrap()
}

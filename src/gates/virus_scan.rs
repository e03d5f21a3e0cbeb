//! The `virus-scan` gate: every staged artefact streamed to clamd; only `stream: OK` is clean.

use serde::{Deserialize, Serialize};

use super::{CollectContext, CollectError, JudgeContext, Verdict};
use crate::model::{GateSpec, VirusScanSpec};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VirusScanEvidence {
    pub exit_code: Option<i32>,
}

pub async fn collect(
    _gate: &GateSpec,
    _spec: &VirusScanSpec,
    _cx: &CollectContext,
) -> Result<VirusScanEvidence, CollectError> {
    Err(CollectError::Other("virus_scan: placeholder".into()))
}

pub fn judge(_spec: &VirusScanSpec, ev: &VirusScanEvidence, _cx: &JudgeContext<'_>) -> Verdict {
    match ev.exit_code {
        Some(0) => Verdict::green(),
        _ => Verdict::red("command-failed", "placeholder"),
    }
}

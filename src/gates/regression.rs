//! The `regression` gate: run a command (under `sh -c` or as argv), capture its output, read
//! its JUnit reports, and judge exit status, timeout, failures and `min_tests`.

use serde::{Deserialize, Serialize};

use super::{CollectContext, CollectError, JudgeContext, Verdict};
use crate::model::{GateSpec, RegressionSpec};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegressionEvidence {
    pub exit_code: Option<i32>,
}

pub async fn collect(
    _gate: &GateSpec,
    _spec: &RegressionSpec,
    _cx: &CollectContext,
) -> Result<RegressionEvidence, CollectError> {
    Err(CollectError::Other("regression: placeholder".into()))
}

pub fn judge(_spec: &RegressionSpec, ev: &RegressionEvidence, _cx: &JudgeContext<'_>) -> Verdict {
    match ev.exit_code {
        Some(0) => Verdict::green(),
        _ => Verdict::red("command-failed", "placeholder"),
    }
}

//! The `sign` gate: SSHSIG over SHA256SUMS (namespace `file`) with an OpenSSH Ed25519 key.

use serde::{Deserialize, Serialize};

use super::{CollectContext, CollectError, JudgeContext, Verdict};
use crate::model::{GateSpec, SignSpec};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignEvidence {
    pub exit_code: Option<i32>,
}

pub async fn collect(
    _gate: &GateSpec,
    _spec: &SignSpec,
    _cx: &CollectContext,
) -> Result<SignEvidence, CollectError> {
    Err(CollectError::Other("sign: placeholder".into()))
}

pub fn judge(_spec: &SignSpec, ev: &SignEvidence, _cx: &JudgeContext<'_>) -> Verdict {
    match ev.exit_code {
        Some(0) => Verdict::green(),
        _ => Verdict::red("command-failed", "placeholder"),
    }
}

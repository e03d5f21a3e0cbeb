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

/// The key path of `spec`, with `${VAR}` expanded from the environment and resolved against
/// the pipeline root.
pub fn key_path(spec: &SignSpec, root: &std::path::Path) -> Result<std::path::PathBuf, String> {
    let mut out = String::new();
    let mut rest = spec.key.as_str();
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated ${{ in key {:?}", spec.key))?;
        let var = &after[..end];
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => out.push_str(&v),
            _ => return Err(format!("environment variable {var} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(root.join(out))
}

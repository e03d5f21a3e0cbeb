//! The record types of the release log. Each line is
//! `{"body":{..},"prev":HEX,"seq":N,"ts":RFC3339,"type":KIND,"v":1}` in canonical JSON.

use serde::{Deserialize, Serialize};

use super::depends::Dependencies;
use crate::config::SourceFile;
use crate::model::Pipeline;
use crate::stage::StagedArtefact;
use crate::verdict::{Outcome, Reason};

/// The key that signs this run's checkpoints (the `sign` gate's key, or a dry run's throwaway).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CheckpointKey {
    /// `ssh-ed25519 AAAA...`
    pub public: String,
    pub fingerprint: String,
    pub throwaway: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunStarted {
    /// 1 for the first run of this record, then 2, 3, ...
    pub run: u32,
    pub tool_version: String,
    pub project: String,
    pub version: String,
    pub dry_run: bool,
    pub operator: Option<String>,
    /// Unix seconds: "now" for every judge of this run.
    pub started_at: i64,
    /// sha256 of the pipeline file's bytes.
    pub pipeline_digest: String,
    /// The pipeline file and every `uses:` file, verbatim.
    pub sources: Vec<SourceFile>,
    /// The validated policy the gates were judged under.
    pub pipeline: Pipeline,
    /// Evidence digest of the allowed_signers text in force, if any.
    pub signers: Option<String>,
    pub subject: String,
    /// Evidence digest of the SHA256SUMS bytes (its sha256 is the subject).
    pub sums: String,
    pub artefacts: Vec<StagedArtefact>,
    /// True when the subject differs from the previous run's: old sign-offs no longer count.
    pub subject_changed: bool,
    pub checkpoint_key: Option<CheckpointKey>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GateStarted {
    pub run: u32,
    pub gate: String,
    /// Digest of what the verdict depends on (gate spec, subject, ...): equal inputs, reusable verdict.
    pub inputs: String,
    /// What an automated gate was observed to run against (folded into `inputs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Dependencies>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GateVerdict {
    pub run: u32,
    pub gate: String,
    pub kind: String,
    pub inputs: String,
    pub outcome: Outcome,
    pub reasons: Vec<Reason>,
    /// Evidence digest; `None` only when collecting failed outright (then the gate is red).
    pub evidence: Option<String>,
    /// When a green verdict of an earlier run was kept: that verdict's line (seq).
    pub reused_from: Option<u64>,
    /// What an automated gate was observed to run against (folded into `inputs`): for a kept
    /// verdict, equal to the original's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Dependencies>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GateBlocked {
    pub run: u32,
    pub gate: String,
    pub waiting_on: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GateSkipped {
    pub run: u32,
    pub gate: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GateAborted {
    pub run: u32,
    pub gate: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Publish {
    pub run: u32,
    pub to: String,
    pub subject: String,
    pub files: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Published {
    pub run: u32,
    pub to: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Published,
    Refused,
    Pending,
    DryRun,
    Aborted,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunFinished {
    pub run: u32,
    pub decision: Decision,
    pub exit_code: i32,
    /// Why the run ended as it did when no gate says so (e.g. a publish that failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How one webhook delivery went. Written once the attempts are over (after the run's
/// decision, before `run-finished`); never part of a verdict.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Notification {
    pub run: u32,
    /// `pending`, `refused` or `published`.
    pub event: String,
    /// Where it went, without credentials or query (`https://host/path`), or the environment
    /// variable that named the URL (`$NAME (https://host/…)`).
    pub target: String,
    /// `json` or `slack`.
    pub format: String,
    pub delivered: bool,
    /// Requests made (1 + retries used).
    pub attempts: u32,
    /// The last HTTP status, if any answer came.
    pub status: Option<u16>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Whether the body carried an HMAC-SHA256 signature header.
    pub signed: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RecoveredTornTail {
    pub bytes: u64,
    pub sha256: String,
    pub saved_as: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", content = "body", rename_all = "kebab-case")]
pub enum Record {
    RunStarted(Box<RunStarted>),
    GateStarted(GateStarted),
    GateVerdict(GateVerdict),
    GateBlocked(GateBlocked),
    GateSkipped(GateSkipped),
    GateAborted(GateAborted),
    Publish(Publish),
    Published(Published),
    RunFinished(RunFinished),
    RecoveredTornTail(RecoveredTornTail),
    Notification(Notification),
}

impl Record {
    pub fn kind(&self) -> &'static str {
        match self {
            Record::RunStarted(_) => "run-started",
            Record::GateStarted(_) => "gate-started",
            Record::GateVerdict(_) => "gate-verdict",
            Record::GateBlocked(_) => "gate-blocked",
            Record::GateSkipped(_) => "gate-skipped",
            Record::GateAborted(_) => "gate-aborted",
            Record::Publish(_) => "publish",
            Record::Published(_) => "published",
            Record::RunFinished(_) => "run-finished",
            Record::RecoveredTornTail(_) => "recovered-torn-tail",
            Record::Notification(_) => "notification",
        }
    }
}

/// Format version of every line.
pub const LINE_VERSION: u64 = 1;

/// Build the canonical bytes of one line (without the newline).
pub fn encode_line(
    seq: u64,
    prev: &str,
    ts: &str,
    record: &Record,
) -> Result<String, serde_json::Error> {
    let tagged = serde_json::to_value(record)?;
    let mut obj = serde_json::Map::new();
    obj.insert("v".into(), LINE_VERSION.into());
    obj.insert("seq".into(), seq.into());
    obj.insert("prev".into(), prev.into());
    obj.insert("ts".into(), ts.into());
    if let serde_json::Value::Object(mut t) = tagged {
        if let Some(kind) = t.remove("type") {
            obj.insert("type".into(), kind);
        }
        if let Some(body) = t.remove("body") {
            obj.insert("body".into(), body);
        }
    }
    crate::digest::canonical_json(&serde_json::Value::Object(obj))
}

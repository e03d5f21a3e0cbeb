//! The SARIF wire format: only what is read, everything optional that tools omit. Unknown
//! fields are ignored (every emitter adds its own); a field of the wrong type is an error.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
pub(super) struct RawLog {
    pub runs: Option<Vec<RawRun>>,
}

#[derive(Deserialize)]
pub(super) struct RawRun {
    pub tool: RawTool,
    /// `None` when absent or `null`: SARIF's way of saying the tool produced no results (it
    /// failed, or did not finish). A clean scan writes `[]`.
    #[serde(default)]
    pub results: Option<Vec<RawResult>>,
    #[serde(default)]
    pub invocations: Vec<RawInvocation>,
}

#[derive(Deserialize)]
pub(super) struct RawTool {
    pub driver: RawComponent,
    #[serde(default)]
    pub extensions: Vec<RawComponent>,
}

#[derive(Deserialize)]
pub(super) struct RawComponent {
    pub name: String,
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawRule {
    pub id: String,
    pub name: Option<String>,
    pub default_configuration: Option<RawConfiguration>,
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
pub(super) struct RawConfiguration {
    pub level: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawInvocation {
    /// Required by the schema; a report that does not say is not taken as a success.
    pub execution_successful: Option<bool>,
    pub exit_code: Option<i64>,
    pub exit_signal_name: Option<String>,
    pub exit_signal_number: Option<i64>,
    #[serde(default)]
    pub tool_execution_notifications: Vec<RawNotification>,
    #[serde(default)]
    pub tool_configuration_notifications: Vec<RawNotification>,
}

#[derive(Deserialize)]
pub(super) struct RawNotification {
    pub level: Option<String>,
    pub message: Option<RawMessage>,
}

#[derive(Deserialize)]
pub(super) struct RawMessage {
    pub text: Option<String>,
    pub id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawRuleReference {
    pub id: Option<String>,
    pub index: Option<i64>,
    pub tool_component: Option<RawComponentReference>,
}

#[derive(Deserialize)]
pub(super) struct RawComponentReference {
    pub name: Option<String>,
    pub index: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawResult {
    pub rule_id: Option<String>,
    pub rule_index: Option<i64>,
    pub rule: Option<RawRuleReference>,
    pub level: Option<String>,
    pub kind: Option<String>,
    pub message: RawMessage,
    #[serde(default)]
    pub locations: Vec<RawLocation>,
    pub guid: Option<String>,
    #[serde(default)]
    pub fingerprints: BTreeMap<String, String>,
    #[serde(default)]
    pub partial_fingerprints: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
    pub baseline_state: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawLocation {
    pub physical_location: Option<RawPhysicalLocation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawPhysicalLocation {
    pub artifact_location: Option<RawArtifactLocation>,
    pub region: Option<RawRegion>,
}

#[derive(Deserialize)]
pub(super) struct RawArtifactLocation {
    pub uri: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawRegion {
    pub start_line: Option<u64>,
}

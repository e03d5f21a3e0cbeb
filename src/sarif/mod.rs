//! A tolerant SARIF 2.1.0 reader: the few fields the security review needs, unknown fields
//! ignored, every result resolved against its rule and flattened into a [`Finding`].
//!
//! Many tools write SARIF (bandit, CodeQL, Semgrep, cargo-audit, osv-scanner, Trivy, Grype), each
//! with its own omissions, so the structs below only insist on what the schema requires and the
//! gate relies on. A file that is not SARIF at all is an error, never an empty result: a scanner
//! that wrote garbage must not look like a scanner that found nothing.

mod strict;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Larger SARIF files are refused before they are read (checked by the collect step).
pub const MAX_SARIF_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SarifError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not SARIF 2.1.0: {0}")]
    NotSarif(String),
    #[error("larger than {limit} bytes ({size} bytes)")]
    TooLarge { size: u64, limit: u64 },
    /// An object repeats a key: which of the two the scanner meant cannot be known.
    #[error("{0}")]
    DuplicateKey(String),
}

impl SarifError {
    /// The reason code a gate gives for this error.
    pub fn code(&self) -> &'static str {
        match self {
            SarifError::DuplicateKey(_) => "sarif-duplicate-key",
            SarifError::NotJson(_) | SarifError::NotSarif(_) | SarifError::TooLarge { .. } => {
                "sarif-unreadable"
            }
        }
    }
}

/// SARIF `level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    None,
    Note,
    Warning,
    Error,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        match s {
            "none" => Some(Level::None),
            "note" => Some(Level::Note),
            "warning" => Some(Level::Warning),
            "error" => Some(Level::Error),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// Where a result points: an artifact URI and, when given, its first line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingLocation {
    pub uri: String,
    pub start_line: Option<u64>,
}

impl std::fmt::Display for FindingLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.start_line {
            Some(line) => write!(f, "{}:{line}", self.uri),
            None => f.write_str(&self.uri),
        }
    }
}

/// One SARIF result, resolved against its rule and run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Index of the run in the file, and of the result in the run (for stable ordering).
    pub run: usize,
    pub index: usize,
    /// `tool.driver.name`.
    pub tool: String,
    /// The result's `ruleId`, else its `rule.id`, else the resolved rule's `id`.
    pub rule_id: Option<String>,
    pub rule_name: Option<String>,
    pub message: String,
    /// The effective level: the result's, else the rule's default, else `warning`.
    pub level: Level,
    pub kind: String,
    pub locations: Vec<FindingLocation>,
    pub guid: Option<String>,
    /// `fingerprints` and `partialFingerprints`, as (name, value).
    pub fingerprints: Vec<(String, String)>,
    pub result_properties: BTreeMap<String, Value>,
    pub rule_properties: BTreeMap<String, Value>,
}

impl Finding {
    /// `B602 at app.py:10` — how a reason names this finding.
    pub fn label(&self) -> String {
        let id = self.rule_id.as_deref().unwrap_or("(no rule id)");
        match self.locations.first() {
            Some(loc) => format!("{id} at {loc}"),
            None => id.to_string(),
        }
    }

    /// Results that report an absence of a problem are not findings.
    fn is_problem(&self) -> bool {
        !matches!(
            self.kind.as_str(),
            "pass" | "notApplicable" | "informational"
        )
    }
}

// ---- the wire format: only what is read, everything optional that tools omit ----

#[derive(Deserialize)]
struct RawLog {
    version: Option<Value>,
    runs: Option<Vec<RawRun>>,
}

#[derive(Deserialize)]
struct RawRun {
    tool: RawTool,
    #[serde(default)]
    results: Option<Vec<RawResult>>,
}

#[derive(Deserialize)]
struct RawTool {
    driver: RawComponent,
    #[serde(default)]
    extensions: Vec<RawComponent>,
}

#[derive(Deserialize)]
struct RawComponent {
    name: String,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    id: String,
    name: Option<String>,
    default_configuration: Option<RawConfiguration>,
    #[serde(default)]
    properties: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct RawConfiguration {
    level: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    text: Option<String>,
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRuleReference {
    id: Option<String>,
    index: Option<i64>,
    tool_component: Option<RawComponentReference>,
}

#[derive(Deserialize)]
struct RawComponentReference {
    name: Option<String>,
    index: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawResult {
    rule_id: Option<String>,
    rule_index: Option<i64>,
    rule: Option<RawRuleReference>,
    level: Option<String>,
    kind: Option<String>,
    message: RawMessage,
    #[serde(default)]
    locations: Vec<RawLocation>,
    guid: Option<String>,
    #[serde(default)]
    fingerprints: BTreeMap<String, String>,
    #[serde(default)]
    partial_fingerprints: BTreeMap<String, String>,
    #[serde(default)]
    properties: BTreeMap<String, Value>,
    baseline_state: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLocation {
    physical_location: Option<RawPhysicalLocation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPhysicalLocation {
    artifact_location: Option<RawArtifactLocation>,
    region: Option<RawRegion>,
}

#[derive(Deserialize)]
struct RawArtifactLocation {
    uri: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRegion {
    start_line: Option<u64>,
}

/// Parse a SARIF 2.1.0 log and return its findings, in run and result order.
///
/// Results whose `kind` says there is no problem (`pass`, `notApplicable`, `informational`)
/// and results with `baselineState: absent` (gone since the baseline) are left out.
pub fn parse(bytes: &[u8]) -> Result<Vec<Finding>, SarifError> {
    if bytes.len() as u64 > MAX_SARIF_BYTES {
        return Err(SarifError::TooLarge {
            size: bytes.len() as u64,
            limit: MAX_SARIF_BYTES,
        });
    }
    // First as a plain value: tells "not JSON" (truncated, too deep) from "JSON but not SARIF",
    // and refuses duplicate keys. serde_json refuses nesting deeper than 128 levels with an
    // error rather than recursing on.
    let value = strict::from_slice(bytes).map_err(|e| match e {
        strict::StrictError::DuplicateKey(m) => SarifError::DuplicateKey(m),
        strict::StrictError::NotJson(m) => SarifError::NotJson(m),
    })?;
    match value.get("version") {
        Some(Value::String(v)) if v == "2.1.0" => {}
        Some(other) => {
            return Err(SarifError::NotSarif(format!(
                "version is {other}, expected \"2.1.0\""
            )));
        }
        None => return Err(SarifError::NotSarif("no \"version\"".into())),
    }
    let log: RawLog =
        serde_json::from_value(value).map_err(|e| SarifError::NotSarif(e.to_string()))?;
    let _ = log.version;
    let runs = log
        .runs
        .ok_or_else(|| SarifError::NotSarif("no \"runs\"".into()))?;
    let mut out = Vec::new();
    for (run_index, run) in runs.iter().enumerate() {
        for (index, result) in run.results.iter().flatten().enumerate() {
            let finding = resolve(run, run_index, index, result)?;
            if finding.is_problem() && result.baseline_state.as_deref() != Some("absent") {
                out.push(finding);
            }
        }
    }
    Ok(out)
}

fn resolve(
    run: &RawRun,
    run_index: usize,
    index: usize,
    r: &RawResult,
) -> Result<Finding, SarifError> {
    let rule = find_rule(&run.tool, r);
    let rule_id = r
        .rule_id
        .clone()
        .or_else(|| r.rule.as_ref().and_then(|x| x.id.clone()))
        .or_else(|| rule.map(|x| x.id.clone()));
    let level_text = r.level.clone().or_else(|| {
        rule.and_then(|x| x.default_configuration.as_ref())
            .and_then(|c| c.level.clone())
    });
    let level = match level_text {
        None => Level::Warning,
        Some(text) => Level::parse(&text).ok_or_else(|| {
            SarifError::NotSarif(format!(
                "run {run_index} result {index}: level {text:?} is not none|note|warning|error"
            ))
        })?,
    };
    let message = r
        .message
        .text
        .clone()
        .or_else(|| r.message.id.as_ref().map(|id| format!("(message {id})")))
        .unwrap_or_default();
    let locations = r
        .locations
        .iter()
        .filter_map(|l| l.physical_location.as_ref())
        .map(|p| FindingLocation {
            uri: p
                .artifact_location
                .as_ref()
                .and_then(|a| a.uri.clone())
                .unwrap_or_default(),
            start_line: p.region.as_ref().and_then(|g| g.start_line),
        })
        .collect();
    let fingerprints = r
        .fingerprints
        .iter()
        .chain(&r.partial_fingerprints)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Finding {
        run: run_index,
        index,
        tool: run.tool.driver.name.clone(),
        rule_id,
        rule_name: rule.and_then(|x| x.name.clone()),
        message,
        level,
        kind: r.kind.clone().unwrap_or_else(|| "fail".into()),
        locations,
        guid: r.guid.clone(),
        fingerprints,
        result_properties: r.properties.clone(),
        rule_properties: rule.map(|x| x.properties.clone()).unwrap_or_default(),
    })
}

/// The rule a result refers to: by index into its tool component (the driver unless
/// `rule.toolComponent` names an extension), else by id in the driver and then the extensions.
fn find_rule<'a>(tool: &'a RawTool, r: &RawResult) -> Option<&'a RawRule> {
    let reference = r.rule.as_ref();
    let component = match reference.and_then(|x| x.tool_component.as_ref()) {
        Some(c) => match (c.index, c.name.as_deref()) {
            (Some(i), _) => usize::try_from(i).ok().and_then(|i| tool.extensions.get(i)),
            (None, Some(name)) => std::iter::once(&tool.driver)
                .chain(&tool.extensions)
                .find(|x| x.name == name),
            (None, None) => Some(&tool.driver),
        },
        None => Some(&tool.driver),
    };
    let index = r.rule_index.or_else(|| reference.and_then(|x| x.index));
    if let (Some(component), Some(i)) = (component, index)
        && let Some(rule) = usize::try_from(i).ok().and_then(|i| component.rules.get(i))
    {
        return Some(rule);
    }
    let id = r
        .rule_id
        .as_deref()
        .or_else(|| reference.and_then(|x| x.id.as_deref()))?;
    component
        .into_iter()
        .chain(std::iter::once(&tool.driver))
        .chain(&tool.extensions)
        .flat_map(|c| &c.rules)
        .find(|rule| rule.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(runs: &str) -> Vec<u8> {
        format!(r#"{{"version":"2.1.0","runs":{runs}}}"#).into_bytes()
    }

    #[test]
    fn bandit_report_reads_with_rule_index_and_default_level() {
        let bytes = include_bytes!("../../fixtures/sarif/bandit.sarif");
        let findings = parse(bytes).unwrap();
        let ids: Vec<_> = findings
            .iter()
            .filter_map(|f| f.rule_id.as_deref())
            .collect();
        assert_eq!(ids, ["B404", "B403", "B105", "B602", "B301", "B324"]);
        assert!(findings.iter().all(|f| f.tool == "Bandit"));
        let b301 = &findings[4];
        assert_eq!(b301.level, Level::Warning, "no level means warning");
        assert_eq!(b301.rule_name.as_deref(), Some("blacklist"));
        assert_eq!(findings[3].label(), "B602 at app.py:10");
    }

    #[test]
    fn rule_index_wins_over_rule_id_and_extensions_are_searched() {
        let bytes = log(
            r#"[{"tool":{"driver":{"name":"t","rules":[{"id":"A","defaultConfiguration":{"level":"note"}},{"id":"B","defaultConfiguration":{"level":"error"}}]},
                 "extensions":[{"name":"ext","rules":[{"id":"X","defaultConfiguration":{"level":"error"},"properties":{"security-severity":"9.1"}}]}]},
               "results":[
                 {"ruleIndex":1,"message":{"text":"by index"}},
                 {"ruleId":"A","message":{"text":"by id"}},
                 {"ruleId":"X","message":{"text":"in an extension"}},
                 {"rule":{"id":"X","index":0,"toolComponent":{"index":0}},"message":{"text":"by reference"}},
                 {"ruleId":"nowhere","message":{"text":"unknown rule"}},
                 {"ruleId":"A","kind":"pass","message":{"text":"not a problem"}}
               ]}]"#,
        );
        let f = parse(&bytes).unwrap();
        assert_eq!(f.len(), 5);
        assert_eq!(
            (f[0].rule_id.as_deref(), f[0].level),
            (Some("B"), Level::Error)
        );
        assert_eq!(
            (f[1].rule_id.as_deref(), f[1].level),
            (Some("A"), Level::Note)
        );
        assert_eq!(f[2].rule_properties["security-severity"], "9.1");
        assert_eq!(f[3].rule_id.as_deref(), Some("X"));
        assert_eq!(f[3].level, Level::Error);
        assert_eq!(f[4].level, Level::Warning);
        assert!(f[4].rule_properties.is_empty());
    }

    #[test]
    fn several_runs_and_fingerprints() {
        let bytes = log(
            r#"[{"tool":{"driver":{"name":"one"}},"results":[{"ruleId":"R1","guid":"g-1","message":{"text":"a"},
                  "fingerprints":{"f/v1":"fp1"},"partialFingerprints":{"primaryLocationLineHash":"pf1"},
                  "locations":[{"physicalLocation":{"artifactLocation":{"uri":"src/a.rs"},"region":{"startLine":7}}}]}]},
                {"tool":{"driver":{"name":"two"}}},
                {"tool":{"driver":{"name":"three"}},"results":[{"ruleId":"R3","message":{"id":"m"}}]}]"#,
        );
        let f = parse(&bytes).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].tool.as_str(), f[1].tool.as_str()), ("one", "three"));
        assert_eq!(f[1].run, 2);
        assert_eq!(f[0].guid.as_deref(), Some("g-1"));
        assert_eq!(
            f[0].fingerprints,
            [
                ("f/v1".into(), "fp1".into()),
                ("primaryLocationLineHash".into(), "pf1".into())
            ]
        );
        assert_eq!(f[0].label(), "R1 at src/a.rs:7");
    }

    #[test]
    fn not_sarif_is_an_error() {
        assert!(matches!(parse(b"hello"), Err(SarifError::NotJson(_))));
        assert!(matches!(parse(b"{}"), Err(SarifError::NotSarif(_))));
        assert!(matches!(
            parse(br#"{"version":"2.0.0","runs":[]}"#),
            Err(SarifError::NotSarif(_))
        ));
        assert!(matches!(
            parse(br#"{"version":"2.1.0"}"#),
            Err(SarifError::NotSarif(_))
        ));
        assert!(matches!(
            parse(br#"{"version":"2.1.0","runs":[{"tool":{}}]}"#),
            Err(SarifError::NotSarif(_))
        ));
        assert!(matches!(
            parse(&log(
                r#"[{"tool":{"driver":{"name":"t"}},"results":[{"ruleId":"A","level":"fatal","message":{"text":""}}]}]"#
            )),
            Err(SarifError::NotSarif(_))
        ));
    }

    #[test]
    fn truncated_file_is_an_error() {
        let bytes = include_bytes!("../../fixtures/sarif/bandit.sarif");
        let cut = &bytes[..bytes.len() / 2];
        assert!(matches!(parse(cut), Err(SarifError::NotJson(_))));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let depth = 100_000;
        let mut text = String::from(
            r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t"}},"properties":{"x":"#,
        );
        text.push_str(&"[".repeat(depth));
        text.push_str(&"]".repeat(depth));
        text.push_str("}}]}");
        match parse(text.as_bytes()) {
            Err(SarifError::NotJson(m)) => assert!(m.contains("recursion limit"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

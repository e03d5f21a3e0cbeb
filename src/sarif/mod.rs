//! A tolerant SARIF 2.1.0 reader: the few fields the security review needs, unknown fields
//! ignored, every result resolved against its rule and flattened into a [`Finding`] — and a
//! strict one about what the file says of its own scan.
//!
//! Many tools write SARIF (bandit, CodeQL, Semgrep, cargo-audit, osv-scanner, Trivy, Grype), each
//! with its own omissions, so the structs below only insist on what the schema requires and the
//! gate relies on. A file that is not SARIF at all is an error, never an empty result: a scanner
//! that wrote garbage must not look like a scanner that found nothing. Likewise a file that says
//! its tool failed, that has no results array, or whose results contradict themselves yields
//! [`Problem`]s, each of which the gate reports as red.

mod rules;
mod strict;
mod wire;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use wire::{RawInvocation, RawLog, RawResult, RawRun};

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
    pub fn code(&self) -> crate::gates::Code {
        match self {
            SarifError::DuplicateKey(_) => crate::gates::Code::SarifDuplicateKey,
            SarifError::NotJson(_) | SarifError::NotSarif(_) | SarifError::TooLarge { .. } => {
                crate::gates::Code::SarifUnreadable
            }
        }
    }
}

/// What kind of [`Problem`] a SARIF file has; each has its own reason code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProblemKind {
    /// The tool says it failed: `executionSuccessful: false`, an error-level tool execution or
    /// configuration notification, or an exit by a signal.
    ScanFailed,
    /// The file does not say the tool ran to completion: no runs, a run whose `results` is
    /// `null` or missing, or an invocation without `executionSuccessful`.
    ScanIncomplete,
    /// A result's rule references disagree or point at nothing, or a rule id is declared twice.
    RuleMismatch,
    /// A result's `kind` is not a SARIF kind, or says "no problem" while its level says there is.
    KindInconsistent,
}

impl ProblemKind {
    pub fn code(self) -> crate::gates::Code {
        match self {
            ProblemKind::ScanFailed => crate::gates::Code::ScanFailed,
            ProblemKind::ScanIncomplete => crate::gates::Code::ScanIncomplete,
            ProblemKind::RuleMismatch => crate::gates::Code::SarifRuleMismatch,
            ProblemKind::KindInconsistent => crate::gates::Code::SarifKindInconsistent,
        }
    }
}

/// Something a SARIF file says that makes its findings untrustworthy or incomplete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The result it concerns, as (run, result) indexes; `None` for the file or a run.
    pub result: Option<(usize, usize)>,
    /// Where in the file and what: `run 0 (semgrep): invocation 0 says executionSuccessful: false`.
    pub message: String,
}

/// A parsed SARIF file: its findings, and the problems that make the gate red whatever the
/// findings are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub problems: Vec<Problem>,
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
    /// The effective level (SARIF's rule): the result's, else — for `kind: fail` — the rule's
    /// default, else `warning` (`none` for the other kinds).
    pub level: Level,
    /// Every level the file states for this result: its own `level` and the default level of
    /// each rule it names. Empty when the effective level is only SARIF's default.
    pub stated_levels: Vec<Level>,
    pub kind: String,
    pub locations: Vec<FindingLocation>,
    pub guid: Option<String>,
    /// `fingerprints` and `partialFingerprints`, as (name, value).
    pub fingerprints: Vec<(String, String)>,
    pub result_properties: BTreeMap<String, Value>,
    pub rule_properties: BTreeMap<String, Value>,
    /// Properties of other rules that contradictory references named (see `sarif-rule-mismatch`).
    pub other_rule_properties: Vec<BTreeMap<String, Value>>,
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
}

/// Parse a SARIF 2.1.0 log and return its findings, in run and result order, with the problems
/// found on the way.
///
/// Results whose `kind` says there is no problem (`pass`, `notApplicable`, `informational`,
/// with no level other than `none`) and results with `baselineState: absent` (gone since the
/// baseline) are not findings.
pub fn parse(bytes: &[u8]) -> Result<Report, SarifError> {
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
    let runs = log
        .runs
        .ok_or_else(|| SarifError::NotSarif("no \"runs\"".into()))?;
    let mut report = Report::default();
    if runs.is_empty() {
        report.problem(
            ProblemKind::ScanIncomplete,
            "\"runs\" is empty: the log records no tool run".into(),
        );
    }
    for (run_index, run) in runs.iter().enumerate() {
        let at = format!("run {run_index} ({})", run.tool.driver.name);
        check_run(&mut report, &at, run);
        for (index, result) in run.results.iter().flatten().enumerate() {
            let resolved = resolve(run, run_index, index, result)?;
            let at = format!("{at} result {index} ({})", resolved.finding.label());
            let problems = [
                (ProblemKind::RuleMismatch, resolved.rule_problem),
                (ProblemKind::KindInconsistent, resolved.kind_problem),
            ];
            for (kind, p) in problems {
                if let Some(p) = p {
                    report.problems.push(Problem {
                        kind,
                        result: Some((run_index, index)),
                        message: format!("{at}: {p}"),
                    });
                }
            }
            if resolved.is_finding && result.baseline_state.as_deref() != Some("absent") {
                report.findings.push(resolved.finding);
            }
        }
    }
    Ok(report)
}

impl Report {
    fn problem(&mut self, kind: ProblemKind, message: String) {
        self.problems.push(Problem {
            kind,
            result: None,
            message,
        });
    }
}

/// What the run says about itself: whether its tool ran to completion.
fn check_run(report: &mut Report, at: &str, run: &RawRun) {
    if run.results.is_none() {
        report.problem(
            ProblemKind::ScanIncomplete,
            format!(
                "{at}: \"results\" is null or missing, which SARIF uses for a tool that produced \
                 no results (it failed or did not finish); a clean scan writes []"
            ),
        );
    }
    for (i, inv) in run.invocations.iter().enumerate() {
        check_invocation(report, &format!("{at}: invocation {i}"), inv);
    }
    for p in rules::duplicate_rule_ids(&run.tool) {
        report.problem(ProblemKind::RuleMismatch, format!("{at}: {p}"));
    }
}

fn check_invocation(report: &mut Report, at: &str, inv: &RawInvocation) {
    let exit = match (inv.exit_code, &inv.exit_signal_name, inv.exit_signal_number) {
        (_, Some(name), _) => format!(" (killed by {name})"),
        (_, None, Some(n)) => format!(" (killed by signal {n})"),
        (Some(code), None, None) => format!(" (exit code {code})"),
        (None, None, None) => String::new(),
    };
    match inv.execution_successful {
        Some(true) => {}
        Some(false) => report.problem(
            ProblemKind::ScanFailed,
            format!("{at} says executionSuccessful: false{exit}"),
        ),
        None => report.problem(
            ProblemKind::ScanIncomplete,
            format!("{at} does not say whether it succeeded (executionSuccessful is required)"),
        ),
    }
    if inv.execution_successful == Some(true)
        && (inv.exit_signal_name.is_some() || inv.exit_signal_number.is_some())
    {
        report.problem(
            ProblemKind::ScanFailed,
            format!("{at} ended by a signal{exit}"),
        );
    }
    let notes = [
        ("tool execution", &inv.tool_execution_notifications),
        ("tool configuration", &inv.tool_configuration_notifications),
    ];
    for (what, list) in notes {
        for n in list.iter().filter(|n| n.level.as_deref() == Some("error")) {
            let text = n
                .message
                .as_ref()
                .and_then(|m| m.text.clone().or_else(|| m.id.clone()))
                .unwrap_or_default();
            report.problem(
                ProblemKind::ScanFailed,
                format!("{at} reports a {what} error: {text:?}"),
            );
        }
    }
}

/// A result resolved: the finding it would be, whether it is one, and what is wrong with it.
struct ResolvedResult {
    finding: Finding,
    is_finding: bool,
    rule_problem: Option<String>,
    kind_problem: Option<String>,
}

/// Result `index` of run `run_index` resolved against its rule: its levels, whether its kind
/// makes it a finding, and the finding it is.
fn resolve(
    run: &RawRun,
    run_index: usize,
    index: usize,
    r: &RawResult,
) -> Result<ResolvedResult, SarifError> {
    let resolved = rules::resolve(&run.tool, r);
    let rule = resolved.rule;
    let rule_id = r
        .rule_id
        .clone()
        .or_else(|| r.rule.as_ref().and_then(|x| x.id.clone()))
        .or_else(|| rule.map(|x| x.id.clone()));
    let levels = levels(r, &resolved, run_index, index)?;
    let kind = r.kind.clone().unwrap_or_else(|| "fail".into());
    let judged = by_kind(&kind, &levels);
    // The levels that count for severity: the result's own, and for a finding the rule
    // defaults too (a result cannot talk its rule's `error` down to `note`).
    let mut stated_levels: Vec<Level> = levels.own.into_iter().collect();
    if judged.is_finding {
        stated_levels.extend(levels.rules);
    }
    Ok(ResolvedResult {
        finding: Finding {
            run: run_index,
            index,
            tool: run.tool.driver.name.clone(),
            rule_id,
            rule_name: rule.and_then(|x| x.name.clone()),
            message: message(r),
            level: judged.level,
            stated_levels,
            kind,
            locations: locations(r),
            guid: r.guid.clone(),
            fingerprints: fingerprints(r),
            result_properties: r.properties.clone(),
            rule_properties: rule.map(|x| x.properties.clone()).unwrap_or_default(),
            other_rule_properties: resolved
                .others
                .iter()
                .map(|x| x.properties.clone())
                .collect(),
        },
        is_finding: judged.is_finding,
        rule_problem: resolved.problem,
        kind_problem: judged.problem,
    })
}

/// The levels a result and the rules it names state.
struct Levels {
    /// The result's own `level`.
    own: Option<Level>,
    /// Each named rule's default level, the resolved rule's first.
    rules: Vec<Level>,
}

/// The levels result `index` of run `run_index` states, and the default levels of the rules
/// it names; a level that is not SARIF's is an error.
fn levels(
    r: &RawResult,
    resolved: &rules::Resolved<'_>,
    run_index: usize,
    index: usize,
) -> Result<Levels, SarifError> {
    let level_of = |text: &str| {
        Level::parse(text).ok_or_else(|| {
            SarifError::NotSarif(format!(
                "run {run_index} result {index}: level {text:?} is not none|note|warning|error"
            ))
        })
    };
    let own = r.level.as_deref().map(level_of).transpose()?;
    let mut rules = Vec::new();
    for x in resolved
        .rule
        .into_iter()
        .chain(resolved.others.iter().copied())
    {
        if let Some(text) = x
            .default_configuration
            .as_ref()
            .and_then(|c| c.level.as_deref())
        {
            rules.push(level_of(text)?);
        }
    }
    Ok(Levels { own, rules })
}

/// What a result's `kind` makes of it.
struct ByKind {
    is_finding: bool,
    /// The effective level.
    level: Level,
    /// Why kind and level do not fit together, or the kind is not SARIF's.
    problem: Option<String>,
}

/// Whether a result of this `kind` is a finding, and at what level. SARIF: for a kind other
/// than `fail` the level defaults to `none`, not to the rule's.
fn by_kind(kind: &str, levels: &Levels) -> ByKind {
    let own = levels.own;
    let (is_finding, level, problem) = match kind {
        "fail" => (
            true,
            own.or(levels.rules.first().copied())
                .unwrap_or(Level::Warning),
            None,
        ),
        // Not decided (`open`) or to be looked at (`review`): a finding until someone has.
        "open" | "review" => (true, own.unwrap_or(Level::None), None),
        "pass" | "notApplicable" | "informational" => match own {
            None | Some(Level::None) => (false, Level::None, None),
            Some(l) => (
                true,
                l,
                Some(format!(
                    "kind {kind:?} says there is no problem, but level {:?} says there is one",
                    l.as_str()
                )),
            ),
        },
        other => (
            true,
            own.unwrap_or(Level::Warning),
            Some(format!(
                "kind {other:?} is not one of fail, pass, open, review, notApplicable, informational"
            )),
        ),
    };
    ByKind {
        is_finding,
        level,
        problem,
    }
}

/// The result's message: its text, else the id of a message it refers to.
fn message(r: &RawResult) -> String {
    r.message
        .text
        .clone()
        .or_else(|| r.message.id.as_ref().map(|id| format!("(message {id})")))
        .unwrap_or_default()
}

/// Where the result points: each physical location's artifact URI and first line.
fn locations(r: &RawResult) -> Vec<FindingLocation> {
    r.locations
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
        .collect()
}

/// `fingerprints`, then `partialFingerprints`, as (name, value).
fn fingerprints(r: &RawResult) -> Vec<(String, String)> {
    r.fingerprints
        .iter()
        .chain(&r.partial_fingerprints)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests;

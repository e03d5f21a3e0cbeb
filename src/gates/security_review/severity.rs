//! A finding's severity and where it came from: `security-severity`, else a CVSS vector, else
//! the SARIF level (SPEC §3).

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sarif::{Finding, Level};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The GitHub bands, used for `security-severity` and CVSS scores alike.
    pub fn from_score(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    fn from_level(level: Level) -> Severity {
        match level {
            Level::Error => Severity::High,
            Level::Warning => Severity::Medium,
            Level::Note | Level::None => Severity::Low,
        }
    }
}

/// A severity with its source: `security-severity`, `cvss-2.0`, `cvss-3.0`, `cvss-3.1`,
/// `cvss-4.0` or `level`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessed {
    pub severity: Severity,
    pub source: String,
    /// The score behind it (none for `level`).
    pub score: Option<f64>,
    /// The CVSS vector scored, when the source is CVSS.
    pub vector: Option<String>,
    /// Properties that looked like a severity but could not be read, and were skipped.
    pub skipped: Vec<String>,
}

impl Assessed {
    /// `critical (cvss-4.0 9.3)`, `medium (level)`.
    pub fn describe(&self) -> String {
        match self.score {
            Some(s) => format!("{} ({} {s:.1})", self.severity.as_str(), self.source),
            None => format!("{} ({})", self.severity.as_str(), self.source),
        }
    }
}

/// Property keys that name a CVSS vector, checked in this order (4.0 before 3.x).
const CVSS_KEYS: &[&str] = &[
    "cvssV4",
    "cvssV40",
    "cvss_v4",
    "cvssV3",
    "cvssV31",
    "cvssV3_1",
    "cvss_v3",
    "cvss",
    "cvss_vector",
    "cvssVector",
];

/// Resolve the severity of `f`. The result's own properties are looked at before the rule's:
/// a result-level value is the more specific statement about this one finding.
pub fn assess(f: &Finding) -> Assessed {
    let mut skipped = Vec::new();
    let bags = [&f.result_properties, &f.rule_properties];
    for bag in bags {
        if let Some(v) = bag.get("security-severity") {
            match number(v) {
                Some(score) if (0.0..=10.0).contains(&score) => {
                    return Assessed {
                        severity: Severity::from_score(score),
                        source: "security-severity".into(),
                        score: Some(score),
                        vector: None,
                        skipped,
                    };
                }
                _ => skipped.push(format!("security-severity {v} is not a score 0-10")),
            }
        }
    }
    for bag in bags {
        let named = CVSS_KEYS.iter().filter_map(|k| bag.get(*k));
        // Any other string property that is plainly a CVSS vector counts too.
        let prefixed = bag
            .iter()
            .filter(|(k, _)| !CVSS_KEYS.contains(&k.as_str()))
            .map(|(_, v)| v)
            .filter(|v| v.as_str().is_some_and(|s| s.starts_with("CVSS:")));
        for v in named.chain(prefixed) {
            let Some(text) = v.as_str() else {
                skipped.push(format!("cvss property {v} is not a string"));
                continue;
            };
            match cvss::Cvss::from_str(text.trim()) {
                Ok(c) => {
                    let score = c.score();
                    return Assessed {
                        severity: Severity::from_score(score),
                        source: cvss_source(&c).into(),
                        score: Some(score),
                        vector: Some(text.trim().to_string()),
                        skipped,
                    };
                }
                Err(e) => skipped.push(format!("cvss vector {text:?}: {e}")),
            }
        }
    }
    Assessed {
        severity: Severity::from_level(f.level),
        source: "level".into(),
        score: None,
        vector: None,
        skipped,
    }
}

fn cvss_source(c: &cvss::Cvss) -> &'static str {
    match c {
        cvss::Cvss::CvssV20(_) => "cvss-2.0",
        cvss::Cvss::CvssV30(_) => "cvss-3.0",
        cvss::Cvss::CvssV31(_) => "cvss-3.1",
        cvss::Cvss::CvssV40(_) => "cvss-4.0",
        _ => "cvss",
    }
}

/// `security-severity` is specified as a string ("7.5"); some tools write a number.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.trim().parse().ok().filter(|x: &f64| x.is_finite()),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn finding(level: Level, result: &[(&str, Value)], rule: &[(&str, Value)]) -> Finding {
        let bag = |kv: &[(&str, Value)]| -> BTreeMap<String, Value> {
            kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
        };
        Finding {
            run: 0,
            index: 0,
            tool: "t".into(),
            rule_id: Some("R".into()),
            rule_name: None,
            message: String::new(),
            level,
            kind: "fail".into(),
            locations: vec![],
            guid: None,
            fingerprints: vec![],
            result_properties: bag(result),
            rule_properties: bag(rule),
        }
    }

    #[test]
    fn security_severity_bands() {
        for (score, want) in [
            ("9.0", Severity::Critical),
            ("8.9", Severity::High),
            ("7.0", Severity::High),
            ("6.9", Severity::Medium),
            ("4.0", Severity::Medium),
            ("3.9", Severity::Low),
            ("0.1", Severity::Low),
        ] {
            let a = assess(&finding(
                Level::Note,
                &[],
                &[("security-severity", Value::from(score))],
            ));
            assert_eq!(
                (a.severity, a.source.as_str()),
                (want, "security-severity"),
                "{score}"
            );
        }
        let numeric = assess(&finding(
            Level::Note,
            &[("security-severity", 9.5.into())],
            &[],
        ));
        assert_eq!(numeric.severity, Severity::Critical);
    }

    #[test]
    fn cvss_4_0_vector_is_critical_9_3() {
        let v = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N";
        let a = assess(&finding(Level::Note, &[("cvssV4", v.into())], &[]));
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.source, "cvss-4.0");
        assert_eq!(a.score, Some(9.3));
        assert_eq!(a.vector.as_deref(), Some(v));
    }

    #[test]
    fn cvss_3_1_vectors_give_their_bands() {
        let high = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"; // 7.5
        let medium = "CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:U/C:L/I:L/A:N"; // 4.6
        let a = assess(&finding(Level::Note, &[], &[("cvss", high.into())]));
        assert_eq!(
            (a.severity, a.source.as_str(), a.score),
            (Severity::High, "cvss-3.1", Some(7.5))
        );
        // Found under any key, as long as the string is a vector.
        let b = assess(&finding(Level::Error, &[("nvd", medium.into())], &[]));
        assert_eq!(
            (b.severity, b.source.as_str()),
            (Severity::Medium, "cvss-3.1")
        );
    }

    #[test]
    fn order_is_security_severity_then_cvss_then_level() {
        let crit = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
        let a = assess(&finding(
            Level::Note,
            &[("cvss", crit.into())],
            &[("security-severity", "5.0".into())],
        ));
        assert_eq!(a.source, "security-severity");
        let b = assess(&finding(
            Level::Note,
            &[("cvss", "CVSS:3.1/garbage".into())],
            &[],
        ));
        assert_eq!((b.severity, b.source.as_str()), (Severity::Low, "level"));
        assert_eq!(b.skipped.len(), 1);
        for (level, want) in [
            (Level::Error, Severity::High),
            (Level::Warning, Severity::Medium),
            (Level::Note, Severity::Low),
            (Level::None, Severity::Low),
        ] {
            assert_eq!(assess(&finding(level, &[], &[])).severity, want);
        }
    }
}

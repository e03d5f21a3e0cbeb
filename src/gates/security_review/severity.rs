//! A finding's severity and where it came from: the highest that any source in the SARIF gives —
//! `security-severity`, a CVSS vector, or a stated SARIF level — so that no source can lower
//! what another says. (SPEC §3 took the first source in that order; the CHANGELOG says why this
//! changed.)

use std::collections::BTreeMap;
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
/// `cvss-4.0`, `cvss-score` or `level`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessed {
    pub severity: Severity,
    pub source: String,
    /// The score behind it (none for `level`).
    pub score: Option<f64>,
    /// The CVSS vector scored, when the source is CVSS.
    pub vector: Option<String>,
    /// Properties that looked like a severity but could not be read. Each makes the gate red
    /// (`severity-unreadable`): skipping one could hide the highest severity.
    pub unreadable: Vec<String>,
}

impl Assessed {
    /// `critical (cvss-4.0 9.3)`, `medium (level)`.
    pub fn describe(&self) -> String {
        match self.score {
            Some(s) => format!("{} ({} {s:.1})", self.severity.as_str(), self.source),
            None => format!("{} ({})", self.severity.as_str(), self.source),
        }
    }

    fn from_level(level: Level) -> Assessed {
        Assessed {
            severity: Severity::from_level(level),
            source: "level".into(),
            score: None,
            vector: None,
            unreadable: Vec::new(),
        }
    }

    fn from_score(source: &str, score: f64, vector: Option<String>) -> Assessed {
        Assessed {
            severity: Severity::from_score(score),
            source: source.into(),
            score: Some(score),
            vector,
            unreadable: Vec::new(),
        }
    }

    /// Ordered by severity, then by score (a level has none); equal ones keep the first.
    fn outranks(&self, other: &Assessed) -> bool {
        let key = |a: &Assessed| (a.severity, a.score.unwrap_or(-1.0));
        let (s, o) = (key(self), key(other));
        s.0 > o.0 || (s.0 == o.0 && s.1 > o.1)
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

/// Resolve the severity of `f`: the highest any source gives. The sources are, for the result
/// and then for its rule (and any other rule a contradictory reference named): the
/// `security-severity` score, every CVSS vector, and every level the file states for it
/// (the result's own and its rule's default). With no source at all, SARIF's default level,
/// `warning`. On a tie the first source in that order names it.
pub fn assess(f: &Finding) -> Assessed {
    let mut unreadable = Vec::new();
    let mut candidates: Vec<Assessed> = Vec::new();
    let bags: Vec<&BTreeMap<String, Value>> = [&f.result_properties, &f.rule_properties]
        .into_iter()
        .chain(&f.other_rule_properties)
        .collect();
    for bag in &bags {
        if let Some(v) = bag.get("security-severity") {
            match number(v) {
                Some(score) if (0.0..=10.0).contains(&score) => {
                    candidates.push(Assessed::from_score("security-severity", score, None));
                }
                _ => unreadable.push(format!("security-severity {v} is not a score 0-10")),
            }
        }
    }
    for bag in &bags {
        let named = CVSS_KEYS.iter().filter_map(|k| bag.get(*k));
        // Any other string property that is plainly a CVSS vector counts too.
        let prefixed = bag
            .iter()
            .filter(|(k, _)| !CVSS_KEYS.contains(&k.as_str()))
            .map(|(_, v)| v)
            .filter(|v| v.as_str().is_some_and(|s| s.starts_with("CVSS:")));
        for v in named.chain(prefixed) {
            let text = match v {
                Value::String(text) => text.trim(),
                // A bare base score under a CVSS key: read as a score (it can only raise).
                Value::Number(_) => {
                    match number(v) {
                        Some(score) if (0.0..=10.0).contains(&score) => {
                            candidates.push(Assessed::from_score("cvss-score", score, None));
                        }
                        _ => unreadable.push(format!("cvss score {v} is not a score 0-10")),
                    }
                    continue;
                }
                _ => {
                    unreadable.push(format!("cvss property {v} is neither a vector nor a score"));
                    continue;
                }
            };
            match cvss::Cvss::from_str(text) {
                Ok(c) => {
                    let score = c.score();
                    candidates.push(Assessed::from_score(
                        cvss_source(&c),
                        score,
                        Some(text.to_string()),
                    ));
                }
                Err(e) => unreadable.push(format!("cvss vector {text:?}: {e}")),
            }
        }
    }
    candidates.extend(f.stated_levels.iter().map(|l| Assessed::from_level(*l)));
    let mut best = candidates
        .into_iter()
        .reduce(|best, next| if next.outranks(&best) { next } else { best })
        .unwrap_or_else(|| Assessed::from_level(Level::Warning));
    best.unreadable = unreadable;
    best
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

    const CRIT_31: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"; // 9.8

    /// A finding with these stated levels and result and rule properties.
    fn finding(levels: &[Level], result: &[(&str, Value)], rule: &[(&str, Value)]) -> Finding {
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
            level: levels.first().copied().unwrap_or(Level::Warning),
            stated_levels: levels.to_vec(),
            kind: "fail".into(),
            locations: vec![],
            guid: None,
            fingerprints: vec![],
            result_properties: bag(result),
            rule_properties: bag(rule),
            other_rule_properties: vec![],
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
                &[Level::Note],
                &[],
                &[("security-severity", Value::from(score))],
            ));
            assert_eq!(
                (a.severity, a.source.as_str()),
                (want, "security-severity"),
                "{score}"
            );
        }
        let numeric = assess(&finding(&[], &[("security-severity", 9.5.into())], &[]));
        assert_eq!(numeric.severity, Severity::Critical);
    }

    #[test]
    fn cvss_4_0_vector_is_critical_9_3() {
        let v = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N";
        let a = assess(&finding(&[Level::Note], &[("cvssV4", v.into())], &[]));
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.source, "cvss-4.0");
        assert_eq!(a.score, Some(9.3));
        assert_eq!(a.vector.as_deref(), Some(v));
    }

    #[test]
    fn cvss_3_1_vectors_give_their_bands() {
        let high = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"; // 7.5
        let medium = "CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:U/C:L/I:L/A:N"; // 4.6
        let a = assess(&finding(&[], &[], &[("cvss", high.into())]));
        assert_eq!(
            (a.severity, a.source.as_str(), a.score),
            (Severity::High, "cvss-3.1", Some(7.5))
        );
        // Found under any key, as long as the string is a vector.
        let b = assess(&finding(&[Level::Note], &[("nvd", medium.into())], &[]));
        assert_eq!(
            (b.severity, b.source.as_str()),
            (Severity::Medium, "cvss-3.1")
        );
        // A bare score under a CVSS key is a score.
        let c = assess(&finding(&[], &[("cvss", 9.1.into())], &[]));
        assert_eq!(
            (c.severity, c.source.as_str()),
            (Severity::Critical, "cvss-score")
        );
    }

    #[test]
    fn the_highest_source_wins_whichever_it_is() {
        // A low security-severity, on the rule or on the result, does not hide a 9.8 vector.
        for (result, rule) in [
            (
                vec![("cvss", Value::from(CRIT_31))],
                vec![("security-severity", Value::from("2.0"))],
            ),
            (
                vec![("security-severity", Value::from("1.0"))],
                vec![("cvss", Value::from(CRIT_31))],
            ),
        ] {
            let a = assess(&finding(&[], &result, &rule));
            assert_eq!(a.describe(), "critical (cvss-3.1 9.8)");
        }
        // A stated level error outranks a medium score; a note does not lower it.
        let a = assess(&finding(
            &[Level::Error],
            &[],
            &[("security-severity", "5.9".into())],
        ));
        assert_eq!(a.describe(), "high (level)");
        let a = assess(&finding(
            &[Level::Note],
            &[],
            &[("security-severity", "5.9".into())],
        ));
        assert_eq!(a.describe(), "medium (security-severity 5.9)");
        // Equal bands: the higher score names it; equal scores keep the first source.
        let a = assess(&finding(
            &[],
            &[("security-severity", "9.1".into())],
            &[("cvss", CRIT_31.into())],
        ));
        assert_eq!(a.describe(), "critical (cvss-3.1 9.8)");
        let a = assess(&finding(
            &[],
            &[("security-severity", "9.8".into())],
            &[("cvss", CRIT_31.into())],
        ));
        assert_eq!(a.describe(), "critical (security-severity 9.8)");
        // A rule that only a contradictory reference named counts as well.
        let mut f = finding(&[], &[], &[("security-severity", "1.0".into())]);
        f.other_rule_properties = vec![BTreeMap::from([(
            "security-severity".to_string(),
            Value::from("9.9"),
        )])];
        assert_eq!(assess(&f).severity, Severity::Critical);
        // Only the levels: SARIF's bands; nothing stated at all is `warning`.
        for (levels, want) in [
            (&[Level::Error][..], Severity::High),
            (&[Level::Warning], Severity::Medium),
            (&[Level::Note], Severity::Low),
            (&[Level::None], Severity::Low),
            (&[Level::Note, Level::Error], Severity::High),
            (&[], Severity::Medium),
        ] {
            assert_eq!(
                assess(&finding(levels, &[], &[])).severity,
                want,
                "{levels:?}"
            );
        }
    }

    #[test]
    fn an_unreadable_severity_is_reported_not_skipped() {
        let a = assess(&finding(
            &[Level::Note],
            &[("cvss", "CVSS:3.1/garbage".into())],
            &[
                ("security-severity", "high".into()),
                ("cvssV3", Value::Null),
            ],
        ));
        assert_eq!((a.severity, a.source.as_str()), (Severity::Low, "level"));
        assert_eq!(a.unreadable.len(), 3, "{:?}", a.unreadable);
        assert!(a.unreadable[0].starts_with("security-severity \"high\" is not a score"));
        let a = assess(&finding(&[], &[("security-severity", "11".into())], &[]));
        assert_eq!(a.unreadable.len(), 1);
    }
}

//! Which register entry covers which finding, with identifiers compared in their namespace.
//!
//! A finding is known by several identifiers, each in its own namespace: its rule id (per
//! tool), its guid, the value of each of its fingerprints (per tool and fingerprint name), and,
//! for a pentest finding, its id. SPEC §2's `finding: X` does not say which one X is, and
//! comparing X with all of them let one namespace borrow another's entry: a result whose
//! partial fingerprint equals an accepted finding's rule id was covered by that entry, and an
//! entry for one tool's rule `R1` covered another tool's `R1`.
//!
//! So an entry is looked for in every namespace it allows (`tool:` and `match:` narrow them),
//! and an entry found in more than one is ambiguous: red, never silently one of them. An entry
//! for one occurrence (a guid or a fingerprint) that matches results of different rules is
//! ambiguous as well. Among the entries that match one finding, the most specific namespace
//! wins (guid, then fingerprint, then rule id); two entries at that level are contested.

use std::collections::{BTreeMap, BTreeSet};

use super::register::{Entry, Namespace, Register};
use crate::sarif::Finding;

/// Where an identifier was found.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Space {
    Rule { tool: String },
    Guid { tool: String },
    Fingerprint { tool: String, name: String },
    Pentest,
}

impl Space {
    /// How specific a match in this namespace is: one occurrence beats a whole rule.
    fn specificity(&self) -> u8 {
        match self {
            Space::Guid { .. } => 3,
            Space::Fingerprint { .. } => 2,
            Space::Rule { .. } => 1,
            Space::Pentest => 0,
        }
    }

    fn tool(&self) -> Option<&str> {
        match self {
            Space::Rule { tool } | Space::Guid { tool } | Space::Fingerprint { tool, .. } => {
                Some(tool)
            }
            Space::Pentest => None,
        }
    }

    fn namespace(&self) -> Namespace {
        match self {
            Space::Rule { .. } => Namespace::Rule,
            Space::Guid { .. } => Namespace::Guid,
            Space::Fingerprint { name, .. } => Namespace::Fingerprint(name.clone()),
            Space::Pentest => Namespace::Pentest,
        }
    }

    /// Whether `entry` may match an identifier found here.
    fn admits(&self, entry: &Entry) -> bool {
        let tool_ok = match (&entry.tool, self.tool()) {
            (None, _) => true,
            (Some(want), Some(tool)) => want == tool,
            (Some(_), None) => false,
        };
        tool_ok
            && entry
                .namespace
                .as_ref()
                .is_none_or(|n| *n == self.namespace())
    }
}

impl std::fmt::Display for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Space::Rule { tool } => write!(f, "a rule id of {tool}"),
            Space::Guid { tool } => write!(f, "a result guid of {tool}"),
            Space::Fingerprint { tool, name } => write!(f, "fingerprint {name} of {tool}"),
            Space::Pentest => f.write_str("a pentest finding id"),
        }
    }
}

/// What covers one finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cover {
    None,
    Entry(usize),
    /// Several entries match at the most specific level: none can be chosen.
    Contested(Vec<usize>),
}

impl Cover {
    pub fn entry(&self) -> Option<usize> {
        match self {
            Cover::Entry(i) => Some(*i),
            Cover::None | Cover::Contested(_) => None,
        }
    }
}

/// The matches between a register and the findings (by position) and pentest finding ids.
#[derive(Clone, Debug, Default)]
pub struct Matches {
    pub findings: Vec<Cover>,
    pub pentest: BTreeMap<String, Cover>,
    /// Entries that are ambiguous, with why.
    pub ambiguous: BTreeMap<usize, String>,
    /// Entries without `match:` that matched only as a guid or a fingerprint, with where:
    /// worth a `match:` so that no other namespace can claim them later.
    pub unqualified: BTreeMap<usize, Space>,
    /// Entries that match anything at all.
    pub used: Vec<bool>,
}

/// One identifier of a finding (`Some(index)`) or of a pentest finding (`None`).
struct Ident<'a> {
    finding: Option<usize>,
    space: Space,
    value: &'a str,
    rule: Option<&'a str>,
}

/// Match every entry of `register` against `findings` and `pentest_ids`.
pub fn match_register(register: &Register, findings: &[&Finding], pentest_ids: &[&str]) -> Matches {
    let idents = identifiers(findings, pentest_ids);
    let mut m = Matches {
        findings: vec![Cover::None; findings.len()],
        used: vec![false; register.entries.len()],
        ..Matches::default()
    };
    let mut hits = Hits {
        on_finding: vec![Vec::new(); findings.len()],
        on_pentest: BTreeMap::new(),
    };
    for (ei, entry) in register.entries.iter().enumerate() {
        let found: Vec<&Ident<'_>> = idents
            .iter()
            .filter(|x| x.value == entry.finding && x.space.admits(entry))
            .collect();
        if found.is_empty() {
            continue;
        }
        m.used[ei] = true;
        m.check_entry(ei, entry, &found);
        hits.add(ei, found);
    }
    hits.cover(&mut m);
    m
}

/// Every identifier of every finding (its rule id, guid and fingerprints, each in its
/// namespace), then every pentest finding id.
fn identifiers<'a>(findings: &[&'a Finding], pentest_ids: &[&'a str]) -> Vec<Ident<'a>> {
    let mut idents: Vec<Ident<'a>> = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        let tool = &f.tool;
        let rule = f.rule_id.as_deref();
        if let Some(id) = rule {
            idents.push(Ident {
                finding: Some(i),
                space: Space::Rule { tool: tool.clone() },
                value: id,
                rule,
            });
        }
        if let Some(guid) = f.guid.as_deref() {
            idents.push(Ident {
                finding: Some(i),
                space: Space::Guid { tool: tool.clone() },
                value: guid,
                rule,
            });
        }
        for (name, value) in &f.fingerprints {
            idents.push(Ident {
                finding: Some(i),
                space: Space::Fingerprint {
                    tool: tool.clone(),
                    name: name.clone(),
                },
                value,
                rule,
            });
        }
    }
    for id in pentest_ids {
        idents.push(Ident {
            finding: None,
            space: Space::Pentest,
            value: id,
            rule: None,
        });
    }
    idents
}

impl Matches {
    /// Entry `ei`, found as `found`, is ambiguous when it matches in more than one namespace,
    /// or names one occurrence (a guid or a fingerprint) but matches results of several rules;
    /// without `match:`, one that matched only as an occurrence is unqualified.
    fn check_entry(&mut self, ei: usize, entry: &Entry, found: &[&Ident<'_>]) {
        let spaces: BTreeSet<&Space> = found.iter().map(|x| &x.space).collect();
        if spaces.len() > 1 {
            let list: Vec<String> = spaces.iter().map(|s| s.to_string()).collect();
            self.ambiguous.insert(
                ei,
                format!(
                    "it matches as {}; add `tool:` or `match:` to say which",
                    list.join(" and as ")
                ),
            );
        } else if let Some(space) = spaces.first()
            && space.specificity() >= 2
        {
            let rules: BTreeSet<&str> = found.iter().filter_map(|x| x.rule).collect();
            if rules.len() > 1 {
                let list: Vec<&str> = rules.into_iter().collect();
                self.ambiguous.insert(
                    ei,
                    format!(
                        "as {space} it names one occurrence, but matches results of the rules {}",
                        list.join(", ")
                    ),
                );
            } else if entry.namespace.is_none() {
                self.unqualified.insert(ei, (*space).clone());
            }
        }
    }
}

/// Per finding (or pentest id), the entries matching it and (for a finding) at which
/// specificity.
struct Hits<'a> {
    on_finding: Vec<Vec<(u8, usize)>>,
    on_pentest: BTreeMap<&'a str, Vec<usize>>,
}

impl<'a> Hits<'a> {
    /// Entry `ei` matches each of `found`.
    fn add(&mut self, ei: usize, found: Vec<&Ident<'a>>) {
        for hit in found {
            match hit.finding {
                Some(fi) => self.on_finding[fi].push((hit.space.specificity(), ei)),
                None => self.on_pentest.entry(hit.value).or_default().push(ei),
            }
        }
    }

    /// What covers each finding (the entries at its most specific level) and each pentest id.
    fn cover(self, m: &mut Matches) {
        for (fi, hits) in self.on_finding.into_iter().enumerate() {
            let Some(top) = hits.iter().map(|(s, _)| *s).max() else {
                continue;
            };
            let best: BTreeSet<usize> = hits
                .iter()
                .filter(|(s, _)| *s == top)
                .map(|(_, e)| *e)
                .collect();
            m.findings[fi] = cover(best);
        }
        for (id, entries) in self.on_pentest {
            m.pentest
                .insert(id.to_string(), cover(entries.into_iter().collect()));
        }
    }
}

fn cover(entries: BTreeSet<usize>) -> Cover {
    let mut it = entries.iter();
    match (it.next(), it.next()) {
        (None, _) => Cover::None,
        (Some(e), None) => Cover::Entry(*e),
        _ => Cover::Contested(entries.into_iter().collect()),
    }
}

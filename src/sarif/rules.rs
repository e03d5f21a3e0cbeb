//! Which rule a result names, and whether its references agree.
//!
//! A result can name its rule four ways: `ruleId`, `ruleIndex`, `rule.id` and `rule.index`
//! (with `rule.toolComponent` saying in which component). SARIF requires them to agree. When
//! they do not, the rule — and with it the severity — depends on which one a reader believes:
//! a `ruleIndex` pointing at a harmless rule would lend a critical finding its low severity. So
//! every reference given is resolved, and any disagreement, or a reference that points at
//! nothing, is a problem the gate reports (`sarif-rule-mismatch`) instead of a guess.

use std::collections::BTreeSet;

use super::wire::{RawComponent, RawComponentReference, RawResult, RawRule, RawTool};

/// A result's rule as resolved.
pub(super) struct Resolved<'a> {
    /// The rule its id names (the register matches ids), else the one its index names.
    pub rule: Option<&'a RawRule>,
    /// Other rules a contradictory reference named: their severities count too, so that a
    /// contradiction can never lower a finding's severity.
    pub others: Vec<&'a RawRule>,
    /// Why the references cannot be placed on one rule.
    pub problem: Option<String>,
}

/// Resolve the rule of result `r` in `tool`: the component its reference names, the rules
/// its indexes and its ids name in it, whether those agree, and the rules they come to.
pub(super) fn resolve<'a>(tool: &'a RawTool, r: &RawResult) -> Resolved<'a> {
    let mut problems: Vec<String> = Vec::new();
    let named = r.rule.as_ref().and_then(|x| x.tool_component.as_ref());
    // First, while `problems` holds only what concerns the component ([`named_component`]).
    let component = match named {
        None => Some(&tool.driver),
        Some(c) => named_component(tool, c, &mut problems),
    };
    let refs = References::of(r, &mut problems);
    let by_index = rules_by_index(component, &refs, &mut problems);
    // Without `rule.toolComponent`, the rule is the driver's; extensions are searched after
    // it because some tools put their rules there without saying so.
    let by_id = match (component, named) {
        (Some(c), Some(_)) => rules_by_id(std::iter::once(c), &refs),
        (Some(c), None) => rules_by_id(std::iter::once(c).chain(&tool.extensions), &refs),
        (None, _) => Vec::new(),
    };
    ids_name_indexed_rules(&by_index, &refs, &mut problems);
    let mut all: Vec<&RawRule> = Vec::new();
    for rule in by_id.into_iter().chain(by_index) {
        if !all.iter().any(|x| std::ptr::eq(*x, rule)) {
            all.push(rule);
        }
    }
    let mut rules = all.into_iter();
    Resolved {
        rule: rules.next(),
        others: rules.collect(),
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

/// The component `rule.toolComponent` names by index (an extension) and by name, when both
/// name the same one; the driver when it gives neither (and nothing is wrong); else `None`,
/// with why in `problems`.
fn named_component<'a>(
    tool: &'a RawTool,
    c: &RawComponentReference,
    problems: &mut Vec<String>,
) -> Option<&'a RawComponent> {
    let by_index = match index(c.index, "rule.toolComponent.index", problems) {
        Some(i) => match tool.extensions.get(i) {
            Some(x) => Some(x),
            None => {
                problems.push(format!(
                    "rule.toolComponent.index {i} names no extension (the tool has {})",
                    tool.extensions.len()
                ));
                None
            }
        },
        None => None,
    };
    let by_name = match c.name.as_deref() {
        Some(name) => {
            let found = components(tool).find(|x| x.name == name);
            if found.is_none() {
                problems.push(format!(
                    "rule.toolComponent.name {name:?} names no tool component"
                ));
            }
            found
        }
        None => None,
    };
    match (by_index, by_name) {
        (Some(a), Some(b)) if !std::ptr::eq(a, b) => {
            problems.push(format!(
                "rule.toolComponent.index names {:?} but its name is {:?}",
                a.name, b.name
            ));
            None
        }
        (Some(a), _) => Some(a),
        (None, Some(b)) => Some(b),
        (None, None) if problems.is_empty() => Some(&tool.driver),
        (None, None) => None,
    }
}

/// The references a result gives to its rule.
struct References<'r> {
    /// `ruleIndex`, `rule.index`.
    index_a: Option<usize>,
    index_b: Option<usize>,
    /// `ruleId`, `rule.id`.
    id_a: Option<&'r str>,
    id_b: Option<&'r str>,
}

impl<'r> References<'r> {
    /// The references of `r`; two indexes or two ids that differ are a problem.
    fn of(r: &'r RawResult, problems: &mut Vec<String>) -> Self {
        let reference = r.rule.as_ref();
        let index_a = index(r.rule_index, "ruleIndex", problems);
        let index_b = index(reference.and_then(|x| x.index), "rule.index", problems);
        if let (Some(a), Some(b)) = (index_a, index_b)
            && a != b
        {
            problems.push(format!("ruleIndex {a} and rule.index {b} differ"));
        }
        let id_a = r.rule_id.as_deref();
        let id_b = reference.and_then(|x| x.id.as_deref());
        if let (Some(a), Some(b)) = (id_a, id_b)
            && a != b
        {
            problems.push(format!("ruleId {a:?} and rule.id {b:?} differ"));
        }
        References {
            index_a,
            index_b,
            id_a,
            id_b,
        }
    }

    /// The ids given, `ruleId` first.
    fn ids(&self) -> impl Iterator<Item = &'r str> {
        self.id_a.into_iter().chain(self.id_b)
    }
}

/// The rules of `component` the indexes name (each once, in order); an index past its rules is
/// a problem.
fn rules_by_index<'a>(
    component: Option<&'a RawComponent>,
    refs: &References<'_>,
    problems: &mut Vec<String>,
) -> Vec<&'a RawRule> {
    let mut by_index: Vec<&RawRule> = Vec::new();
    if let Some(c) = component {
        for i in BTreeSet::from_iter(refs.index_a.into_iter().chain(refs.index_b)) {
            match c.rules.get(i) {
                Some(rule) => by_index.push(rule),
                None => problems.push(format!(
                    "rule index {i} is past the {} rules of {:?}",
                    c.rules.len(),
                    c.name
                )),
            }
        }
    }
    by_index
}

/// The rules the ids name (each id once, in order) in `components` ([`find_by_id`]); an id that
/// names none is not a problem by itself.
fn rules_by_id<'a>(
    components: impl Iterator<Item = &'a RawComponent> + Clone,
    refs: &References<'_>,
) -> Vec<&'a RawRule> {
    BTreeSet::from_iter(refs.ids())
        .into_iter()
        .filter_map(|id| find_by_id(components.clone(), id))
        .collect()
}

/// Every id given must name each rule an index points at.
fn ids_name_indexed_rules(
    by_index: &[&RawRule],
    refs: &References<'_>,
    problems: &mut Vec<String>,
) {
    for rule in by_index {
        for id in refs.ids() {
            if !names(rule, id) {
                problems.push(format!(
                    "ruleId {id:?} does not name the rule its index points at ({:?})",
                    rule.id
                ));
            }
        }
    }
}

/// Rule ids declared twice in one component: a lookup by id could land on either.
pub(super) fn duplicate_rule_ids(tool: &RawTool) -> Vec<String> {
    let mut out = Vec::new();
    for c in components(tool) {
        let mut seen = BTreeSet::new();
        for rule in &c.rules {
            if !seen.insert(rule.id.as_str()) {
                out.push(format!(
                    "rule id {:?} is declared twice in {:?}",
                    rule.id, c.name
                ));
            }
        }
    }
    out
}

fn components(tool: &RawTool) -> impl Iterator<Item = &RawComponent> {
    std::iter::once(&tool.driver).chain(&tool.extensions)
}

/// An index as SARIF writes it: -1 means "not given"; other negative values are an error.
fn index(i: Option<i64>, what: &str, problems: &mut Vec<String>) -> Option<usize> {
    match i {
        None | Some(-1) => None,
        Some(i) => match usize::try_from(i) {
            Ok(i) => Some(i),
            Err(_) => {
                problems.push(format!("{what} {i} is negative"));
                None
            }
        },
    }
}

/// SARIF ids are hierarchical: a result's `ruleId` `CA2101/1` names the rule `CA2101`.
fn names(rule: &RawRule, id: &str) -> bool {
    id == rule.id
        || id
            .strip_prefix(rule.id.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The rule with exactly this id, else one whose id `id` refines (`CA2101/1` → `CA2101`).
fn find_by_id<'a>(
    components: impl Iterator<Item = &'a RawComponent> + Clone,
    id: &str,
) -> Option<&'a RawRule> {
    let rules = components.flat_map(|c| &c.rules);
    rules
        .clone()
        .find(|rule| rule.id == id)
        .or_else(|| rules.clone().find(|rule| names(rule, id)))
}

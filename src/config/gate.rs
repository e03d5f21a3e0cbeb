//! The `gates` mapping: each gate (with its `uses:` file merged in), then the `needs` graph,
//! the single `sign` gate and the topological order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use super::cx::{Cx, Map, join, report_duplicates, report_unknown};
use super::kinds::{self, GateEnv};
use super::suggest;
use super::yaml::{self, Node};
use crate::model::{Bump, GateSpec, Kind, When};

const COMMON_KEYS: &[&str] = &["kind", "needs", "timeout", "when", "uses"];
const DEFAULT_TIMEOUT_SECS: u64 = 3600;

/// Every gate kind's name, in the order messages list them.
fn kind_names() -> Vec<&'static str> {
    Kind::ALL.iter().map(|k| k.name()).collect()
}

/// A gate as read, before the graph checks.
struct Parsed<'a> {
    id: String,
    id_node: &'a Node,
    needs: Vec<(String, &'a Node)>,
    spec: Option<GateSpec>,
    is_sign: bool,
}

/// Validate the `gates` mapping. `key` is the `gates` key node, `node` its value. Every
/// problem is reported before returning: each gate, then `needs`, cycles and the sign gate.
pub(crate) fn validate(
    cx: &mut Cx,
    key: &Node,
    node: &Node,
    env: &GateEnv,
) -> Option<Vec<GateSpec>> {
    // 1. A non-empty mapping.
    let map = gates_map(cx, key, node)?;
    // 2. Each gate once (later ones were reported as duplicate keys), with its `uses:` file
    //    loaded first: the gates borrow nodes from them.
    let firsts = first_entries(&map);
    let used = load_all_uses(cx, &firsts, env);
    // 3. Each gate on its own.
    let parsed: Vec<Parsed> = firsts
        .iter()
        .zip(&used)
        .map(|((k, v), u)| gate(cx, k, v, u.as_ref(), &k.key_text(), env))
        .collect();
    // 4. The graph: every need known and listed once, no cycle.
    let mut graph_ok = check_needs(cx, &parsed);
    // Unknown ids are skipped by the walk, so cycles among the known ones still show.
    graph_ok &= report_cycles(cx, &parsed);
    // 5. Exactly one sign gate, needed by none.
    let signs = check_one_sign(cx, key, &parsed);
    if let [sign] = signs.as_slice() {
        graph_ok &= check_sign_not_needed(cx, &parsed, &sign.id);
    }
    if !graph_ok {
        return None;
    }
    // 6. The specs, the sign gate needing every other, in order.
    ordered_specs(parsed)
}

/// The `gates` value: a mapping holding at least one gate.
fn gates_map<'a>(cx: &mut Cx, key: &Node, node: &'a Node) -> Option<Map<'a>> {
    let map = Map::new(
        cx,
        node,
        key.pos,
        "gates",
        "a mapping of gate id to gate",
        None,
    )?;
    if map.entries.is_empty() {
        cx.expected(
            node,
            "gates",
            "at least one gate (and exactly one `sign` gate)",
        );
        return None;
    }
    Some(map)
}

/// The first entry of each gate id, in the order written (a later one with the same id was
/// reported as a duplicate key when the mapping was read).
fn first_entries<'a>(map: &Map<'a>) -> Vec<(&'a Node, &'a Node)> {
    let mut seen = BTreeSet::new();
    let mut firsts = Vec::new();
    for (k, v) in &map.entries {
        if seen.insert(k.key_text()) {
            firsts.push((*k, *v));
        }
    }
    firsts
}

/// Each gate's `uses:` file, read, parsed and checked ([`load_uses`]); `None` for a gate
/// without one (or whose file has problems, which are reported).
fn load_all_uses(cx: &mut Cx, firsts: &[(&Node, &Node)], env: &GateEnv) -> Vec<Option<Node>> {
    firsts
        .iter()
        .map(|(k, v)| {
            let uses = v
                .as_map()?
                .iter()
                .find(|(uk, _)| uk.as_str() == Some("uses"))?;
            load_uses(cx, &uses.1, &format!("gates.{}", k.key_text()), env)
        })
        .collect()
}

/// Every gate's `needs` names a known gate, each at most once. Returns false when one is
/// unknown (a need listed twice is reported but leaves the graph usable).
fn check_needs(cx: &mut Cx, parsed: &[Parsed]) -> bool {
    let ids: Vec<&str> = parsed.iter().map(|p| p.id.as_str()).collect();
    let mut graph_ok = true;
    for p in parsed {
        for (i, (need, n)) in p.needs.iter().enumerate() {
            let path = format!("gates.{}.needs[{i}]", p.id);
            if !ids.contains(&need.as_str()) {
                graph_ok = false;
                let help = suggest::did_you_mean(need, ids.iter().copied());
                cx.error(n.pos, &path, format!("unknown gate id `{need}`"))
                    .help = help;
            } else if p.needs[..i].iter().any(|(x, _)| x == need) {
                cx.error(n.pos, &path, format!("`{need}` is listed twice"));
            }
        }
    }
    graph_ok
}

/// Exactly one gate of kind `sign`: none is reported at `gates`, each extra one at its id.
/// Returns the sign gates found.
fn check_one_sign<'p, 'a>(
    cx: &mut Cx,
    key: &Node,
    parsed: &'p [Parsed<'a>],
) -> Vec<&'p Parsed<'a>> {
    let signs: Vec<&Parsed> = parsed.iter().filter(|p| p.is_sign).collect();
    if signs.is_empty() {
        cx.error(
            key.pos,
            "gates",
            "no gate of kind `sign`; a pipeline needs exactly one (it signs SHA256SUMS)",
        );
    }
    for extra in signs.iter().skip(1) {
        cx.error(
            extra.id_node.pos,
            &format!("gates.{}", extra.id),
            format!(
                "a second gate of kind `sign` (the first is `{}`); a pipeline needs exactly one",
                signs[0].id
            ),
        );
    }
    signs
}

/// No gate needs the sign gate `sign_id`. Returns false when one does.
///
/// The release signature is issued only for a release every other gate accepted: a
/// `SHA256SUMS.sig` made while a sign-off was awaited (or refused) would let anyone who can
/// read the record publish bytes nobody accepted, signed by the release key. So the sign gate
/// needs every other gate, and no gate may need it.
fn check_sign_not_needed(cx: &mut Cx, parsed: &[Parsed], sign_id: &str) -> bool {
    let mut ok = true;
    for p in parsed {
        for (i, (need, n)) in p.needs.iter().enumerate() {
            if need == sign_id {
                ok = false;
                cx.error(
                    n.pos,
                    &format!("gates.{}.needs[{i}]", p.id),
                    format!(
                        "`{sign_id}` is the sign gate: it signs only once every other gate \
                         is green, so no gate can need it"
                    ),
                );
            }
        }
    }
    ok
}

/// The gates' specs (`None` when any gate had a problem), the sign gate needing every other
/// gate, in topological order.
fn ordered_specs(parsed: Vec<Parsed>) -> Option<Vec<GateSpec>> {
    let all: Vec<String> = parsed.iter().map(|p| p.id.clone()).collect();
    let mut specs: Vec<GateSpec> = parsed
        .into_iter()
        .map(|p| p.spec)
        .collect::<Option<Vec<GateSpec>>>()?;
    for g in &mut specs {
        if matches!(g.kind, crate::model::GateKind::Sign(_)) {
            for id in &all {
                if *id != g.id && !g.needs.contains(id) {
                    g.needs.push(id.clone());
                }
            }
        }
    }
    Some(topo_order(specs))
}

fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn gate<'a>(
    cx: &mut Cx,
    key: &'a Node,
    body: &'a Node,
    used: Option<&'a Node>,
    id: &str,
    env: &GateEnv,
) -> Parsed<'a> {
    let path = format!("gates.{id}");
    let mut out = Parsed {
        id: id.to_string(),
        id_node: key,
        needs: Vec::new(),
        spec: None,
        is_sign: false,
    };
    let id_ok = key.as_str().is_some() && valid_id(id);
    if !id_ok {
        cx.expected(
            key,
            &path,
            "a gate id of lowercase letters, digits and `-`, starting with a letter or digit",
        );
    }
    let Some(own) = body.as_map() else {
        cx.expected(body, &path, "a mapping (the gate, with at least `kind`)");
        return out;
    };
    let own: Vec<(&Node, &Node)> = own.iter().map(|(k, v)| (k, v)).collect();
    report_duplicates(cx, &own, &path);

    // `uses:` first, so that the keys written here override the shared definition.
    let mut entries: Vec<(&Node, &Node)> = Vec::new();
    if let Some(m) = used.and_then(Node::as_map) {
        for (k, v) in m {
            if !own.iter().any(|(o, _)| o.key_text() == k.key_text()) {
                entries.push((k, v));
            }
        }
    }
    entries.extend(own.iter().copied());
    let map = Map {
        entries,
        anchor: key.pos,
        path: path.clone(),
    };

    let kind = map
        .require(cx, "kind", &format!("one of {}", kind_names().join(", ")))
        .and_then(|n| {
            let k = n.as_str().and_then(Kind::parse);
            if k.is_none() {
                let found = n.as_str().unwrap_or_default();
                let help = suggest::did_you_mean(found, kind_names());
                cx.expected(
                    n,
                    &map.sub("kind"),
                    &format!("a gate kind ({})", kind_names().join(", ")),
                )
                .help = help;
            }
            k.map(|k| (k, n))
        });
    out.is_sign = kind.is_some_and(|(k, _)| k == Kind::Sign);

    if let Some((k, _)) = kind {
        let mut allowed: Vec<&str> = COMMON_KEYS.to_vec();
        allowed.extend_from_slice(kinds::keys(k));
        report_unknown(cx, &map.entries, &path, &allowed, |name| {
            Kind::ALL
                .iter()
                .find(|other| kinds::keys(**other).contains(&name))
                .map(|other| {
                    format!(
                        "`{name}` belongs to a `{}` gate, not a `{}` gate",
                        other.name(),
                        k.name()
                    )
                })
        });
    } else {
        // Without a kind only the common keys can be judged; say nothing about the rest.
    }

    if let Some(n) = map.get("needs") {
        match cx.str_list(n, &map.sub("needs"), "gate ids", false) {
            Some(list) => out.needs = list.into_iter().map(|(s, n)| (s.to_string(), n)).collect(),
            None => out.needs.clear(),
        }
    }
    let timeout = match map.get("timeout") {
        Some(n) => cx.duration(n, &map.sub("timeout")),
        None => Some(DEFAULT_TIMEOUT_SECS),
    };
    let when = match map.get("when") {
        Some(n) => when(cx, n, &map),
        None => Some(None),
    };
    let spec = kind.and_then(|(k, kn)| kinds::spec(cx, k, kn, &map, env));

    if let (true, Some(timeout_secs), Some(when), Some(kind)) = (id_ok, timeout, when, spec) {
        out.spec = Some(GateSpec {
            id: id.to_string(),
            needs: out.needs.iter().map(|(s, _)| s.clone()).collect(),
            timeout_secs,
            when,
            kind,
        });
    }
    out
}

fn when(cx: &mut Cx, n: &Node, gate: &Map) -> Option<Option<When>> {
    let anchor = gate.entry("when").map(|(k, _)| k.pos).unwrap_or_default();
    let path = gate.sub("when");
    let m = Map::new(
        cx,
        n,
        anchor,
        &path,
        "a mapping with `bump`",
        Some(&["bump"]),
    )?;
    let b = m.require(cx, "bump", "a list of major, minor, patch")?;
    let list = cx.str_list(b, &m.sub("bump"), "bumps (major, minor, patch)", true)?;
    let mut bumps = Vec::new();
    let mut ok = true;
    for (i, (s, node)) in list.iter().enumerate() {
        let bump = match *s {
            "major" => Bump::Major,
            "minor" => Bump::Minor,
            "patch" => Bump::Patch,
            _ => {
                let help = suggest::did_you_mean(s, ["major", "minor", "patch"]);
                cx.expected(
                    node,
                    &format!("{}[{i}]", m.sub("bump")),
                    "major, minor or patch",
                )
                .help = help;
                ok = false;
                continue;
            }
        };
        if !bumps.contains(&bump) {
            bumps.push(bump);
        }
    }
    ok.then_some(Some(When { bump: bumps }))
}

/// Read, parse and sanity-check a `uses:` file. Its nodes carry its own source id, so every
/// problem inside it points at that file.
fn load_uses(cx: &mut Cx, n: &Node, gate_path: &str, env: &GateEnv) -> Option<Node> {
    let root = env.root;
    let path = join(gate_path, "uses");
    let rel = cx.str(n, &path, "the path of a file holding one gate")?;
    let p = Path::new(rel);
    if p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        cx.error(
            n.pos,
            &path,
            format!("{rel:?} leaves the pipeline folder; shared stages must live inside it"),
        );
        return None;
    }
    let full = root.join(p);
    let rel_norm = p
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    let shown = env.shown_root.join(p);
    let read = match &cx.mode {
        super::cx::Mode::Recorded { files, .. } => {
            files
                .get(&rel_norm)
                .cloned()
                .ok_or_else(|| super::ReadError::Missing {
                    path: shown.clone(),
                })
        }
        _ => {
            // A symlink inside the folder could still point outside it.
            if let (Ok(real), Ok(real_root)) = (full.canonicalize(), root.canonicalize())
                && !real.starts_with(&real_root)
            {
                cx.error(
                    n.pos,
                    &path,
                    format!("{rel:?} leaves the pipeline folder (through a symbolic link)"),
                );
                return None;
            }
            super::read_limited(&full, &shown)
        }
    };
    let text = match read {
        Ok(t) => t,
        Err(e) => {
            cx.error(n.pos, &path, e.to_string());
            return None;
        }
    };
    let src = cx.sources.len();
    cx.sources.push(super::cx::Source {
        display: shown,
        rel: rel_norm,
        text,
    });
    let parsed = yaml::parse(&cx.sources[src].text, src);
    let tree = match parsed {
        Ok(t) => t,
        Err(e) => {
            cx.error(e.pos, "", e.message);
            return None;
        }
    };
    let Some(entries) = tree.as_map() else {
        cx.expected(
            &tree,
            "",
            "a mapping (one gate, as written under `gates.<id>`)",
        );
        return None;
    };
    let entries: Vec<(&Node, &Node)> = entries.iter().map(|(k, v)| (k, v)).collect();
    report_duplicates(cx, &entries, "");
    for (k, _) in &entries {
        if k.as_str() == Some("uses") {
            cx.error(
                k.pos,
                "uses",
                "a `uses:` file cannot itself use another file",
            );
        }
    }
    Some(tree)
}

/// Report each cycle once, naming it. Returns true when there is none.
fn report_cycles(cx: &mut Cx, gates: &[Parsed]) -> bool {
    let index: BTreeMap<&str, usize> = gates
        .iter()
        .enumerate()
        .map(|(i, g)| (g.id.as_str(), i))
        .collect();
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; gates.len()];
    let mut reported: BTreeSet<BTreeSet<usize>> = BTreeSet::new();
    let mut ok = true;
    for start in 0..gates.len() {
        if state[start] != 0 {
            continue;
        }
        // Iterative DFS: (gate, next need to look at); `stack` is the current path.
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (g, ref mut next)) = stack.last_mut() {
            let needs = &gates[g].needs;
            if *next >= needs.len() {
                state[g] = 2;
                stack.pop();
                continue;
            }
            let (need, node) = &needs[*next];
            *next += 1;
            let Some(&t) = index.get(need.as_str()) else {
                continue;
            };
            match state[t] {
                0 => {
                    state[t] = 1;
                    stack.push((t, 0));
                }
                1 => {
                    ok = false;
                    let from = stack.iter().position(|(x, _)| *x == t).unwrap_or(0);
                    let members: Vec<usize> = stack[from..].iter().map(|(x, _)| *x).collect();
                    if reported.insert(members.iter().copied().collect()) {
                        let mut names: Vec<&str> =
                            members.iter().map(|m| gates[*m].id.as_str()).collect();
                        names.push(gates[t].id.as_str());
                        let i = gates[g]
                            .needs
                            .iter()
                            .position(|(x, _)| x == need)
                            .unwrap_or(0);
                        cx.error(
                            node.pos,
                            &format!("gates.{}.needs[{i}]", gates[g].id),
                            format!("`needs` form a cycle: {}", names.join(" -> ")),
                        );
                    }
                }
                _ => {}
            }
        }
    }
    ok
}

/// Kahn's algorithm; among the gates that are ready, the one declared first goes first.
fn topo_order(specs: Vec<GateSpec>) -> Vec<GateSpec> {
    let mut remaining: Vec<Option<GateSpec>> = specs.into_iter().map(Some).collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(remaining.len());
    loop {
        let next = remaining.iter().position(|g| {
            g.as_ref()
                .is_some_and(|g| g.needs.iter().all(|n| done.contains(n)))
        });
        let Some(i) = next else { break };
        if let Some(g) = remaining[i].take() {
            done.insert(g.id.clone());
            out.push(g);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "unit-tests", "0day", "a-", "x9"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", "-a", "Unit", "unit_tests", "a.b", "é"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn topological_order_keeps_declaration_order_among_ready_gates() {
        let g = |id: &str, needs: &[&str]| GateSpec {
            id: id.into(),
            needs: needs.iter().map(|s| s.to_string()).collect(),
            timeout_secs: 1,
            when: None,
            kind: crate::model::GateKind::Sign(crate::model::SignSpec {
                key: String::new(),
                signer: String::new(),
            }),
        };
        let order: Vec<String> = topo_order(vec![
            g("sign", &["b", "a"]),
            g("b", &["a"]),
            g("c", &[]),
            g("a", &[]),
        ])
        .into_iter()
        .map(|s| s.id)
        .collect();
        assert_eq!(order, ["c", "a", "b", "sign"]);
    }
}

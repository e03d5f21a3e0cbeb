//! The keys of a `signoff` gate: its role and quorum, and who may not sign off.

use super::GateEnv;
use crate::config::cx::{Cx, Map, Mode};
use crate::config::suggest;
use crate::config::yaml::{Node, Pos};
use crate::model::SignoffSpec;

/// Check a `signoff` gate's keys: its role, quorum, expiry and who may not sign off.
pub(super) fn signoff(
    cx: &mut Cx,
    kind_node: &Node,
    m: &Map,
    env: &GateEnv,
) -> Option<SignoffSpec> {
    // 1. The role, and its principals when it is defined.
    let (role, members) = role(cx, m, env)?;
    // 2. How many of them must sign off, and for how long a sign-off counts.
    let quorum = quorum(cx, m, role, members);
    let expires = expires(cx, m);
    // 3. Who may not sign off, and whether barring authors can be kept.
    let mut bars = segregation(cx, m);
    check_authors_readable(cx, kind_node, m, env, &mut bars);
    members?;
    bars.ok.then_some(())?;
    Some(SignoffSpec {
        role: role.to_string(),
        quorum: quorum?,
        expires_secs: expires?,
        bar_authors: bars.authors,
        bar_operator: bars.operator,
        bar_signer: bars.signer,
    })
}

/// `role`: a role name, and the role's principals when it is defined under `roles`. An
/// unknown role is reported (unless `roles` itself had problems) and has no principals.
fn role<'a, 'e>(
    cx: &mut Cx,
    m: &Map<'a>,
    env: &GateEnv<'e>,
) -> Option<(&'a str, Option<&'e Vec<String>>)> {
    let role_node = m.require(cx, "role", "the role whose principals sign off")?;
    let role = cx.str(role_node, &m.sub("role"), "a role name")?;
    let members = env.roles.get(role);
    if members.is_none() && env.roles_ok {
        let help = suggest::did_you_mean(role, env.roles.keys().map(String::as_str));
        let known = if env.roles.is_empty() {
            "no roles are defined under `roles`".to_string()
        } else {
            format!(
                "defined roles: {}",
                env.roles.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        cx.error(
            role_node.pos,
            &m.sub("role"),
            format!("unknown role `{role}` ({known})"),
        )
        .help = help;
    }
    Some((role, members))
}

/// `quorum`: a whole number of at least 1 (default 1) that the role's principals can meet.
fn quorum(cx: &mut Cx, m: &Map, role: &str, members: Option<&Vec<String>>) -> Option<u32> {
    let Some(n) = m.get("quorum") else {
        return Some(1);
    };
    let path = m.sub("quorum");
    match cx.uint(n, &path, "a whole number of at least 1") {
        Some(0) => {
            cx.expected(n, &path, "a whole number of at least 1");
            None
        }
        Some(q) => match members {
            Some(list) if q > list.len() as u64 => {
                cx.error(
                    n.pos,
                    &path,
                    format!(
                        "quorum {q} can never be met: role `{role}` has {} principal(s)",
                        list.len()
                    ),
                );
                None
            }
            _ => u32::try_from(q).ok(),
        },
        None => None,
    }
}

/// `expires`: how long a sign-off counts, if it expires at all.
fn expires(cx: &mut Cx, m: &Map) -> Option<Option<u64>> {
    match m.get("expires") {
        Some(n) => cx.duration(n, &m.sub("expires")).map(Some),
        None => Some(None),
    }
}

/// Who may not sign off, as `segregation` says.
struct Bars {
    authors: bool,
    operator: bool,
    signer: bool,
    /// False once a problem was reported.
    ok: bool,
    /// Where `authors` came from, for a problem about it: the list item, or (`None`) the
    /// default.
    authors_at: Option<(Pos, String)>,
}

/// `segregation`: all three are barred unless it lists fewer (`[]`: nobody barred).
fn segregation(cx: &mut Cx, m: &Map) -> Bars {
    let mut bars = Bars {
        authors: true,
        operator: true,
        signer: true,
        ok: true,
        authors_at: None,
    };
    let Some(n) = m.get("segregation") else {
        return bars;
    };
    let path = m.sub("segregation");
    let Some(list) = cx.str_list(
        n,
        &path,
        "who may not sign off (authors, operator, signer)",
        false,
    ) else {
        bars.ok = false;
        return bars;
    };
    (bars.authors, bars.operator, bars.signer) = (false, false, false);
    for (i, (s, node)) in list.iter().enumerate() {
        match *s {
            "authors" => {
                bars.authors = true;
                bars.authors_at = Some((node.pos, format!("{path}[{i}]")));
            }
            "operator" => bars.operator = true,
            "signer" => bars.signer = true,
            _ => {
                let help = suggest::did_you_mean(s, ["authors", "operator", "signer"]);
                cx.expected(node, &format!("{path}[{i}]"), "authors, operator or signer")
                    .help = help;
                bars.ok = false;
            }
        }
    }
    bars
}

/// Barring authors needs somewhere to read them from: without `changes` the bar would be a
/// promise nothing keeps (the author's own sign-off would count). Checked for a pipeline
/// that is to run (check, plan, run, status), not when a policy is only read for its keys
/// (approve, a trust root) or a recorded one is derived again: records and checkouts from
/// before this rule still verify.
fn check_authors_readable(cx: &mut Cx, kind_node: &Node, m: &Map, env: &GateEnv, bars: &mut Bars) {
    if !(bars.ok && bars.authors && !env.has_changes && matches!(cx.mode, Mode::Disk)) {
        return;
    }
    let fix = "add `changes:` (the repo and range this release ships)";
    match &bars.authors_at {
        Some((pos, path)) => {
            cx.error(
                *pos,
                path,
                "`authors` needs the top-level `changes` to read the commit authors from",
            )
            .help = Some(format!("{fix}, or remove `authors` from `segregation`"));
        }
        None => {
            cx.error(
                kind_node.pos,
                &m.sub("segregation"),
                "bars commit authors (the default), but the pipeline has no `changes` to \
                 read them from, so an author's sign-off would count",
            )
            .help = Some(format!(
                "{fix}, or write `segregation: [operator, signer]` to drop `authors`"
            ));
        }
    }
    bars.ok = false;
}

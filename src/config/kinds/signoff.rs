//! The keys of a `signoff` gate: its role and quorum, and who may not sign off.

use super::GateEnv;
use crate::config::cx::{Cx, Map, Mode};
use crate::config::suggest;
use crate::config::yaml::{Node, Pos};
use crate::model::SignoffSpec;

#[expect(
    clippy::too_many_lines,
    reason = "a sequence of steps not yet split into functions (issue 15)"
)]
pub(super) fn signoff(
    cx: &mut Cx,
    kind_node: &Node,
    m: &Map,
    env: &GateEnv,
) -> Option<SignoffSpec> {
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
    let quorum = match m.get("quorum") {
        Some(n) => {
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
        None => Some(1),
    };
    let expires = match m.get("expires") {
        Some(n) => cx.duration(n, &m.sub("expires")).map(Some),
        None => Some(None),
    };
    // Who may not sign off: all three unless `segregation` lists fewer (`[]`: nobody barred).
    let (mut authors, mut operator, mut signer) = (true, true, true);
    let mut segregation_ok = true;
    // Where `authors` came from, for the problem below: the list item, or the default.
    let mut authors_at: Option<(Pos, String)> = None;
    if let Some(n) = m.get("segregation") {
        let path = m.sub("segregation");
        match cx.str_list(
            n,
            &path,
            "who may not sign off (authors, operator, signer)",
            false,
        ) {
            Some(list) => {
                (authors, operator, signer) = (false, false, false);
                for (i, (s, node)) in list.iter().enumerate() {
                    match *s {
                        "authors" => {
                            authors = true;
                            authors_at = Some((node.pos, format!("{path}[{i}]")));
                        }
                        "operator" => operator = true,
                        "signer" => signer = true,
                        _ => {
                            let help = suggest::did_you_mean(s, ["authors", "operator", "signer"]);
                            cx.expected(
                                node,
                                &format!("{path}[{i}]"),
                                "authors, operator or signer",
                            )
                            .help = help;
                            segregation_ok = false;
                        }
                    }
                }
            }
            None => segregation_ok = false,
        }
    }
    // Barring authors needs somewhere to read them from: without `changes` the bar would be a
    // promise nothing keeps (the author's own sign-off would count). Checked for a pipeline
    // that is to run (check, plan, run, status), not when a policy is only read for its keys
    // (approve, a trust root) or a recorded one is derived again: records and checkouts from
    // before this rule still verify.
    if segregation_ok && authors && !env.has_changes && matches!(cx.mode, Mode::Disk) {
        let fix = "add `changes:` (the repo and range this release ships)";
        match authors_at {
            Some((pos, path)) => {
                cx.error(
                    pos,
                    &path,
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
        segregation_ok = false;
    }
    members?;
    segregation_ok.then_some(())?;
    Some(SignoffSpec {
        role: role.to_string(),
        quorum: quorum?,
        expires_secs: expires?,
        bar_authors: authors,
        bar_operator: operator,
        bar_signer: signer,
    })
}

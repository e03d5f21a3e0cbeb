//! `from_share:` of a regression gate: the CI jobs whose uploaded JUnit reports stand for the
//! command, and whose keys may vouch for them. The other form, `run:`, is the regression gate
//! of [`super::regression`]; a gate has one or the other.

use super::GateEnv;
use crate::config::cx::{Cx, Map};
use crate::config::suggest;
use crate::model::FromShareSpec;

/// The keys of the `run:` form, which `from_share:` replaces.
const RUN_KEYS: &[&str] = &["run", "dir", "env", "junit", "inputs"];

pub(super) fn from_share(cx: &mut Cx, m: &Map, env: &GateEnv) -> Option<FromShareSpec> {
    let (key, node) = m.entry("from_share")?;
    let mut ok = true;
    for k in RUN_KEYS {
        if let Some((at, _)) = m.entry(k) {
            cx.error(
                at.pos,
                &m.sub(k),
                format!(
                    "`{k}` and `from_share` are mutually exclusive: a regression gate runs its \
                     command on this machine, or takes the reports CI jobs uploaded to the share"
                ),
            );
            ok = false;
        }
    }
    let path = m.sub("from_share");
    if !env.has_share {
        cx.error(
            key.pos,
            &path,
            "`from_share` needs the top-level `share` (where CI jobs upload their reports)",
        );
        ok = false;
    }
    let map = Map::new(
        cx,
        node,
        key.pos,
        &path,
        "a mapping with `jobs` and `signed_by`",
        Some(&["jobs", "signed_by"]),
    )?;
    let jobs = map
        .require(cx, "jobs", "the CI jobs that must have uploaded reports")
        .and_then(|n| jobs(cx, n, &map.sub("jobs")));
    let signed_by = map
        .require(
            cx,
            "signed_by",
            "a role, or a list of principals, whose CI keys vouch for the reports",
        )
        .and_then(|n| signed_by(cx, n, &map.sub("signed_by"), env));
    let min_tests = match m.get("min_tests") {
        Some(n) => cx
            .uint(n, &m.sub("min_tests"), "a non-negative whole number")
            .map(Some),
        None => Some(None),
    };
    let (signed_by_as_written, signed_by) = signed_by?;
    ok.then_some(FromShareSpec {
        jobs: jobs?,
        signed_by_as_written,
        signed_by,
        min_tests: min_tests?,
    })
}

fn jobs(cx: &mut Cx, n: &crate::config::yaml::Node, path: &str) -> Option<Vec<String>> {
    let list = cx.str_list(n, path, "CI job names", true)?;
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for (i, (s, node)) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if !crate::share::ci::is_job_name(s) {
            cx.expected(
                node,
                &at,
                "a job name of letters, digits, `.`, `_`, `-`, `+` and `@`",
            );
            ok = false;
        } else if out.iter().any(|j| j == s) {
            cx.error(node.pos, &at, format!("`{s}` is listed twice"));
            ok = false;
        } else {
            out.push(s.to_string());
        }
    }
    ok.then_some(out)
}

/// A role (resolved to its principals) or a list of principals in `signers`.
fn signed_by(
    cx: &mut Cx,
    n: &crate::config::yaml::Node,
    path: &str,
    env: &GateEnv,
) -> Option<(Vec<String>, Vec<String>)> {
    if let Some(role) = n.as_str().filter(|s| !s.trim().is_empty()) {
        return match env.roles.get(role) {
            Some(members) => Some((vec![role.to_string()], members.clone())),
            None => {
                if env.roles_ok {
                    let help = suggest::did_you_mean(role, env.roles.keys().map(String::as_str));
                    cx.error(
                        n.pos,
                        path,
                        format!(
                            "unknown role `{role}` (write a role from `roles`, or a list of \
                             principals from `signers`)"
                        ),
                    )
                    .help = help;
                }
                None
            }
        };
    }
    let list = cx.str_list(n, path, "principals (or a role name as a string)", true)?;
    let mut ok = true;
    for (i, (p, node)) in list.iter().enumerate() {
        if let Some(known) = env.principals
            && !known.contains(*p)
        {
            cx.error(
                node.pos,
                &format!("{path}[{i}]"),
                format!("principal `{p}` is not in the signers file"),
            );
            ok = false;
        }
    }
    let principals: Vec<String> = list.iter().map(|(p, _)| p.to_string()).collect();
    ok.then(|| (principals.clone(), principals))
}

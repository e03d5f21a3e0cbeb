//! The text of `relgate plan`: each gate in run order, what it needs and what it checks.

use std::fmt::Write;
use std::path::Path;

use super::units::{format_duration, format_size};
use crate::model::{Bump, ClamdAddr, Command, GateKind, GateSpec, Pipeline};

/// Gates in topological order with their needs, kinds and a line on what each checks.
pub fn plan_text(p: &Pipeline) -> String {
    plan_text_with(p, &std::collections::BTreeMap::new())
}

/// [`plan_text`] with a `reuse:` line for each gate named in `reuse` (what keeps its green
/// result on the next run, worked out by the engine).
pub fn plan_text_with(p: &Pipeline, reuse: &std::collections::BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pipeline {} ({}): {} gate(s), artefacts {}",
        p.project,
        p.file.display(),
        p.gates.len(),
        p.artefacts.join(", ")
    );
    for (i, g) in p.gates.iter().enumerate() {
        let needs = if g.needs.is_empty() {
            "nothing".to_string()
        } else {
            g.needs.join(", ")
        };
        let _ = writeln!(out, "{}. {} ({})", i + 1, g.id, g.kind.name());
        let _ = writeln!(out, "   needs: {needs}");
        let _ = writeln!(out, "   checks: {}", describe(p, g));
        let _ = writeln!(out, "   timeout: {}", format_duration(g.timeout_secs));
        if let Some(r) = reuse.get(&g.id) {
            let _ = writeln!(out, "   reuse: {r}");
        }
        if let Some(w) = &g.when {
            let bumps: Vec<&str> = w
                .bump
                .iter()
                .map(|b| match b {
                    Bump::Major => "major",
                    Bump::Minor => "minor",
                    Bump::Patch => "patch",
                })
                .collect();
            let _ = writeln!(out, "   applies to: {} releases only", bumps.join(", "));
        }
    }
    if let Some(publish) = &p.publish {
        let _ = writeln!(out, "then publish to {}", publish.to);
    }
    out
}

fn rel(p: &Pipeline, path: &Path) -> String {
    match path.strip_prefix(&p.root) {
        Ok(r) if r.as_os_str().is_empty() => ".".to_string(),
        Ok(r) => r.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "one arm per gate kind: the compiler-checked registry match (ARCHITECTURE.md, the gate-kind recipe)"
)]
fn describe(p: &Pipeline, g: &GateSpec) -> String {
    match &g.kind {
        GateKind::Regression(r) => {
            let cmd = match &r.run {
                Command::Shell(s) => {
                    // A multi-line script reads as one line in the plan.
                    let one_line: Vec<&str> =
                        s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                    format!("`{}` (sh -c)", one_line.join("; "))
                }
                Command::Argv(a) => format!("`{}` (argv, no shell)", a.join(" ")),
            };
            let mut s = format!("{cmd} in {} exits 0", rel(p, &r.dir));
            if !r.env.is_empty() {
                let keys: Vec<&str> = r.env.keys().map(String::as_str).collect();
                let _ = write!(s, " with {} set", keys.join(", "));
            }
            if !r.junit.is_empty() {
                let _ = write!(s, "; JUnit reports {} show no failure", r.junit.join(", "));
            }
            if let Some(n) = r.min_tests {
                let _ = write!(s, "; at least {n} tests ran");
            }
            s
        }
        GateKind::RegressionFromShare(r) => {
            let (repo, rev) = crate::gates::regression::from_share::commit_source(p);
            let mut s = format!(
                "JUnit reports uploaded to the share by CI jobs {} for the release commit ({rev} \
                 in {}), signed by {}, show no failure",
                r.jobs.join(", "),
                rel(p, &repo),
                r.signed_by_as_written.join(", ")
            );
            if let Some(n) = r.min_tests {
                let _ = write!(s, "; at least {n} tests ran");
            }
            s
        }
        GateKind::ChangeRecord(c) => {
            let range = p
                .changes
                .as_ref()
                .map(|c| format!("{} in {}", c.range, rel(p, &c.repo)))
                .unwrap_or_default();
            let mut needs = Vec::new();
            if c.require_reviewer {
                needs.push("a Reviewed-by other than its authors and co-authors".to_string());
            }
            if c.require_tests {
                let paths = if c.test_paths.is_empty() {
                    String::new()
                } else {
                    format!(" or touches {}", c.test_paths.join(", "))
                };
                needs.push(format!("a Tested-by/Test trailer{paths}"));
            }
            let needs = if needs.is_empty() {
                "is recorded".to_string()
            } else {
                format!("has {}", needs.join(" and "))
            };
            format!(
                "every change (commit, or merge with a change of its own) in {range} {needs}; the releaser wrote and committed none"
            )
        }
        GateKind::Signoff(s) => {
            let mut t = format!(
                "{} distinct principal(s) of role `{}` approve the release subject",
                s.quorum, s.role
            );
            if let Some(e) = s.expires_secs {
                let _ = write!(
                    t,
                    " (sign-offs older than {} do not count)",
                    format_duration(e)
                );
            }
            let barred: Vec<&str> = [
                (s.bar_authors, "commit authors"),
                (s.bar_operator, "the operator"),
                (s.bar_signer, "the release signer"),
            ]
            .into_iter()
            .filter_map(|(on, who)| on.then_some(who))
            .collect();
            if barred.is_empty() {
                t.push_str("; anyone in the role may sign");
            } else {
                let _ = write!(t, "; not counted: {}", barred.join(", "));
            }
            t
        }
        GateKind::SecurityReview(s) => {
            let sla: Vec<String> = s
                .sla_secs
                .iter()
                .map(|(k, v)| format!("{k} {}", format_duration(*v)))
                .collect();
            let mut t = format!(
                "every finding in {} has an owned, planned, timely entry in {} (SLA {}); open {} findings block",
                s.findings.join(", "),
                rel(p, &s.register),
                sla.join(", "),
                if s.block.is_empty() {
                    "no".to_string()
                } else {
                    s.block.join("/")
                },
            );
            if let Some(pt) = &s.pentest {
                let _ = write!(
                    t,
                    "; newest pentest in {} is under {} old",
                    rel(p, &pt.records),
                    format_duration(pt.max_age_secs)
                );
            }
            t
        }
        GateKind::VirusScan(v) => {
            let at = match &v.clamd {
                ClamdAddr::Tcp(hp) => format!("clamd at tcp://{hp}"),
                ClamdAddr::Unix(s) => format!("clamd at unix:{}", s.display()),
                ClamdAddr::Private { database } => {
                    format!("a private clamd on the database {}", rel(p, database))
                }
            };
            let mut t = format!(
                "{at} answers OK for every staged artefact (up to {}, {} at a time)",
                format_size(v.max_size),
                v.concurrency
            );
            if let Some(a) = v.max_signature_age_secs {
                let _ = write!(t, "; signatures newer than {}", format_duration(a));
            }
            t
        }
        GateKind::Sign(s) => format!(
            "SHA256SUMS is signed with {} and verifies for `{}` under {}",
            s.key,
            s.signer,
            p.signers
                .as_ref()
                .map(|f| rel(p, f))
                .unwrap_or_else(|| "signers".into())
        ),
    }
}

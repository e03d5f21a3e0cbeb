//! Reuse that cannot lie: what an automated gate's result depended on besides its spec, the
//! artefacts and the signers — the source tree, the files it declares, the environment it
//! inherits, the virus signatures — observed just before it runs.
//!
//! The observation ([`Dependencies`]) is recorded on the gate's `gate-started` and
//! `gate-verdict` lines and folded into their `inputs` digest, so a later run keeps a green
//! result only when it observes exactly the same, and replay can see that a kept verdict had
//! equal inputs. When relgate cannot tell what a gate depended on (a regression gate outside
//! git without `inputs:`, git that cannot answer, a file it cannot read), the observation says
//! why in `unsure`, and the gate runs again every time.

mod digests;

use std::path::Path;

use crate::git::worktree::{self, Probe};
use crate::model::{ClamdAddr, GateKind, GateSpec, Pipeline, RegressionSpec, VirusScanSpec};
use digests::{environment_digest, files_state, folder_digest, git_state};

pub use crate::log::depends::{Dependencies, FilesState, GitState};
pub use digests::KEY_FILE;

/// Why a result observed with `before` does not fit `now`, in words; `None` when they are
/// equal. `before` is `None` for a result recorded before relgate observed anything.
pub fn difference(before: Option<&Dependencies>, now: &Dependencies) -> Option<String> {
    if let Some(why) = &now.unsure {
        return Some(why.clone());
    }
    let Some(before) = before else {
        return Some(
            "the earlier result was recorded without the state it ran against (an older relgate)"
                .into(),
        );
    };
    if before == now {
        return None;
    }
    let short = |h: &Option<String>| {
        h.as_deref()
            .map(|h| h[..h.len().min(12)].to_string())
            .unwrap_or_else(|| "no commit".into())
    };
    Some(match (&before.git, &now.git) {
        (Some(b), Some(n)) if b.head != n.head => {
            format!("HEAD moved from {} to {}", short(&b.head), short(&n.head))
        }
        (Some(b), Some(n)) if b.changes != n.changes => format!(
            "the work tree changed ({} changed path(s) then, {} now)",
            b.changed, n.changed
        ),
        (Some(_), None) | (None, Some(_)) => "the gate's folder moved into or out of git".into(),
        _ if before.files != now.files => "files matched by `inputs:` changed".into(),
        _ if before.signatures != now.signatures => format!(
            "the virus signatures changed ({} then, {} now)",
            before.signatures.as_deref().unwrap_or("unknown"),
            now.signatures.as_deref().unwrap_or("unknown")
        ),
        _ if before.environment != now.environment => "the environment changed".into(),
        _ => "what the gate ran against changed".into(),
    })
}

/// Observe what `gate` depends on now; `None` for kinds whose results are never kept.
pub async fn observe(
    gate: &GateSpec,
    p: &Pipeline,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Option<Dependencies> {
    match &gate.kind {
        GateKind::Regression(spec) => Some(regression(spec, p, cancel).await),
        GateKind::VirusScan(spec) => Some(virus_scan(spec).await),
        _ => None,
    }
}

/// What `plan` says about keeping `gate`'s green result: the rule, and whether it can apply
/// here. Reads only where the gate runs (is it a git work tree?); nothing is hashed or made.
pub async fn plan_line(
    gate: &GateSpec,
    p: &Pipeline,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Option<String> {
    let kept = |on: &str| {
        format!("kept while the command, its environment, the artefacts and {on} are unchanged")
    };
    match &gate.kind {
        GateKind::Regression(spec) => {
            let files = |g: &[String]| format!("the files of `inputs:` ({})", g.join(", "));
            let tree = "the git work tree (HEAD, every tracked change and every untracked file)";
            Some(
                match (
                    worktree::probe(&spec.dir, cancel).await,
                    spec.inputs.as_deref(),
                ) {
                    (Ok(Probe::Inside(_)), None | Some([])) => kept(tree),
                    (Ok(Probe::Inside(_)), Some(g)) => kept(&format!("{tree} and {}", files(g))),
                    (Ok(Probe::Outside), Some([])) => {
                        "kept while the command, its environment and \
                                                   the artefacts are unchanged (`inputs: []`: it \
                                                   reads no other file)"
                            .into()
                    }
                    (Ok(Probe::Outside), Some(g)) => kept(&files(g)),
                    (Ok(Probe::Outside), None) => format!(
                        "never kept: {} is not in a git work tree and the gate declares no `inputs:`",
                        shown(p, &spec.dir)
                    ),
                    (Err(e), _) => format!(
                        "never kept: git cannot tell the state of {}: {e}",
                        shown(p, &spec.dir)
                    ),
                },
            )
        }
        GateKind::VirusScan(_) => Some(
            "kept while the artefacts, the scan settings and clamd's signatures are unchanged"
                .into(),
        ),
        _ => None,
    }
}

async fn regression(
    spec: &RegressionSpec,
    p: &Pipeline,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Dependencies {
    let mut deps = Dependencies::default();
    match worktree::probe(&spec.dir, cancel).await {
        Ok(Probe::Inside(tree)) => match git_state(&tree, p) {
            Ok(state) => deps.git = Some(state),
            Err(why) => return Dependencies::unsure(why.to_string()),
        },
        Ok(Probe::Outside) if spec.inputs.is_none() => {
            return Dependencies::unsure(format!(
                "{} is not in a git work tree and the gate declares no `inputs:`",
                shown(p, &spec.dir)
            ));
        }
        Ok(Probe::Outside) => {}
        Err(e) => {
            return Dependencies::unsure(format!(
                "git cannot tell the state of {}: {e}",
                shown(p, &spec.dir)
            ));
        }
    }
    if let Some(globs) = &spec.inputs {
        match files_state(&p.root, globs) {
            Ok(f) => deps.files = Some(f),
            Err(why) => return Dependencies::unsure(why.to_string()),
        }
    }
    match environment_digest(spec, &p.state_dir) {
        Ok(d) => deps.environment = Some(d),
        Err(why) => return Dependencies::unsure(why.to_string()),
    }
    deps
}

async fn virus_scan(spec: &VirusScanSpec) -> Dependencies {
    match &spec.clamd {
        ClamdAddr::Private { database } => match folder_digest(database) {
            Ok(d) => Dependencies {
                signatures: Some(format!("database sha256:{d}")),
                ..Dependencies::default()
            },
            Err(why) => Dependencies::unsure(why.to_string()),
        },
        ClamdAddr::Tcp(_) | ClamdAddr::Unix(_) => {
            let addr = match &spec.clamd {
                ClamdAddr::Tcp(hp) => crate::clamd::Address::Tcp(hp.clone()),
                ClamdAddr::Unix(s) => crate::clamd::Address::Unix(s.clone()),
                ClamdAddr::Private { .. } => return Dependencies::unsure("no clamd address"),
            };
            match crate::clamd::Client::new(addr).version().await {
                Ok(v) => Dependencies {
                    signatures: Some(v.trim_end_matches(['\0', '\n']).to_string()),
                    ..Dependencies::default()
                },
                Err(e) => {
                    Dependencies::unsure(format!("clamd did not say which signatures it has: {e}"))
                }
            }
        }
    }
}

fn shown(p: &Pipeline, path: &Path) -> String {
    match path.strip_prefix(&p.root) {
        Ok(r) if r.as_os_str().is_empty() => "the pipeline folder".to_string(),
        Ok(r) => r.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_named() {
        let git = |head: &str, changes: &str| Dependencies {
            git: Some(GitState {
                top: "/r".into(),
                head: Some(head.into()),
                changed: 1,
                changes: changes.into(),
            }),
            environment: Some("e".into()),
            ..Dependencies::default()
        };
        let a = git("aaaa", "c1");
        assert_eq!(difference(Some(&a), &a), None);
        assert!(
            difference(Some(&a), &git("bbbb", "c1"))
                .unwrap()
                .starts_with("HEAD moved from aaaa to bbbb")
        );
        assert!(
            difference(Some(&a), &git("aaaa", "c2"))
                .unwrap()
                .starts_with("the work tree changed")
        );
        let mut env = a.clone();
        env.environment = Some("f".into());
        assert_eq!(
            difference(Some(&a), &env).as_deref(),
            Some("the environment changed")
        );
        assert!(difference(None, &a).unwrap().contains("older relgate"));
        let unsure = Dependencies::unsure("no git");
        assert_eq!(
            difference(Some(&unsure), &unsure).as_deref(),
            Some("no git")
        );
    }
}

//! The pipeline's top level: spanned tree -> [`crate::model::Pipeline`], every problem collected.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::cx::{Cx, Map};
use super::diag::Diagnostic;
use super::gate;
use super::kinds::GateEnv;
use super::suggest;
use super::yaml::{Node, Pos, Value};
use crate::model::{Changes, Pipeline, Publish};

const TOP_KEYS: &[&str] = &[
    "version",
    "project",
    "state_dir",
    "artefacts",
    "signers",
    "roles",
    "changes",
    "gates",
    "publish",
    "share",
    "notify",
];

/// Where the pipeline lives and what the command line overrides.
pub(crate) struct Inputs {
    /// Absolute pipeline file.
    pub file: PathBuf,
    /// Absolute pipeline folder.
    pub root: PathBuf,
    /// The pipeline folder as the user named it (how diagnostics name other files).
    pub shown_root: PathBuf,
    /// `--state`, already absolute.
    pub state: Option<PathBuf>,
}

/// Validate the whole pipeline. Returns a pipeline (and its `notify:` webhooks, which no judge
/// reads and so are not part of it) only when nothing was reported.
pub(crate) fn pipeline(
    cx: &mut Cx,
    tree: &Node,
    inp: &Inputs,
) -> Option<(Pipeline, Vec<crate::model::Notify>)> {
    let start = Pos {
        src: 0,
        line: 1,
        column: 1,
    };
    if tree.value == Value::Null {
        cx.error(
            start,
            "",
            "expected a mapping with version, project, artefacts, signers and gates, found an empty file",
        );
        return None;
    }
    let top = Map::new(
        cx,
        tree,
        start,
        "",
        "a mapping with version, project, artefacts, signers and gates",
        Some(TOP_KEYS),
    )?;

    if let Some(v) = top.require(cx, "version", "the schema version, 1")
        && v.value != Value::Int(1)
    {
        cx.expected(v, "version", "1 (the only schema version)");
    }
    let project = top
        .require(cx, "project", "the project name")
        .and_then(|n| project_name(cx, n));

    let state_dir = match (&inp.state, top.get("state_dir")) {
        (Some(over), Some(n)) => {
            // Still check it, so a typo does not hide until `--state` is dropped.
            cx.str(n, "state_dir", "a folder path");
            over.clone()
        }
        (Some(over), None) => over.clone(),
        (None, Some(n)) => cx
            .str(n, "state_dir", "a folder path")
            .map(|s| inp.root.join(s))
            .unwrap_or_default(),
        (None, None) => inp.root.join(".relgate"),
    };

    let signers = top
        .require(cx, "signers", "an OpenSSH allowed_signers file")
        .and_then(|n| signers_file(cx, n, inp));
    let principals = signers.as_ref().and_then(|(_, p)| p.clone());

    let roles = top
        .get("roles")
        .map(|n| {
            let shown = top
                .get("signers")
                .and_then(Node::as_str)
                .unwrap_or_default();
            roles(cx, n, &top, principals.as_ref(), shown)
        })
        .unwrap_or((BTreeMap::new(), true));

    let changes = top.get("changes").and_then(|n| changes(cx, n, &top, inp));

    let artefacts = top
        .require(cx, "artefacts", "a list of globs naming the release files")
        .and_then(|n| artefacts(cx, n, &inp.root));

    let gates = match top.entry("gates") {
        Some((k, v)) => {
            let env = GateEnv {
                root: &inp.root,
                shown_root: &inp.shown_root,
                roles: &roles.0,
                roles_ok: roles.1,
                principals: principals.as_ref(),
                has_changes: top.get("changes").is_some(),
                has_share: top.get("share").is_some(),
            };
            gate::validate(cx, k, v, &env)
        }
        None => {
            top.require(cx, "gates", "a mapping of gate id to gate");
            None
        }
    };

    let publish = top.get("publish").and_then(|n| publish(cx, n, &top, inp));
    let share = top
        .get("share")
        .and_then(|n| super::share::share(cx, n, &top, inp));
    let notify = match top.entry("notify") {
        Some((k, v)) => super::notify::validate(cx, k, v),
        None => Some(Vec::new()),
    };

    let pipeline = Pipeline {
        file: inp.file.clone(),
        root: inp.root.clone(),
        project: project?,
        state_dir,
        artefacts: artefacts?,
        signers: Some(signers?.0),
        roles: roles.0,
        changes,
        gates: gates?,
        publish,
        share,
    };
    Some((pipeline, notify?))
}

fn project_name(cx: &mut Cx, n: &Node) -> Option<String> {
    let ok = n.as_str().is_some_and(|s| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    });
    if ok {
        n.as_str().map(str::to_string)
    } else {
        cx.expected(
            n,
            "project",
            "a project name of letters, digits, `.`, `_` and `-`",
        );
        None
    }
}

/// Read and parse the signers file. Returns its path and, when it parsed, its principals.
fn signers_file(
    cx: &mut Cx,
    n: &Node,
    inp: &Inputs,
) -> Option<(PathBuf, Option<BTreeSet<String>>)> {
    let rel = cx.str(n, "signers", "the path of an OpenSSH allowed_signers file")?;
    let path = inp.root.join(rel);
    let shown = inp.shown_root.join(rel);
    let read = match &cx.mode {
        super::cx::Mode::Recorded { signers, .. } => {
            signers.clone().ok_or_else(|| super::ReadError::Missing {
                path: shown.clone(),
            })
        }
        _ => super::read_limited(&path, &shown),
    };
    let text = match read {
        Ok(t) => t,
        Err(e) => {
            cx.error(n.pos, "signers", format!("{e}"));
            return Some((path, None));
        }
    };
    match crate::signers::parse(&text) {
        Ok(set) => Some((path, Some(set.principals()))),
        Err(errors) => {
            for e in errors {
                cx.push(
                    n.pos.src,
                    Diagnostic {
                        file: shown.clone(),
                        line: e.line,
                        column: 1,
                        key_path: "signers".into(),
                        message: format!("not a valid allowed_signers line: {}", e.message),
                        source_line: text
                            .lines()
                            .nth(e.line.saturating_sub(1))
                            .map(str::to_string),
                        help: None,
                    },
                );
            }
            Some((path, None))
        }
    }
}

/// Roles and whether every one of them was valid (a broken role must not also produce
/// "unknown role" problems in the gates that name it).
fn roles(
    cx: &mut Cx,
    n: &Node,
    top: &Map,
    principals: Option<&BTreeSet<String>>,
    signers_shown: &str,
) -> (BTreeMap<String, Vec<String>>, bool) {
    let anchor = top.entry("roles").map(|(k, _)| k.pos).unwrap_or_default();
    let Some(map) = Map::new(
        cx,
        n,
        anchor,
        "roles",
        "a mapping of role name to a list of principals",
        None,
    ) else {
        return (BTreeMap::new(), false);
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (k, v) in &map.entries {
        let name = k.key_text();
        let path = map.sub(&name);
        let Some(list) = cx.str_list(v, &path, "principals", true) else {
            ok = false;
            continue;
        };
        let mut members = Vec::new();
        for (p, node) in list {
            if let Some(known) = principals
                && !known.contains(p)
            {
                let help = suggest::did_you_mean(p, known.iter().map(String::as_str));
                cx.error(
                    node.pos,
                    &path,
                    format!("principal `{p}` is not in the signers file {signers_shown}"),
                )
                .help = help;
            }
            if !members.iter().any(|m| m == p) {
                members.push(p.to_string());
            }
        }
        out.entry(name).or_insert(members);
    }
    (out, ok)
}

fn changes(cx: &mut Cx, n: &Node, top: &Map, inp: &Inputs) -> Option<Changes> {
    let anchor = top.entry("changes").map(|(k, _)| k.pos).unwrap_or_default();
    let map = Map::new(
        cx,
        n,
        anchor,
        "changes",
        "a mapping with `repo` and `range`",
        Some(&["repo", "range"]),
    )?;
    let repo = match map.get("repo") {
        Some(r) => {
            let rel = cx.str(r, "changes.repo", "a folder path (a git work tree)")?;
            let path = inp.root.join(rel);
            if cx.mode.checks_disk() && !path.is_dir() {
                cx.error(
                    r.pos,
                    "changes.repo",
                    format!("folder {rel} does not exist"),
                );
                return None;
            }
            path
        }
        None => inp.root.clone(),
    };
    let node = map.require(cx, "range", "a git revision range like v1.3.0..HEAD")?;
    let range = cx.str(
        node,
        "changes.range",
        "a git revision range like v1.3.0..HEAD",
    )?;
    // The change-record judge refuses the same ranges; saying so here saves a run.
    if let Err(why) = crate::git::RangeSpec::parse(range) {
        cx.error(
            node.pos,
            "changes.range",
            format!(
                "expected START..END or one revision like v1.3.0..HEAD, found {range:?}: {why}"
            ),
        );
        return None;
    }
    Some(Changes {
        repo,
        range: range.to_string(),
    })
}

fn artefacts(cx: &mut Cx, n: &Node, root: &Path) -> Option<Vec<String>> {
    let list = cx.str_list(n, "artefacts", "globs", true)?;
    let patterns: Vec<String> = list.iter().map(|(s, _)| s.to_string()).collect();
    if !cx.mode.checks_disk() {
        // The globs are policy; what they match is the run's business.
        return Some(patterns);
    }
    match crate::stage::resolve(root, &patterns) {
        Ok(_) => Some(patterns),
        Err(problems) => {
            for p in problems {
                let idx = list.iter().position(|(s, _)| *s == p.pattern());
                let (pos, path) = match idx {
                    Some(i) => (list[i].1.pos, format!("artefacts[{i}]")),
                    None => (n.pos, "artefacts".to_string()),
                };
                cx.error(pos, &path, p.to_string());
            }
            None
        }
    }
}

/// `publish:`: where each release goes (`to`, a folder or URL template), and the keys of a
/// remote target. The first problem found ends it.
fn publish(cx: &mut Cx, n: &Node, top: &Map, inp: &Inputs) -> Option<Publish> {
    let anchor = top.entry("publish").map(|(k, _)| k.pos).unwrap_or_default();
    let map = Map::new(
        cx,
        n,
        anchor,
        "publish",
        "a mapping with `to`",
        Some(&["to", "endpoint", "region", "ca", "allow_http"]),
    )?;
    // 1. `to`: a template with `{version}` and no other placeholder.
    let (to, s) = publish_to(cx, &map)?;
    let allow_http = match map.get("allow_http") {
        Some(b) => cx.bool(b, "publish.allow_http")?,
        None => false,
    };
    // 2. A URL's scheme, host and security.
    let scheme = publish_scheme(cx, to, s, allow_http)?;
    // 3. The keys of a remote target.
    let RemoteKeys {
        endpoint,
        region,
        ca,
    } = remote_keys(
        cx,
        &map,
        inp,
        Remote {
            key: "publish",
            noun: "target",
            is_s3: scheme.as_deref() == Some("s3"),
            is_remote: scheme.is_some(),
            allow_http,
        },
    )?;
    Some(Publish {
        to: s.to_string(),
        endpoint,
        region,
        ca,
        allow_http,
    })
}

/// `publish.to`, its node and text: only `{project}` and `{version}` are substituted, and
/// `{version}` must be there (each release gets its own folder, never overwritten).
fn publish_to<'a>(cx: &mut Cx, map: &Map<'a>) -> Option<(&'a Node, &'a str)> {
    let to = map.require(
        cx,
        "to",
        "the release folder, e.g. dist/releases/{project}/{version}",
    )?;
    let what = "a folder or URL template holding {version}, e.g. dist/releases/{project}/{version}";
    let s = cx.str(to, "publish.to", what)?;
    // Any other brace is a typo.
    let rest = s.replace("{project}", "").replace("{version}", "");
    if rest.contains(['{', '}']) {
        cx.error(
            to.pos,
            "publish.to",
            format!(
                "unknown placeholder in {s:?}; only {{project}} and {{version}} are substituted"
            ),
        );
        return None;
    }
    if !s.contains("{version}") {
        cx.expected(to, "publish.to", what);
        return None;
    }
    Some((to, s))
}

/// The scheme of `publish.to` (lowercase; `None` for a folder), which must be https://,
/// http:// or s3:// ([`check_publish_url`]).
fn publish_scheme(cx: &mut Cx, to: &Node, s: &str, allow_http: bool) -> Option<Option<String>> {
    let scheme = s
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        None => {}
        Some("https" | "http" | "s3") => check_publish_url(cx, to, s, allow_http)?,
        Some(other) => {
            cx.error(
                to.pos,
                "publish.to",
                format!("unsupported scheme {other}://; expected a folder, https://, http:// (loopback) or s3://"),
            );
            return None;
        }
    }
    Some(scheme)
}

/// A URL `publish.to`, checked with sample values in its placeholders (they only ever fill
/// path parts): it parses, holds no credentials or query, names a host (or bucket), and is
/// plain http:// only to this machine or with `allow_http`.
fn check_publish_url(cx: &mut Cx, to: &Node, s: &str, allow_http: bool) -> Option<()> {
    let sample = s.replace("{project}", "p").replace("{version}", "1.0.0");
    let url = match url::Url::parse(&sample) {
        Ok(u) => u,
        Err(e) => {
            cx.error(to.pos, "publish.to", format!("{s:?} is not a URL: {e}"));
            return None;
        }
    };
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        cx.error(
            to.pos,
            "publish.to",
            "credentials and queries do not belong in the pipeline; give them in the \
             environment (RELGATE_PUBLISH_USER/RELGATE_PUBLISH_PASSWORD, AWS_*) or ~/.netrc",
        );
        return None;
    }
    if url.host_str().is_none_or(str::is_empty) {
        cx.error(
            to.pos,
            "publish.to",
            format!("{s:?} names no host (or bucket)"),
        );
        return None;
    }
    if url.scheme() == "http" && !allow_http && !crate::http::is_loopback(&url) {
        cx.error(
            to.pos,
            "publish.to",
            "plain http:// to another machine sends credentials and the release \
             unencrypted; use https://, or set `allow_http: true` to accept that",
        );
        return None;
    }
    Some(())
}

/// Where a remote location is, as `publish:` and `share:` both describe it.
pub(super) struct Remote<'a> {
    /// `publish` or `share`: the key path's first part.
    pub key: &'a str,
    /// What it is called in messages: `target`, `share`.
    pub noun: &'a str,
    pub is_s3: bool,
    pub is_remote: bool,
    pub allow_http: bool,
}

/// The keys a remote location takes besides where it is, checked alike for `publish:` and
/// `share:`.
pub(super) struct RemoteKeys {
    /// `endpoint`: s3:// only, an https:// URL (http:// on this machine or with `allow_http`).
    pub endpoint: Option<String>,
    /// `region`: s3:// only.
    pub region: Option<String>,
    /// `ca`: remote only, a PEM file relative to the pipeline's folder.
    pub ca: Option<PathBuf>,
}

pub(super) fn remote_keys(cx: &mut Cx, map: &Map, inp: &Inputs, r: Remote) -> Option<RemoteKeys> {
    let (key, noun) = (r.key, r.noun);
    let endpoint = match map.get("endpoint") {
        Some(e) if !r.is_s3 => {
            let msg = format!("only an s3:// {noun} takes an endpoint");
            cx.error(e.pos, &format!("{key}.endpoint"), msg);
            return None;
        }
        Some(e) => {
            let path = format!("{key}.endpoint");
            let text = cx.str(e, &path, "an http(s) URL of the S3 service")?;
            match url::Url::parse(text) {
                Ok(u)
                    if u.scheme() == "https"
                        || (u.scheme() == "http"
                            && (r.allow_http || crate::http::is_loopback(&u))) =>
                {
                    Some(text.to_string())
                }
                Ok(_) => {
                    cx.error(
                        e.pos,
                        &path,
                        "expected an https:// URL (http:// only on this machine, or with allow_http)",
                    );
                    return None;
                }
                Err(err) => {
                    cx.error(e.pos, &path, format!("not a URL: {err}"));
                    return None;
                }
            }
        }
        None => None,
    };
    let region = match map.get("region") {
        Some(g) if !r.is_s3 => {
            let msg = format!("only an s3:// {noun} takes a region");
            cx.error(g.pos, &format!("{key}.region"), msg);
            return None;
        }
        Some(g) => Some(
            cx.str(
                g,
                &format!("{key}.region"),
                "an S3 region such as eu-west-1",
            )?
            .to_string(),
        ),
        None => None,
    };
    let ca = match map.get("ca") {
        Some(c) if !r.is_remote => {
            let msg = format!("a folder {noun} takes no CA");
            cx.error(c.pos, &format!("{key}.ca"), msg);
            return None;
        }
        Some(c) => {
            let path = format!("{key}.ca");
            let rel = cx.str(c, &path, "a PEM file of CA certificates")?;
            let file = inp.root.join(rel);
            if cx.mode.checks_disk() && !file.is_file() {
                cx.error(c.pos, &path, format!("file {rel} does not exist"));
                return None;
            }
            Some(file)
        }
        None => None,
    };
    Some(RemoteKeys {
        endpoint,
        region,
        ca,
    })
}

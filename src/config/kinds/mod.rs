//! The keys of each gate kind, checked into [`crate::model::GateKind`].

mod from_share;
mod signoff;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::cx::{Cx, Map};
use super::suggest;
use super::units;
use super::yaml::{Node, Value};
use crate::model::{
    ChangeRecordSpec, ClamdAddr, Command, GateKind, Kind, PentestSpec, RegressionSpec,
    SecurityReviewSpec, SignSpec, VirusScanSpec,
};

/// What gates need to know about the rest of the pipeline.
pub(crate) struct GateEnv<'a> {
    pub root: &'a Path,
    /// The pipeline folder as the user named it, for naming `uses:` files in diagnostics.
    pub shown_root: &'a Path,
    pub roles: &'a BTreeMap<String, Vec<String>>,
    /// False when `roles` itself had problems (then unknown-role checks stay quiet).
    pub roles_ok: bool,
    /// Principals in `signers`, when that file could be read and parsed.
    pub principals: Option<&'a BTreeSet<String>>,
    pub has_changes: bool,
    pub has_share: bool,
}

pub(crate) const SEVERITIES: &[&str] = &["critical", "high", "medium", "low"];
const DEFAULT_SLA: &[(&str, u64)] = &[
    ("critical", 7 * 86_400),
    ("high", 30 * 86_400),
    ("medium", 90 * 86_400),
    ("low", 365 * 86_400),
];
const DEFAULT_MAX_SIZE: u64 = 100 << 20;
const DEFAULT_CONCURRENCY: usize = 4;
const DEFAULT_PENTEST_MAX_AGE: u64 = 365 * 86_400;

/// The keys a gate of `kind` may hold besides the common ones.
pub(crate) fn keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Regression => &[
            "run",
            "dir",
            "env",
            "junit",
            "min_tests",
            "inputs",
            "from_share",
        ],
        Kind::ChangeRecord => &["require", "test_paths"],
        Kind::Signoff => &["role", "quorum", "expires", "segregation"],
        Kind::SecurityReview => &["findings", "register", "block", "sla", "pentest"],
        Kind::VirusScan => &["clamd", "max_signature_age", "max_size", "concurrency"],
        Kind::Sign => &["key", "signer"],
    }
}

/// Check the kind-specific keys. `kind_node` is the `kind` value (for problems about the
/// gate as a whole).
pub(crate) fn spec(
    cx: &mut Cx,
    kind: Kind,
    kind_node: &Node,
    m: &Map,
    env: &GateEnv,
) -> Option<GateKind> {
    match kind {
        Kind::Regression if m.get("from_share").is_some() => {
            from_share::from_share(cx, m, env).map(GateKind::RegressionFromShare)
        }
        Kind::Regression => regression(cx, m, env).map(GateKind::Regression),
        Kind::ChangeRecord => change_record(cx, kind_node, m, env).map(GateKind::ChangeRecord),
        Kind::Signoff => signoff::signoff(cx, kind_node, m, env).map(GateKind::Signoff),
        Kind::SecurityReview => security_review(cx, m, env).map(GateKind::SecurityReview),
        Kind::VirusScan => virus_scan(cx, m, env).map(GateKind::VirusScan),
        Kind::Sign => sign(cx, m, env).map(GateKind::Sign),
    }
}

fn regression(cx: &mut Cx, m: &Map, env: &GateEnv) -> Option<RegressionSpec> {
    let what = "a command: a string (run by sh -c) or a non-empty list of strings (argv, no shell)";
    let run = m.require(cx, "run", what).and_then(|n| match &n.value {
        Value::Str(s) if !s.trim().is_empty() => Some(Command::Shell(s.clone())),
        Value::Seq(items) if !items.is_empty() => {
            let argv: Option<Vec<String>> = items
                .iter()
                .enumerate()
                .map(|(i, it)| match &it.value {
                    Value::Str(s) if i > 0 || !s.trim().is_empty() => Some(s.clone()),
                    Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                        let msg = format!(
                            "expected a string, found {} (quote it: \"{}\")",
                            it.describe(),
                            it.key_text()
                        );
                        cx.error(it.pos, &format!("{}[{i}]", m.sub("run")), msg);
                        None
                    }
                    _ => {
                        cx.expected(it, &format!("{}[{i}]", m.sub("run")), "a string");
                        None
                    }
                })
                .collect();
            argv.map(Command::Argv)
        }
        _ => {
            cx.expected(n, &m.sub("run"), what);
            None
        }
    });
    let dir = match m.get("dir") {
        Some(n) => folder(cx, n, &m.sub("dir"), env),
        None => Some(env.root.to_path_buf()),
    };
    let envs = match m.get("env") {
        Some(n) => env_map(cx, n, m),
        None => Some(BTreeMap::new()),
    };
    let junit = match m.get("junit") {
        Some(n) => globs(cx, n, &m.sub("junit"), false),
        None => Some(Vec::new()),
    };
    let min_tests = match m.get("min_tests") {
        Some(n) => cx
            .uint(n, &m.sub("min_tests"), "a non-negative whole number")
            .map(Some),
        None => Some(None),
    };
    let inputs = match m.get("inputs") {
        Some(n) => inside_globs(cx, n, &m.sub("inputs")).map(Some),
        None => Some(None),
    };
    Some(RegressionSpec {
        run: run?,
        dir: dir?,
        env: envs?,
        junit: junit?,
        min_tests: min_tests?,
        inputs: inputs?,
    })
}

/// An existing folder, resolved against the pipeline root.
fn folder(cx: &mut Cx, n: &Node, path: &str, env: &GateEnv) -> Option<std::path::PathBuf> {
    let rel = cx.str(n, path, "a folder path")?;
    let full = env.root.join(rel);
    if !cx.mode.checks_disk() || full.is_dir() {
        Some(full)
    } else {
        let why = if full.exists() {
            "is not a folder"
        } else {
            "does not exist"
        };
        cx.error(n.pos, path, format!("folder {rel} {why}"));
        None
    }
}

fn env_map(cx: &mut Cx, n: &Node, m: &Map) -> Option<BTreeMap<String, String>> {
    let anchor = m.entry("env").map(|(k, _)| k.pos).unwrap_or_default();
    let path = m.sub("env");
    let map = Map::new(
        cx,
        n,
        anchor,
        &path,
        "a mapping of variable name to string",
        None,
    )?;
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (k, v) in &map.entries {
        let name = k.key_text();
        let p = map.sub(&name);
        let name_ok = k.as_str().is_some()
            && !name.is_empty()
            && !name.as_bytes()[0].is_ascii_digit()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !name_ok {
            cx.expected(k, &p, "a variable name of letters, digits and `_`");
            ok = false;
        }
        match &v.value {
            Value::Str(s) => {
                out.entry(name).or_insert_with(|| s.clone());
            }
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                let msg = format!(
                    "expected a string, found {} (quote it: \"{}\")",
                    v.describe(),
                    v.key_text()
                );
                cx.error(v.pos, &p, msg);
                ok = false;
            }
            _ => {
                cx.expected(v, &p, "a string");
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// A list of valid globs.
fn globs(cx: &mut Cx, n: &Node, path: &str, non_empty: bool) -> Option<Vec<String>> {
    let list = cx.str_list(n, path, "globs", non_empty)?;
    let mut ok = true;
    for (i, (s, node)) in list.iter().enumerate() {
        if let Err(e) = globset::Glob::new(s) {
            cx.error(
                node.pos,
                &format!("{path}[{i}]"),
                format!("not a valid glob: {}", e.kind()),
            );
            ok = false;
        }
    }
    ok.then(|| list.into_iter().map(|(s, _)| s.to_string()).collect())
}

/// Globs below the pipeline folder: neither absolute nor climbing out with `..`.
fn inside_globs(cx: &mut Cx, n: &Node, path: &str) -> Option<Vec<String>> {
    let list = globs(cx, n, path, false)?;
    let mut ok = true;
    for (i, (s, item)) in list.iter().zip(n.as_seq().unwrap_or_default()).enumerate() {
        let p = std::path::Path::new(s);
        if p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
            cx.error(
                item.pos,
                &format!("{path}[{i}]"),
                "leaves the pipeline folder (write it relative to the pipeline, without `..`)",
            );
            ok = false;
        }
    }
    ok.then_some(list)
}

fn change_record(
    cx: &mut Cx,
    kind_node: &Node,
    m: &Map,
    env: &GateEnv,
) -> Option<ChangeRecordSpec> {
    let mut ok = true;
    if !env.has_changes {
        cx.error(
            kind_node.pos,
            &m.sub("kind"),
            "a change-record gate needs the top-level `changes` (repo and range)",
        );
        ok = false;
    }
    let (mut reviewer, mut tests) = (true, true);
    if let Some(n) = m.get("require") {
        let path = m.sub("require");
        match cx.str_list(n, &path, "requirements (reviewer, tests)", false) {
            Some(list) => {
                reviewer = false;
                tests = false;
                for (i, (s, node)) in list.iter().enumerate() {
                    match *s {
                        "reviewer" => reviewer = true,
                        "tests" => tests = true,
                        _ => {
                            let help = suggest::did_you_mean(s, ["reviewer", "tests"]);
                            cx.expected(node, &format!("{path}[{i}]"), "reviewer or tests")
                                .help = help;
                            ok = false;
                        }
                    }
                }
            }
            None => ok = false,
        }
    }
    let test_paths = match m.get("test_paths") {
        Some(n) => globs(cx, n, &m.sub("test_paths"), false),
        None => Some(Vec::new()),
    };
    ok.then_some(ChangeRecordSpec {
        require_reviewer: reviewer,
        require_tests: tests,
        test_paths: test_paths?,
    })
}

fn severity_list(cx: &mut Cx, n: &Node, path: &str) -> Option<Vec<String>> {
    let list = cx.str_list(n, path, "severities (critical, high, medium, low)", false)?;
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for (i, (s, node)) in list.iter().enumerate() {
        if SEVERITIES.contains(s) {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        } else {
            let help = suggest::did_you_mean(s, SEVERITIES.iter().copied());
            cx.expected(
                node,
                &format!("{path}[{i}]"),
                "critical, high, medium or low",
            )
            .help = help;
            ok = false;
        }
    }
    ok.then_some(out)
}

fn security_review(cx: &mut Cx, m: &Map, env: &GateEnv) -> Option<SecurityReviewSpec> {
    let findings = m
        .require(cx, "findings", "a list of globs naming SARIF files")
        .and_then(|n| globs(cx, n, &m.sub("findings"), true));
    let register = m
        .require(cx, "register", "the remediation register file")
        .and_then(|n| cx.str(n, &m.sub("register"), "a file path"))
        .map(|s| env.root.join(s));
    let block = match m.get("block") {
        Some(n) => severity_list(cx, n, &m.sub("block")),
        None => Some(vec!["critical".to_string()]),
    };
    let mut sla: BTreeMap<String, u64> = DEFAULT_SLA
        .iter()
        .map(|(s, d)| (s.to_string(), *d))
        .collect();
    let mut sla_ok = true;
    if let Some(n) = m.get("sla") {
        let anchor = m.entry("sla").map(|(k, _)| k.pos).unwrap_or_default();
        let path = m.sub("sla");
        match Map::new(
            cx,
            n,
            anchor,
            &path,
            "a mapping of severity to duration",
            Some(SEVERITIES),
        ) {
            Some(map) => {
                for sev in SEVERITIES {
                    if let Some(v) = map.get(sev) {
                        match cx.duration(v, &map.sub(sev)) {
                            Some(d) => {
                                sla.insert(sev.to_string(), d);
                            }
                            None => sla_ok = false,
                        }
                    }
                }
                // Unknown severities were reported by Map::new.
                if map
                    .entries
                    .iter()
                    .any(|(k, _)| !SEVERITIES.contains(&k.key_text().as_str()))
                {
                    sla_ok = false;
                }
            }
            None => sla_ok = false,
        }
    }
    let pentest = match m.get("pentest") {
        Some(n) => pentest(cx, n, m, env),
        None => Some(None),
    };
    Some(SecurityReviewSpec {
        findings: findings?,
        register: register?,
        block: block?,
        sla_secs: sla_ok.then_some(sla)?,
        pentest: pentest?,
    })
}

fn pentest(cx: &mut Cx, n: &Node, m: &Map, env: &GateEnv) -> Option<Option<PentestSpec>> {
    let anchor = m.entry("pentest").map(|(k, _)| k.pos).unwrap_or_default();
    let path = m.sub("pentest");
    let map = Map::new(
        cx,
        n,
        anchor,
        &path,
        "a mapping with `records` and `max_age`",
        Some(&["records", "max_age"]),
    )?;
    let records = map
        .require(cx, "records", "the pentest records file")
        .and_then(|r| cx.str(r, &map.sub("records"), "a file path"))
        .map(|s| env.root.join(s));
    let max_age = match map.get("max_age") {
        Some(a) => cx.duration(a, &map.sub("max_age")),
        None => Some(DEFAULT_PENTEST_MAX_AGE),
    };
    Some(Some(PentestSpec {
        records: records?,
        max_age_secs: max_age?,
    }))
}

fn clamd(cx: &mut Cx, n: &Node, m: &Map, env: &GateEnv) -> Option<ClamdAddr> {
    let path = m.sub("clamd");
    let what = "tcp://HOST:PORT, unix:SOCKET or {database: FOLDER}";
    match &n.value {
        Value::Str(s) => {
            if let Some(hp) = s.strip_prefix("tcp://") {
                let ok = hp.rsplit_once(':').is_some_and(|(h, p)| {
                    !h.is_empty() && !h.contains('/') && p.parse::<u16>().is_ok_and(|p| p > 0)
                });
                if ok {
                    return Some(ClamdAddr::Tcp(hp.to_string()));
                }
            } else if let Some(sock) = s.strip_prefix("unix:")
                && !sock.is_empty()
            {
                return Some(ClamdAddr::Unix(env.root.join(sock)));
            }
            cx.expected(n, &path, what);
            None
        }
        Value::Map(_) => {
            let anchor = m.entry("clamd").map(|(k, _)| k.pos).unwrap_or_default();
            let map = Map::new(cx, n, anchor, &path, what, Some(&["database"]))?;
            let db = map.require(cx, "database", "the folder of ClamAV signature databases")?;
            let dir = folder(cx, db, &map.sub("database"), env)?;
            Some(ClamdAddr::Private { database: dir })
        }
        _ => {
            cx.expected(n, &path, what);
            None
        }
    }
}

fn virus_scan(cx: &mut Cx, m: &Map, env: &GateEnv) -> Option<VirusScanSpec> {
    let addr = m
        .require(
            cx,
            "clamd",
            "tcp://HOST:PORT, unix:SOCKET or {database: FOLDER}",
        )
        .and_then(|n| clamd(cx, n, m, env));
    let age = match m.get("max_signature_age") {
        Some(n) => cx.duration(n, &m.sub("max_signature_age")).map(Some),
        None => Some(None),
    };
    let max_size = match m.get("max_size") {
        Some(n) => {
            let v = match &n.value {
                Value::Int(i) => u64::try_from(*i).ok().filter(|v| *v > 0),
                Value::Str(s) => units::parse_size(s),
                _ => None,
            };
            if v.is_none() {
                cx.expected(
                    n,
                    &m.sub("max_size"),
                    "a size in bytes, or with a suffix K, M or G (KiB, MiB, GiB), e.g. 100M",
                );
            }
            v
        }
        None => Some(DEFAULT_MAX_SIZE),
    };
    let concurrency = match m.get("concurrency") {
        Some(n) => {
            let path = m.sub("concurrency");
            match cx.uint(n, &path, "a whole number of at least 1") {
                Some(0) => {
                    cx.expected(n, &path, "a whole number of at least 1");
                    None
                }
                Some(c) => usize::try_from(c).ok(),
                None => None,
            }
        }
        None => Some(DEFAULT_CONCURRENCY),
    };
    Some(VirusScanSpec {
        clamd: addr?,
        max_signature_age_secs: age?,
        max_size: max_size?,
        concurrency: concurrency?,
    })
}

fn sign(cx: &mut Cx, m: &Map, env: &GateEnv) -> Option<SignSpec> {
    let key = m
        .require(
            cx,
            "key",
            "the OpenSSH private key file (${VAR} is expanded)",
        )
        .and_then(|n| cx.str(n, &m.sub("key"), "a key file path"));
    let signer = m
        .require(
            cx,
            "signer",
            "the principal that signs, as written in signers",
        )
        .and_then(|n| {
            let s = cx.str(n, &m.sub("signer"), "a principal")?;
            if let Some(known) = env.principals
                && !known.contains(s)
            {
                let help = suggest::did_you_mean(s, known.iter().map(String::as_str));
                cx.error(
                    n.pos,
                    &m.sub("signer"),
                    format!("signer `{s}` is not a principal in the signers file"),
                )
                .help = help;
                return None;
            }
            Some(s)
        });
    Some(SignSpec {
        key: key?.to_string(),
        signer: signer?.to_string(),
    })
}

//! `relgate logs VERSION GATE`: what a gate's latest verdict rests on, read from the release
//! record — the verdict and its reasons, for a regression gate its command, exit status, failed
//! tests (message and `file:line`) and the tails of its captured stdout and stderr, and every
//! evidence digest with the file that holds it. Nothing is shown from a record that does not
//! verify (see [`super::read_release_log`]).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Format;
use crate::gates::regression::{self, JunitState, RegressionEvidence, StreamCapture};
use crate::log::{Entry, GateVerdict, RunStarted};
use crate::model::Command;
use crate::output::{errln, outln};
use crate::record::{Blobs, Record};
use crate::{config, engine, exit};

/// Lines of each stream shown by default.
pub const DEFAULT_LINES: usize = 40;

pub struct LogsArgs<'a> {
    pub pipeline: &'a Path,
    pub state: Option<&'a Path>,
    pub version: &'a str,
    pub gate: &'a str,
    pub format: Format,
    pub lines: usize,
}

/// Exit 0 when the verdict was shown; 1 when there is no record, it does not verify, or it holds
/// no verdict of the gate; 2 on a configuration problem or a gate the pipeline does not have.
pub fn run(args: &LogsArgs<'_>) -> i32 {
    let loaded = match config::load(args.pipeline, args.state) {
        Ok(l) => l,
        Err(diags) => {
            super::config_problems(&diags);
            return exit::CONFIG;
        }
    };
    let p = loaded.pipeline;
    let Some(gate) = p.gate(args.gate) else {
        let help = config::suggest::did_you_mean(args.gate, p.gates.iter().map(|g| g.id.as_str()))
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        errln!(
            "relgate: {} has no gate {:?}{help}",
            args.pipeline.display(),
            args.gate
        );
        return exit::CONFIG;
    };
    let log = match super::read_release_log(&p, args.version) {
        Ok(log) => log,
        Err(e) => {
            errln!("relgate: {e}");
            return if engine::valid_version(args.version) {
                exit::REFUSED
            } else {
                exit::CONFIG
            };
        }
    };
    let Some(found) = latest_verdict(&log.entries, &gate.id) else {
        errln!(
            "relgate: the release record {} holds no verdict of {} (it has not been judged in a \
             run that a signed checkpoint covers); `relgate status {}` shows where it stands",
            log.dir.display(),
            gate.id,
            args.version
        );
        return exit::REFUSED;
    };
    let record = Record::new(&log.dir);
    let doc = describe(&record, &found, args.lines);
    match args.format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default()),
        Format::Human => print_human(&doc, &log.notes),
    }
    exit::SUCCESS
}

/// A verdict of the gate with the run it belongs to.
struct Found<'a> {
    run: &'a RunStarted,
    runs: u32,
    line: usize,
    verdict: &'a GateVerdict,
}

fn latest_verdict<'a>(entries: &'a [Entry], gate: &str) -> Option<Found<'a>> {
    let view = crate::view::ReleaseView::new(entries);
    let runs = view.latest()?.number();
    let (run, v) = view.latest_verdict(gate)?;
    Some(Found {
        run: run.start.body,
        runs,
        line: v.line(),
        verdict: v.body,
    })
}

/// The JSON document `logs` prints (the human form is rendered from it).
fn describe(record: &Record, f: &Found<'_>, lines: usize) -> Value {
    let v = f.verdict;
    let evidence_file = |digest: &str| record.evidence_dir().join(digest);
    let mut doc = json!({
        "project": f.run.project,
        "version": f.run.version,
        "gate": v.gate,
        "kind": v.kind,
        "outcome": v.outcome,
        "run": v.run,
        "runs": f.runs,
        "record": record.dir.display().to_string(),
        "line": f.line,
        "reused_from_line": v.reused_from.map(|seq| seq + 1),
        "reasons": v.reasons,
        "evidence": v.evidence.as_ref().map(|d| json!({
            "digest": d,
            "path": evidence_file(d).display().to_string(),
        })),
    });
    let Some(digest) = &v.evidence else {
        return doc;
    };
    if v.kind != "regression" {
        return doc;
    }
    let ev = Blobs::get(record, digest)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<RegressionEvidence>(&b).map_err(|e| e.to_string()));
    let ev = match ev {
        Ok(ev) => ev,
        Err(e) => {
            match Blobs::get(record, digest).ok().and_then(|b| {
                serde_json::from_slice::<regression::from_share::FromShareEvidence>(&b).ok()
            }) {
                Some(ev) => from_share(&mut doc, record, &ev),
                None => doc["evidence_problem"] = json!(e),
            }
            return doc;
        }
    };
    let (tests, problems) = regression::read_tests(&ev, record);
    doc["command"] = json!(match &ev.command {
        Command::Shell(text) => json!(text),
        Command::Argv(argv) => json!(argv),
    });
    doc["dir"] = json!(ev.dir);
    doc["process"] = json!(ev.process);
    doc["notes"] = json!(ev.notes);
    doc["tests"] = json!({
        "executed": tests.executed,
        "passed": tests.passed,
        "skipped": tests.skipped,
        "flaky": tests.flaky,
    });
    doc["failures"] = json!(tests.failures);
    if !problems.is_empty() {
        doc["report_problems"] = json!(problems);
    }
    doc["stdout"] = stream(record, &ev.stdout, lines);
    doc["stderr"] = stream(record, &ev.stderr, lines);
    doc["junit"] = Value::Array(
        ev.junit
            .iter()
            .map(|j| {
                let digest = match &j.state {
                    JunitState::Fresh { sha256, .. } => Some(sha256.clone()),
                    _ => None,
                };
                json!({
                    "path": j.path,
                    "state": serde_json::to_value(&j.state)
                        .ok()
                        .and_then(|s| s.get("state").cloned()),
                    "digest": digest,
                    "file": digest.as_ref().map(|d| evidence_file(d).display().to_string()),
                })
            })
            .collect(),
    );
    doc
}

/// A regression gate that took its reports from the share: the commit, the share, what was
/// noted, and each report stored in the record, by the job its statement names.
fn from_share(doc: &mut Value, record: &Record, ev: &regression::from_share::FromShareEvidence) {
    doc["commit"] = json!(ev.commit);
    doc["share"] = json!(ev.share);
    doc["ci_notes"] = json!(ev.notes);
    let mut junit = Vec::new();
    for f in &ev.statements {
        let job = Blobs::get(record, &f.statement)
            .ok()
            .and_then(|b| crate::share::ci::parse_statement(&b).ok())
            .map(|st| (st.job, st.reports));
        let Some((job, reports)) = job else { continue };
        for (r, got) in reports.iter().zip(&f.reports) {
            if got.state != regression::from_share::FetchState::Stored {
                continue;
            }
            junit.push(json!({
                "path": format!("{job}/{}", crate::report::printable(&r.name)),
                "state": "stored",
                "digest": r.sha256,
                "file": record.evidence_dir().join(&r.sha256).display().to_string(),
            }));
        }
    }
    doc["junit"] = Value::Array(junit);
}

/// One captured stream: its size, its last `lines` lines, and the files that hold it.
fn stream(record: &Record, s: &StreamCapture, lines: usize) -> Value {
    let part = |name: &str, digest: &str| {
        json!({
            "part": name,
            "digest": digest,
            "path": record.evidence_dir().join(digest).display().to_string(),
        })
    };
    let mut files = vec![part("head", &s.head)];
    if let Some(t) = &s.tail {
        files.push(part("tail", t));
    }
    let read = |d: &str| Blobs::get(record, d).unwrap_or_default();
    // The kept bytes end with the tail when there is one; head and tail are contiguous when
    // nothing was omitted between them.
    let mut kept = match &s.tail {
        Some(t) if s.omitted > 0 => read(t),
        Some(t) => {
            let mut b = read(&s.head);
            b.extend(read(t));
            b
        }
        None => read(&s.head),
    };
    let before_kept = s.len.saturating_sub(kept.len() as u64);
    if kept.last() == Some(&b'\n') {
        kept.pop();
    }
    let text = String::from_utf8_lossy(&kept);
    let all: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').collect()
    };
    let shown = &all[all.len().saturating_sub(lines)..];
    let earlier_lines = all.len() - shown.len();
    json!({
        "bytes": s.len,
        "sha256": s.sha256,
        "omitted": s.omitted,
        "complete": s.complete,
        "redacted": s.redacted,
        // Everything before the lines shown, in bytes (omitted or not).
        "bytes_before_tail": before_kept + all[..earlier_lines].iter().map(|l| l.len() as u64 + 1).sum::<u64>(),
        "tail": shown.join("\n"),
        "files": files,
    })
}

fn print_human(doc: &Value, notes: &[String]) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut head = format!(
        "{} ({}): {} — run {} of {}, {} line {}",
        s(&doc["gate"]),
        s(&doc["kind"]),
        s(&doc["outcome"]),
        doc["run"],
        doc["runs"],
        PathBuf::from(s(&doc["record"])).join("log.jsonl").display(),
        doc["line"]
    );
    if let Some(l) = doc["reused_from_line"].as_u64() {
        head.push_str(&format!(" (kept from line {l})"));
    }
    outln!("{head}");
    for n in notes {
        outln!("  note: {n}");
    }
    for r in doc["reasons"].as_array().into_iter().flatten() {
        outln!("  {}: {}", s(&r["code"]), s(&r["message"]));
    }
    if doc.get("command").is_some() {
        print_regression(doc);
    }
    if let Some(share) = doc["share"].as_str() {
        outln!(
            "CI reports on {share} for commit {}",
            doc["commit"].as_str().unwrap_or("(unknown)")
        );
        for n in doc["ci_notes"].as_array().into_iter().flatten() {
            outln!("  {}", s(n));
        }
    }
    if let Some(e) = doc["evidence_problem"].as_str() {
        outln!("evidence unreadable: {e}");
    }
    outln!("evidence:");
    match doc["evidence"].as_object() {
        Some(e) => outln!("  {:<12} {}  {}", "gate", s(&e["digest"]), s(&e["path"])),
        None => outln!("  none recorded (collecting it failed; see the reasons)"),
    }
    for name in ["stdout", "stderr"] {
        for f in doc[name]["files"].as_array().into_iter().flatten() {
            outln!(
                "  {:<12} {}  {}",
                format!("{name} {}", s(&f["part"])),
                s(&f["digest"]),
                s(&f["path"])
            );
        }
    }
    for j in doc["junit"].as_array().into_iter().flatten() {
        if let Some(d) = j["digest"].as_str() {
            outln!("  {:<12} {d}  {}", s(&j["path"]), s(&j["file"]));
        }
    }
}

fn print_regression(doc: &Value) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    // A shell command as written; argv as a JSON list, so its word boundaries show.
    let command = match &doc["command"] {
        Value::String(c) => c.clone(),
        other => other.to_string(),
    };
    outln!("command: {command}");
    outln!("     in: {}", s(&doc["dir"]));
    let p = &doc["process"];
    let secs = p["duration_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
    let how = if let Some(e) = p["spawn_error"].as_str() {
        format!("could not start: {e}")
    } else if p["timed_out"].as_bool() == Some(true) {
        "timed out".to_string()
    } else if let Some(sig) = p["signal"].as_i64() {
        format!("killed by signal {sig}")
    } else if let Some(code) = p["exit_code"].as_i64() {
        format!("exited with status {code}")
    } else {
        "no exit status".to_string()
    };
    outln!(" status: {how} after {secs:.1}s");
    for n in doc["notes"].as_array().into_iter().flatten() {
        outln!("   note: {}", s(n));
    }
    let t = &doc["tests"];
    let failures = doc["failures"].as_array().cloned().unwrap_or_default();
    if doc["junit"].as_array().is_some_and(|j| !j.is_empty()) {
        outln!(
            "  tests: {} ran, {} passed, {} failed, {} skipped",
            t["executed"],
            t["passed"],
            failures.len(),
            t["skipped"]
        );
    }
    if !failures.is_empty() {
        outln!("failed tests:");
        for f in &failures {
            outln!("  {}", s(&f["name"]));
            if let Some(at) = f["location"].as_str() {
                outln!("    at {at}");
            }
            if let Some(m) = f["message"].as_str() {
                outln!("    {m}");
            }
        }
    }
    for r in doc["report_problems"].as_array().into_iter().flatten() {
        outln!("  report: {}: {}", s(&r["code"]), s(&r["message"]));
    }
    for name in ["stdout", "stderr"] {
        let st = &doc[name];
        let bytes = st["bytes"].as_u64().unwrap_or(0);
        let tail = s(&st["tail"]);
        if tail.is_empty() {
            outln!("{name}: {bytes} bytes");
            continue;
        }
        let before = st["bytes_before_tail"].as_u64().unwrap_or(0);
        let mut what = format!("{name}: {bytes} bytes");
        if before > 0 {
            what.push_str(&format!(
                ", the last lines ({before} bytes before them not shown"
            ));
            if let Some(o) = st["omitted"].as_u64().filter(|o| *o > 0) {
                what.push_str(&format!(", {o} of those omitted from the record"));
            }
            what.push(')');
        }
        if st["redacted"].as_u64().is_some_and(|r| r > 0) {
            what.push_str("; secret values cut");
        }
        outln!("{what}:");
        for l in tail.split('\n') {
            outln!("  | {l}");
        }
    }
    if let Some(js) = doc["junit"].as_array().filter(|j| !j.is_empty()) {
        outln!("junit reports:");
        for j in js {
            outln!("  {} ({})", s(&j["path"]), s(&j["state"]));
        }
    }
}

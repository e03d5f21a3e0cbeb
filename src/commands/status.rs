//! `relgate status`: each gate's state in the latest run, derived from the log alone.

use crate::output::{errln, outln};
use std::path::Path;

use serde_json::json;

use super::Format;
use crate::log::{Entry, RunStarted};
use crate::model::Pipeline;
use crate::view::{GateStatus, GateView, RunView};
use crate::{config, exit};

pub fn status(pipeline: &Path, state: Option<&Path>, version: &str, format: Format) -> i32 {
    let loaded = match config::load(pipeline, state) {
        Ok(l) => l,
        Err(diags) => {
            super::config_problems(&diags);
            return exit::CONFIG;
        }
    };
    let policy = crate::digest::policy_digest(&loaded.sources);
    let p = loaded.pipeline;
    let (dir, entries, notes) = match super::read_release_log(&p, version) {
        Ok(log) => (log.dir, log.entries, log.notes),
        Err(e) => {
            errln!("relgate: {e}");
            return e.exit_code();
        }
    };
    let view = crate::view::ReleaseView::new(&entries);
    let Some(latest) = view.latest() else {
        errln!("relgate: the release log holds no run that a signed checkpoint covers");
        for n in &notes {
            errln!("  note: {n}");
        }
        return exit::REFUSED;
    };
    let here = Here {
        p: &p,
        policy: &policy,
        run: latest.start.body,
        entries: &entries,
        dir: &dir,
    };
    let mut gates: Vec<serde_json::Value> = latest
        .gates
        .iter()
        .map(|gv| gate_state(&here, gv))
        .collect();
    awaiting_signoffs(&mut gates);
    match format {
        Format::Json => {
            let doc = document(&here, latest, &notes, &gates);
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Human => print_human(here.run, latest, &notes, &gates),
    }
    exit::SUCCESS
}

/// The release log read, and its latest run.
struct Here<'a> {
    p: &'a Pipeline,
    /// The policy digest of the pipeline as it is now.
    policy: &'a str,
    run: &'a RunStarted,
    entries: &'a [Entry],
    /// The release record.
    dir: &'a Path,
}

/// One gate of the latest run, as JSON: its state and what led to it, and what the next run
/// would do with it.
fn gate_state(here: &Here<'_>, gv: &GateView<'_>) -> serde_json::Value {
    let g = gv.spec;
    let mut state = json!({ "id": g.id, "kind": g.kind.name(), "state": gv.label() });
    let verdict = gv.verdict().map(|v| v.body);
    match gv.status {
        GateStatus::Verdict(v) => {
            state["reasons"] = json!(v.body.reasons);
            state["line"] = json!(v.line());
            if v.body.reused_from.is_some() {
                state["reused"] = json!(true);
            }
            state["evidence"] = json!(v.body.evidence);
        }
        GateStatus::Blocked(b) => state["waiting_on"] = json!(b.body.waiting_on),
        GateStatus::Skipped(s) => state["skipped_because"] = json!(s.body.reason),
        GateStatus::Aborted(_) | GateStatus::Undecided => {}
    }
    // A green automated result: would the next run keep it?
    if let Some(v) =
        verdict.filter(|v| g.kind.reusable() && v.outcome == crate::gates::Outcome::Green)
    {
        let next = super::next_run::block_on(super::next_run::reuse(here.p, here.run, v))
            .unwrap_or_else(|e| super::next_run::NextRun {
                kept: false,
                reason: e.to_string(),
            });
        state["next_run"] = json!(next);
    }
    // A signoff gate: what the approvals folder holds now, as the next run would count it.
    if let crate::model::GateKind::Signoff(_) = g.kind
        && let Some(now) = signoffs_now(here, &g.id)
    {
        state["signoffs"] = now;
    }
    if let (crate::model::GateKind::ChangeRecord(_), Some(d)) =
        (&g.kind, state["evidence"].as_str())
    {
        let record = crate::record::Record::new(here.dir);
        if let Ok(bytes) = crate::record::Blobs::get(&record, d)
            && let Ok(ev) = serde_json::from_slice::<serde_json::Value>(&bytes)
        {
            state["changes"] = ev["changes"].clone();
        }
    }
    state
}

/// A signoff gate's approvals folder as the next run would count it (`None`: nothing to say).
fn signoffs_now(here: &Here<'_>, gate: &str) -> Option<serde_json::Value> {
    let record = crate::record::Record::new(here.dir);
    let next = super::next_run::block_on(super::next_run::signoffs(
        here.p,
        here.policy,
        here.run,
        here.entries,
        &record,
        gate,
    ));
    match next {
        Ok(Some(Ok(pv))) => {
            let mut now = json!(pv.report);
            if let Some(why) = pv.authors_unknown {
                now["authors_unknown"] = json!(why);
            }
            Some(now)
        }
        Ok(Some(Err(e))) => Some(json!({ "error": e })),
        Err(e) => Some(json!({ "error": e.to_string() })),
        Ok(None) => None,
    }
}

/// `--format json`: the latest run and its gates.
fn document(
    here: &Here<'_>,
    latest: &RunView<'_>,
    notes: &[String],
    gates: &[serde_json::Value],
) -> serde_json::Value {
    let run = here.run;
    let notifications: Vec<serde_json::Value> =
        latest.notifications.iter().map(|n| json!(n.body)).collect();
    json!({
        "project": run.project,
        "version": run.version,
        "run": run.run,
        "subject": run.subject,
        "operator": run.operator,
        "decision": latest.finished.map(|f| f.body.decision),
        "message": latest.finished.and_then(|f| f.body.message.clone()),
        "record": here.dir.display().to_string(),
        "notes": notes,
        "gates": gates,
        "notifications": notifications,
    })
}

/// The human form: the run, how it ended, then each gate.
fn print_human(
    run: &RunStarted,
    latest: &RunView<'_>,
    notes: &[String],
    gates: &[serde_json::Value],
) {
    outln!("{} {} (run {})", run.project, run.version, run.run);
    outln!("  subject {}", run.subject);
    for n in notes {
        outln!("  note {}", crate::report::printable(n));
    }
    if let Some(m) = latest.finished.and_then(|f| f.body.message.as_ref()) {
        outln!("  note {m}");
    }
    for n in &latest.notifications {
        outln!(
            "  notified {}",
            crate::report::printable(&crate::report::release::notification_text(n.body))
        );
    }
    if let Some(d) = latest.finished.map(|f| f.body.decision) {
        outln!(
            "  decision {}",
            serde_json::to_value(d)
                .unwrap_or_default()
                .as_str()
                .unwrap_or("")
        );
    }
    for g in gates {
        print_gate(run, g);
    }
}

/// One gate in the human form: its state, reasons, changes, sign-offs, what the next run does
/// with it, what it waits on.
fn print_gate(run: &RunStarted, g: &serde_json::Value) {
    let st = g["state"].as_str().unwrap_or("");
    outln!(
        "  {:<24} {:<16} {}",
        g["id"].as_str().unwrap_or(""),
        g["kind"].as_str().unwrap_or(""),
        st
    );
    let live = g
        .get("signoffs")
        .is_some_and(|s| s.get("ignored").is_some());
    if let Some(rs) = g["reasons"].as_array() {
        // A signoff gate's ignored statements are listed below as they stand now.
        for r in rs.iter().filter(|r| {
            !(live
                && r["code"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("approval-")))
        }) {
            outln!(
                "      {}: {}",
                r["code"].as_str().unwrap_or(""),
                crate::report::printable(r["message"].as_str().unwrap_or(""))
            );
        }
    }
    if st == "red" && g["kind"] == "regression" {
        outln!(
            "      output and failed tests: relgate logs {} {}",
            run.version,
            g["id"].as_str().unwrap_or("")
        );
    }
    if let Some(rows) = g["changes"].as_array() {
        print_changes(rows);
    }
    if let Some(s) = g.get("signoffs") {
        print_signoffs(s);
    }
    if let Some(next) = g.get("next_run") {
        let verb = if next["kept"] == true {
            "kept"
        } else {
            "runs again"
        };
        outln!(
            "      next run: {verb}: {}",
            next["reason"].as_str().unwrap_or("")
        );
    }
    if let Some(w) = g["waiting_on"].as_array() {
        let names: Vec<&str> = w.iter().filter_map(|x| x.as_str()).collect();
        outln!("      waiting on {}", names.join(", "));
    }
}

/// A change-record gate's changes: commit, description, author, reviewers.
fn print_changes(rows: &[serde_json::Value]) {
    for r in rows {
        let short: String = r["hash"].as_str().unwrap_or("").chars().take(10).collect();
        let reviewers: Vec<&str> = r["reviewers"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        outln!(
            "      {short} {} — {}; reviewed by {}",
            crate::report::printable(r["description"].as_str().unwrap_or("")),
            r["author"].as_str().unwrap_or(""),
            if reviewers.is_empty() {
                "nobody".to_string()
            } else {
                reviewers.join(", ")
            }
        );
    }
}

/// The approvals folder of a signoff gate as the next run would count it.
fn print_signoffs(s: &serde_json::Value) {
    if let Some(e) = s["error"].as_str() {
        outln!("      sign-offs now: {e}");
        return;
    }
    let names = |key: &str, field: &str| -> Vec<String> {
        s[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x[field].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let counted = names("counted", "principal");
    let may: Vec<String> = s["may_still_sign"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    outln!(
        "      sign-offs now: {} of {} counted{}; may still sign: {}",
        counted.len(),
        s["quorum"],
        if counted.is_empty() {
            String::new()
        } else {
            format!(" ({})", counted.join(", "))
        },
        if may.is_empty() {
            "nobody".to_string()
        } else {
            may.join(", ")
        }
    );
    for r in names("rejected", "principal") {
        outln!("      rejected by {r}");
    }
    if let Some(p) = s.get("problem").filter(|p| !p.is_null()) {
        outln!(
            "      {}: {}",
            p["code"].as_str().unwrap_or(""),
            p["message"].as_str().unwrap_or("")
        );
    }
    if let Some(why) = s["authors_unknown"].as_str() {
        outln!("      note: the commit authors cannot be told ({why})");
    }
    for i in s["ignored"].as_array().into_iter().flatten() {
        outln!(
            "      ignored {} ({}): {}: {}",
            i["name"].as_str().unwrap_or(""),
            i["signer"].as_str().unwrap_or("unknown signer"),
            i["code"].as_str().unwrap_or(""),
            i["reason"].as_str().unwrap_or("")
        );
    }
}

/// A gate blocked only by gates that await a sign-off (pending, or themselves waiting) is
/// pending too, as `run` reports it: it starts once the sign-off is given.
fn awaiting_signoffs(gates: &mut [serde_json::Value]) {
    loop {
        let pending: Vec<String> = gates
            .iter()
            .filter(|g| g["state"] == "pending")
            .filter_map(|g| g["id"].as_str().map(str::to_string))
            .collect();
        let mut changed = false;
        for g in gates.iter_mut() {
            let waits_on_pending = g["state"] == "blocked"
                && g["waiting_on"].as_array().is_some_and(|w| {
                    !w.is_empty()
                        && w.iter()
                            .all(|n| n.as_str().is_some_and(|n| pending.iter().any(|p| p == n)))
                });
            if waits_on_pending {
                g["state"] = json!("pending");
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

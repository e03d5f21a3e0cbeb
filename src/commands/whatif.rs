//! `relgate replay PATH --policy FILE`: what-if replay ([`crate::whatif`]). Its output is its
//! own — never replay's "verified" line — and so are its exit codes:
//!
//! - 0: the record verifies (under its own policy), and no gate's verdict would change;
//! - 1: at least one gate's verdict would change (each is listed, with its new reasons);
//! - 2: nothing was judged: no trust root, the policy is not valid, or the record does not
//!   verify (evidence that does not hold is not worth judging under any policy).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::Format;
use crate::exit;
use crate::log::RunStarted;
use crate::output::{errln, outln};
use crate::record::{Blobs, Record};
use crate::trust::TrustArgs;
use crate::view::ReleaseView;
use crate::whatif::{self, Recorded, WhatIf};

pub fn run(
    path: &Path,
    trust: &TrustArgs,
    pipeline: &Path,
    policy_file: &Path,
    format: Format,
    access: &crate::folder::Access,
) -> i32 {
    let loaded = match crate::config::load_policy(policy_file) {
        Ok(l) => l,
        Err(diags) => {
            super::config_problems(&diags);
            errln!(
                "relgate: what-if: nothing was judged: {} problem(s) in {}",
                diags.0.len(),
                policy_file.display()
            );
            return exit::CONFIG;
        }
    };
    let opened = match super::report::open("what-if", path, trust, pipeline, access) {
        Ok(o) => o,
        // A log that cannot even be read is "nothing judged" too, not a changed verdict.
        Err(code) if code == exit::REFUSED => {
            errln!("relgate: what-if: nothing was judged");
            return exit::CONFIG;
        }
        Err(code) => return code,
    };
    if let Some(p) = &opened.replayed.problem {
        errln!(
            "relgate: what-if: nothing was judged: the record does not verify under its own \
             policy ({}{}); run `relgate replay {}` for the whole story",
            if p.line > 0 {
                format!("log.jsonl line {}: ", p.line)
            } else {
                String::new()
            },
            p.message,
            path.display()
        );
        return exit::CONFIG;
    }
    let Ok(trusted) = &opened.trusted else {
        errln!("relgate: what-if: nothing was judged: nothing in the record is vouched for");
        return exit::CONFIG;
    };
    let (relied, _) = crate::report::release::relied_on(&opened.entries, Some(trusted));
    let view = ReleaseView::new(&relied);
    let Some(run) = view.latest() else {
        errln!("relgate: what-if: nothing was judged: the record holds no run");
        return exit::CONFIG;
    };
    let started: &RunStarted = run.start.body;
    let record = Record::new(&opened.dir);
    let signers = started
        .signers
        .as_deref()
        .and_then(|d| record.get(d).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let mut first_staged: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &view.runs {
        first_staged
            .entry(&r.start.body.subject)
            .or_insert(r.start.body.started_at);
    }
    let recorded_policy = crate::digest::policy_digest(&started.sources);
    let result = whatif::judge(
        &Recorded {
            run,
            record: &record,
            signers: signers.as_deref(),
            policy: &recorded_policy,
            subject_since: first_staged
                .get(started.subject.as_str())
                .copied()
                .unwrap_or(started.started_at),
        },
        &loaded.pipeline,
    );
    let policy_digest = crate::digest::policy_digest(&loaded.sources);
    match format {
        Format::Json => print_json(
            &result,
            started,
            &recorded_policy,
            policy_file,
            &policy_digest,
            &opened.replayed,
        ),
        Format::Human => print_human(
            &result,
            started,
            &recorded_policy,
            policy_file,
            &policy_digest,
        ),
    }
    if result.changed() == 0 {
        exit::SUCCESS
    } else {
        exit::REFUSED
    }
}

fn print_human(
    w: &WhatIf,
    started: &RunStarted,
    recorded_policy: &str,
    policy_file: &Path,
    policy_digest: &str,
) {
    outln!(
        "relgate: what-if: {} {}, run {} ({}), its recorded evidence judged again under {} ({policy_digest})",
        started.project,
        started.version,
        w.run,
        w.recorded_decision,
        policy_file.display()
    );
    outln!(
        "  not a verification: the release was gated under its recorded policy \
         ({recorded_policy}); replay found the record intact under that one. This only says \
         how the same evidence reads under another."
    );
    for g in w.gates.iter().filter(|g| g.changed) {
        outln!("  {}: {} -> {}", g.gate, g.recorded.label(), g.now.label());
        for (code, message) in g.now.reasons() {
            outln!("      {code}: {}", crate::report::printable(&message));
        }
    }
    if w.changed() == 0 {
        outln!(
            "  no verdict would change ({} gate(s) judged again)",
            w.gates.len()
        );
    } else {
        outln!(
            "  {} of {} gate(s) would change",
            w.changed(),
            w.gates.len()
        );
    }
    outln!("  decision: {} -> {}", w.recorded_decision, w.decision);
}

fn print_json(
    w: &WhatIf,
    started: &RunStarted,
    recorded_policy: &str,
    policy_file: &Path,
    policy_digest: &str,
    replayed: &crate::replay::ReplayReport,
) {
    let doc = json!({
        "what_if": true,
        // Spelled out for scripts: this is never a verification under `policy`.
        "verified_under_policy": false,
        "project": started.project,
        "version": started.version,
        "run": w.run,
        "recorded_policy": recorded_policy,
        "policy": { "file": policy_file.display().to_string(), "digest": policy_digest },
        "record": replayed,
        "gates": w.gates,
        "changed": w.changed(),
        "decision": { "recorded": w.recorded_decision, "now": w.decision },
    });
    outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

//! The report as Markdown (CommonMark with GitHub's tables): the same sections and facts as the
//! HTML, every text from the record through [`super::escape::md`].

use std::io::{self, Write};

use super::escape::{md as esc, md_code as code};
use super::html::short;
use super::{EvidenceRef, FORMAT_VERSION, ReleaseReport, Reporter, Verification};

/// The Markdown reporter.
pub struct Markdown;

fn opt(v: &Option<String>) -> String {
    v.as_deref().map(esc).unwrap_or_else(|| "—".into())
}

fn table(out: &mut dyn Write, head: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    writeln!(out, "| {} |", head.join(" | "))?;
    writeln!(out, "|{}", "---|".repeat(head.len()))?;
    for r in rows {
        writeln!(out, "| {} |", r.join(" | "))?;
    }
    writeln!(out)
}

fn facts(out: &mut dyn Write, rows: &[(&str, String)]) -> io::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(k, v)| vec![k.to_string(), v.clone()])
        .collect();
    table(out, &["", ""], &rows)
}

/// A digest, linked to its file when the report sits beside `evidence/`.
fn digest(d: &str, shown: &str, links: bool) -> String {
    if links && crate::digest::is_hex_digest(d) {
        format!("[{}](evidence/{d})", code(shown))
    } else {
        code(shown)
    }
}

fn reasons(rs: &[(String, String)]) -> String {
    rs.iter()
        .map(|(c, m)| format!("{}: {}", code(c), esc(m)))
        .collect::<Vec<_>>()
        .join("<br>")
}

impl Reporter for Markdown {
    fn write(&self, r: &ReleaseReport, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "# {} {}: {}\n",
            esc(&r.project),
            esc(&r.version),
            esc(&r.release.decision)
        )?;
        writeln!(
            out,
            "Release report of the record's run {}.\n",
            r.deciding_run
        )?;
        if let Some(why) = &r.unauthenticated {
            writeln!(
                out,
                "> **UNAUTHENTICATED**: nothing in this report is vouched for by the release \
                 signer. {}\n",
                esc(why)
            )?;
        }
        if let Verification::Replayed(rp) = &r.verification
            && !rp.ok
        {
            writeln!(
                out,
                "> **The record does not verify**: replay refused it (see Replay below).\n"
            )?;
        }
        release(out, r)?;
        replay(out, r)?;
        timeline(out, r)?;
        gates(out, r)?;
        evidence(out, r)?;
        signoffs(out, r)?;
        segregation(out, r)?;
        for c in &r.changes {
            writeln!(
                out,
                "## Change record: {} ({})\n\nrange {}\n",
                esc(&c.gate),
                esc(&c.verdict),
                opt(&c.range)
            )?;
            if let Some(e) = &c.error {
                writeln!(out, "{}\n", esc(e))?;
            }
            let rows: Vec<Vec<String>> = c
                .rows
                .iter()
                .map(|row| {
                    vec![
                        code(&row.commit),
                        esc(&row.description),
                        esc(&row.author),
                        esc(&row.reviewers.join(", ")),
                        esc(&row.tests.join(", ")),
                        esc(&row.date),
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "commit",
                    "description",
                    "author",
                    "reviewed by",
                    "tests",
                    "date",
                ],
                &rows,
            )?;
        }
        findings(out, r)?;
        scans(out, r)?;
        if !r.notes.is_empty() {
            writeln!(out, "## Notes\n")?;
            for n in &r.notes {
                writeln!(out, "- {}", esc(n))?;
            }
            writeln!(out)?;
        }
        writeln!(
            out,
            "---\nrelgate release report, format {FORMAT_VERSION}; every time shown is one the \
             record holds (UTC)."
        )
    }
}

fn release(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    let f = &r.release;
    writeln!(out, "## Release\n")?;
    let key = match (&f.key_fingerprint, f.throwaway_key) {
        (Some(k), true) => format!("{} (a dry run's throwaway key)", code(k)),
        (Some(k), false) => code(k),
        (None, _) => "—".into(),
    };
    let checkpoint = match &r.checkpoint {
        Some(c) => format!(
            "{} lines, head {}, {}, signed by {}",
            c.size,
            code(&c.head),
            esc(&c.time),
            c.signed_by
                .as_deref()
                .map(code)
                .unwrap_or_else(|| "nobody (unsigned)".into())
        ),
        None => "none".into(),
    };
    facts(
        out,
        &[
            ("project", esc(&r.project)),
            ("version", esc(&r.version)),
            ("subject", code(&f.subject)),
            ("decision", format!("**{}**", esc(&f.decision))),
            ("when", opt(&f.decided_at)),
            ("operator", opt(&f.operator)),
            ("release signer", opt(&f.signer)),
            ("key fingerprint", key),
            ("checkpoint", checkpoint),
            ("published to", opt(&f.published_to)),
            ("dry run", if f.dry_run { "yes" } else { "no" }.into()),
            ("relgate", esc(&f.tool_version)),
        ],
    )?;
    let rows: Vec<Vec<String>> = f
        .artefacts
        .iter()
        .map(|(p, size, sha)| vec![esc(p), size.to_string(), code(sha)])
        .collect();
    table(out, &["artefact", "bytes", "sha256"], &rows)
}

fn replay(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    writeln!(out, "## Replay\n")?;
    match &r.verification {
        Verification::Embedded { lines, head } => writeln!(
            out,
            "This report is part of the published release it describes, rendered from its \
             record (log lines 1–{lines}, chain head {}). `relgate replay` of the release folder \
             judges every verdict again, checks the signed checkpoints under a trust root given \
             from outside, renders this report again from the record and refuses the release \
             unless this file is that rendering, byte for byte.\n",
            code(head)
        ),
        Verification::Replayed(rp) => {
            let said = match &rp.problem {
                None => format!(
                    "**replay verified**: {} lines, {} run(s), {} verdict(s) judged again from \
                     their evidence{}{}",
                    rp.lines,
                    rp.runs,
                    rp.verdicts_rejudged,
                    if rp.published {
                        ", every publish decided with every gate green"
                    } else {
                        ""
                    },
                    if rp.folder_checked {
                        "; the published files are exactly the gated ones"
                    } else {
                        ""
                    }
                ),
                Some(p) if p.line > 0 => format!(
                    "**replay failed** at log line {}: {}",
                    p.line,
                    esc(&p.message)
                ),
                Some(p) => format!("**replay failed**: {}", esc(&p.message)),
            };
            writeln!(out, "{said}\n")?;
            facts(
                out,
                &[
                    ("record", esc(&rp.record.display().to_string())),
                    ("trust root", esc(&rp.trust_root)),
                    (
                        "checkpoints",
                        format!(
                            "{}, the newest signed by {}",
                            rp.checkpoints,
                            opt(&rp.checkpoint_signer)
                        ),
                    ),
                ],
            )?;
            for n in &rp.notes {
                writeln!(out, "- {}", esc(n))?;
            }
            if !rp.notes.is_empty() {
                writeln!(out)?;
            }
            Ok(())
        }
    }
}

fn timeline(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    writeln!(out, "## Timeline of runs\n")?;
    let rows: Vec<Vec<String>> = r
        .runs
        .iter()
        .map(|run| {
            let mut decision = run.decision.as_deref().map_or("unfinished".into(), esc);
            if let Some(c) = run.exit_code {
                decision.push_str(&format!(" (exit {c})"));
            }
            if let Some(m) = &run.message {
                decision.push_str(&format!("<br>{}", esc(m)));
            }
            for n in &run.notifications {
                decision.push_str(&format!("<br>notified: {}", esc(n)));
            }
            let mut subject = code(&short(&run.subject));
            if run.subject_changed {
                subject.push_str("<br>(new artefacts)");
            }
            vec![
                format!(
                    "run {}{}",
                    run.run,
                    if run.dry_run { " (dry run)" } else { "" }
                ),
                esc(&run.started),
                opt(&run.operator),
                subject,
                esc(&run.tally),
                decision,
                opt(&run.ended),
            ]
        })
        .collect();
    table(
        out,
        &[
            "run", "started", "operator", "subject", "gates", "decision", "ended",
        ],
        &rows,
    )
}

fn gates(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    writeln!(out, "## Gates of run {}\n", r.deciding_run)?;
    let rows: Vec<Vec<String>> = r
        .gates
        .iter()
        .map(|g| {
            let mut verdict = format!("**{}**", esc(&g.verdict));
            if let Some(l) = g.line {
                verdict.push_str(&format!(" (line {l})"));
            }
            if let Some(from) = g.kept_from {
                verdict.push_str(&format!("<br>kept from line {from}"));
            }
            vec![
                format!("{} ({})", esc(&g.id), esc(&g.kind)),
                verdict,
                opt(&g.duration),
                reasons(&g.reasons),
                g.evidence
                    .first()
                    .map(|e| digest(&e.digest, &short(&e.digest), r.evidence_links))
                    .unwrap_or_else(|| "—".into()),
            ]
        })
        .collect();
    table(
        out,
        &["gate", "verdict", "time", "reasons", "evidence"],
        &rows,
    )
}

fn evidence(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    writeln!(
        out,
        "## Evidence of run {}\n\nEach gate's evidence document, then every file it names, by \
         SHA-256{}.\n",
        r.deciding_run,
        if r.evidence_links {
            " (each links to its file in evidence/)"
        } else {
            " (the files are `evidence/<sha256>` in the record)"
        }
    )?;
    let rows: Vec<Vec<String>> = r
        .gates
        .iter()
        .flat_map(|g| {
            g.evidence.iter().map(|e: &EvidenceRef| {
                vec![
                    esc(&g.id),
                    esc(&e.label),
                    digest(&e.digest, &e.digest, r.evidence_links),
                ]
            })
        })
        .collect();
    table(out, &["gate", "file", "sha256"], &rows)
}

fn signoffs(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    if r.signoffs.is_empty() {
        return Ok(());
    }
    writeln!(out, "## Sign-offs\n")?;
    for s in &r.signoffs {
        writeln!(
            out,
            "### {} ({})\n\nrole {}, quorum {}; may still sign: {}\n",
            esc(&s.gate),
            esc(&s.verdict),
            esc(&s.role),
            s.quorum,
            if s.may_still_sign.is_empty() {
                "nobody".into()
            } else {
                esc(&s.may_still_sign.join(", "))
            }
        )?;
        if let Some((c, m)) = &s.problem {
            writeln!(out, "{}: {}\n", code(c), esc(m))?;
        }
        let statements = |list: &[super::Statement]| -> Vec<Vec<String>> {
            list.iter()
                .map(|st| {
                    vec![
                        esc(&st.principal),
                        code(&st.key),
                        esc(&st.time),
                        esc(&st.comment),
                        esc(&st.name),
                    ]
                })
                .collect()
        };
        let head = ["principal", "key fingerprint", "time", "comment", "file"];
        writeln!(out, "Counted ({}):\n", s.counted.len())?;
        table(out, &head, &statements(&s.counted))?;
        if !s.rejected.is_empty() {
            writeln!(out, "Rejected ({}):\n", s.rejected.len())?;
            table(out, &head, &statements(&s.rejected))?;
        }
        writeln!(out, "Ignored ({}):\n", s.ignored.len())?;
        let rows: Vec<Vec<String>> = s
            .ignored
            .iter()
            .map(|i| vec![esc(&i.name), opt(&i.signer), code(&i.code), esc(&i.reason)])
            .collect();
        table(out, &["file", "signer", "code", "reason"], &rows)?;
    }
    Ok(())
}

fn segregation(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    let s = &r.segregation;
    writeln!(out, "## Segregation of duties\n")?;
    let authors = match &s.authors {
        Some(a) if a.is_empty() => format!("none ({})", esc(&s.authors_source)),
        Some(a) => format!("{} ({})", esc(&a.join(", ")), esc(&s.authors_source)),
        None => esc(&s.authors_source),
    };
    facts(
        out,
        &[
            ("authors", authors),
            ("operator", opt(&s.operator)),
            ("release signer", opt(&s.signer)),
        ],
    )?;
    if !s.checks.is_empty() {
        let rows: Vec<Vec<String>> = s
            .checks
            .iter()
            .map(|(rule, got)| vec![esc(rule), esc(got)])
            .collect();
        table(out, &["checked", "found"], &rows)?;
    }
    Ok(())
}

fn findings(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    for f in &r.findings {
        writeln!(
            out,
            "## Security findings: {} ({})\n",
            esc(&f.gate),
            esc(&f.verdict)
        )?;
        let rows: Vec<Vec<String>> = f
            .rows
            .iter()
            .map(|x| {
                let severity = match (&x.severity, &x.severity_source) {
                    (Some(s), Some(src)) => format!("{} ({})", esc(s), esc(src)),
                    (Some(s), None) => esc(s),
                    _ => "—".into(),
                };
                let verdict = if x.verdict.is_empty() {
                    "ok".to_string()
                } else {
                    x.verdict
                        .iter()
                        .map(|c| code(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                vec![
                    format!("{} ({})", esc(&x.finding), esc(&x.tool)),
                    severity,
                    format!("{}: {}", esc(&x.location), esc(&x.message)),
                    opt(&x.owner),
                    opt(&x.ticket),
                    opt(&x.due),
                    opt(&x.sla),
                    opt(&x.status),
                    verdict,
                ]
            })
            .collect();
        table(
            out,
            &[
                "finding", "severity", "where", "owner", "ticket", "due", "SLA", "status",
                "verdict",
            ],
            &rows,
        )?;
        for (c, m) in f.reasons.iter().chain(&f.warnings) {
            writeln!(out, "- {}: {}", code(c), esc(m))?;
        }
        if !f.reasons.is_empty() || !f.warnings.is_empty() {
            writeln!(out)?;
        }
    }
    Ok(())
}

fn scans(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    for s in &r.scans {
        writeln!(
            out,
            "## Virus scan: {} ({})\n",
            esc(&s.gate),
            esc(&s.verdict)
        )?;
        let mut rows = vec![
            ("clamd", esc(&s.clamd)),
            ("engine", opt(&s.engine)),
            (
                "database version",
                s.db_version.map_or("—".into(), |v| v.to_string()),
            ),
            ("database date", opt(&s.db_date)),
            ("database age at the run", opt(&s.db_age)),
            ("max signature age", opt(&s.max_signature_age)),
        ];
        if let Some(e) = &s.scanner_error {
            rows.push(("scanner error", esc(e)));
        }
        facts(out, &rows)?;
        let files: Vec<Vec<String>> = s
            .files
            .iter()
            .map(|f| {
                vec![
                    esc(&f.path),
                    esc(&f.method),
                    f.size.to_string(),
                    esc(&f.result),
                ]
            })
            .collect();
        table(out, &["file", "method", "bytes", "result"], &files)?;
    }
    Ok(())
}

//! The report as one self-contained HTML file: inline CSS, no script, no external asset (a
//! Content-Security-Policy forbids them should anything slip through), laid out for A4 paper.
//! Every text from the record goes through [`super::escape::html`].
//!
//! Written by hand rather than through a template engine: the page is a dozen tables, the
//! escaping rule is ours (controls and bidirectional characters shown, not only `<>&"'`), and
//! a template crate would be one more dependency whose auto-escaping we would have to trust.

use std::io::{self, Write};

use super::escape::html as esc;
use super::{EvidenceRef, FORMAT_VERSION, ReleaseReport, Reporter, Verification};

/// The HTML reporter.
pub struct Html;

/// Inlined into the page: a report has no external asset.
const STYLE: &str = include_str!("report.css");

/// A verdict or decision as a styled word; the class comes from a fixed list, never from text.
fn word(label: &str) -> String {
    let class = match label {
        "green" | "published" | "OK" => "green",
        "red" | "refused" | "aborted" => "red",
        "pending" | "blocked" | "running-or-interrupted" | "unfinished" => "pending",
        _ => "muted",
    };
    format!("<span class=\"v {class}\">{}</span>", esc(label))
}

fn opt(v: &Option<String>) -> String {
    v.as_deref().map(esc).unwrap_or_else(|| "—".into())
}

fn code(v: &str) -> String {
    format!("<code>{}</code>", esc(v))
}

fn table(out: &mut dyn Write, head: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    write!(out, "<table><thead><tr>")?;
    for h in head {
        write!(out, "<th>{h}</th>")?;
    }
    writeln!(out, "</tr></thead><tbody>")?;
    for r in rows {
        write!(out, "<tr>")?;
        for c in r {
            write!(out, "<td>{c}</td>")?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</tbody></table>")
}

fn facts(out: &mut dyn Write, rows: &[(&str, String)]) -> io::Result<()> {
    writeln!(out, "<table class=\"facts\"><tbody>")?;
    for (k, v) in rows {
        writeln!(out, "<tr><th>{k}</th><td>{v}</td></tr>")?;
    }
    writeln!(out, "</tbody></table>")
}

/// A digest, linked to its file when the report sits beside `evidence/`.
fn digest(d: &str, shown: &str, links: bool) -> String {
    if links {
        format!(
            "<a href=\"evidence/{}\"><code>{}</code></a>",
            esc(d),
            esc(shown)
        )
    } else {
        format!("<code>{}</code>", esc(shown))
    }
}

/// The first 12 hex digits of a digest (after its `sha256:`, if any): enough to tell files
/// apart in a table; the full digest is shown elsewhere in the report.
pub(super) fn short(d: &str) -> String {
    let (prefix, hex) = d.split_at(if d.starts_with("sha256:") { 7 } else { 0 });
    format!("{prefix}{}…", hex.chars().take(12).collect::<String>())
}

fn reasons(rs: &[(String, String)]) -> String {
    rs.iter()
        .map(|(c, m)| format!("{}: {}", code(c), esc(m)))
        .collect::<Vec<_>>()
        .join("<br>")
}

impl Reporter for Html {
    fn write(&self, r: &ReleaseReport, out: &mut dyn Write) -> io::Result<()> {
        let title = format!("{} {}", r.project, r.version);
        writeln!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
        )?;
        writeln!(
            out,
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'\">"
        )?;
        writeln!(
            out,
            "<meta name=\"generator\" content=\"relgate\">\n\
             <meta name=\"relgate-report-format\" content=\"{FORMAT_VERSION}\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        )?;
        writeln!(
            out,
            "<title>{}: {} — release report</title>\n<style>\n{STYLE}</style>\n</head>\n<body>",
            esc(&title),
            esc(&r.release.decision)
        )?;
        writeln!(
            out,
            "<header><h1>{} {}</h1><p class=\"muted\">Release report of the record's run {}</p></header>",
            esc(&title),
            word(&r.release.decision),
            r.deciding_run
        )?;
        if let Some(why) = &r.unauthenticated {
            writeln!(
                out,
                "<div class=\"banner\">UNAUTHENTICATED: nothing in this report is vouched for by \
                 the release signer. {}</div>",
                esc(why)
            )?;
        }
        if let Verification::Replayed(rp) = &r.verification
            && !rp.ok
        {
            writeln!(
                out,
                "<div class=\"banner\">The record does not verify: replay refused it (see \
                 Replay below).</div>"
            )?;
        }
        release(out, r)?;
        replay(out, r)?;
        timeline(out, r)?;
        gates(out, r)?;
        evidence(out, r)?;
        signoffs(out, r)?;
        segregation(out, r)?;
        changes(out, r)?;
        findings(out, r)?;
        scans(out, r)?;
        if !r.notes.is_empty() {
            writeln!(out, "<h2>Notes</h2><ul>")?;
            for n in &r.notes {
                writeln!(out, "<li>{}</li>", esc(n))?;
            }
            writeln!(out, "</ul>")?;
        }
        writeln!(
            out,
            "<footer>relgate release report, format {FORMAT_VERSION}; every time shown is one the \
             record holds (UTC).</footer>\n</body>\n</html>"
        )
    }
}

fn release(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    let f = &r.release;
    writeln!(out, "<h2>Release</h2>")?;
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
            ("decision", word(&f.decision)),
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
    writeln!(out, "<h2>Replay</h2>")?;
    match &r.verification {
        Verification::Embedded { lines, head } => writeln!(
            out,
            "<p>This report is part of the published release it describes, rendered from its \
             record (log lines 1–{lines}, chain head {}). <code>relgate replay</code> of the \
             release folder judges every verdict again, checks the signed checkpoints under a \
             trust root given from outside, renders this report again from the record and \
             refuses the release unless this file is that rendering, byte for byte.</p>",
            code(head)
        ),
        Verification::Replayed(rp) => {
            let class = if rp.ok { "ok" } else { "banner" };
            let said = match &rp.problem {
                None => format!(
                    "replay verified: {} lines, {} run(s), {} verdict(s) judged again from their \
                     evidence{}{}",
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
                Some(p) if p.line > 0 => {
                    format!("replay failed at log line {}: {}", p.line, esc(&p.message))
                }
                Some(p) => format!("replay failed: {}", esc(&p.message)),
            };
            writeln!(out, "<div class=\"{class}\">{said}</div>")?;
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
            if !rp.notes.is_empty() {
                writeln!(out, "<ul>")?;
                for n in &rp.notes {
                    writeln!(out, "<li>{}</li>", esc(n))?;
                }
                writeln!(out, "</ul>")?;
            }
            Ok(())
        }
    }
}

fn timeline(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    writeln!(out, "<h2>Timeline of runs</h2>")?;
    let rows: Vec<Vec<String>> = r
        .runs
        .iter()
        .map(|run| {
            let mut decision = run
                .decision
                .as_deref()
                .map(word)
                .unwrap_or_else(|| word("unfinished"));
            if let Some(code) = run.exit_code {
                decision.push_str(&format!(" (exit {code})"));
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
    writeln!(out, "<h2>Gates of run {}</h2>", r.deciding_run)?;
    let rows: Vec<Vec<String>> = r
        .gates
        .iter()
        .map(|g| {
            let mut verdict = word(&g.verdict);
            if let Some(l) = g.line {
                verdict.push_str(&format!("<br><span class=\"muted\">line {l}</span>"));
            }
            if let Some(from) = g.kept_from {
                verdict.push_str(&format!("<br>kept from line {from}"));
            }
            vec![
                format!(
                    "{}<br><span class=\"muted\">{}</span>",
                    esc(&g.id),
                    esc(&g.kind)
                ),
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
        "<h2>Evidence of run {}</h2><p>Each gate's evidence document, then every file it names, \
         by SHA-256{}.</p>",
        r.deciding_run,
        if r.evidence_links {
            " (each links to its file in evidence/)"
        } else {
            " (the files are evidence/&lt;sha256&gt; in the record)"
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
    writeln!(out, "<h2>Sign-offs</h2>")?;
    for s in &r.signoffs {
        writeln!(
            out,
            "<h3>{} {}</h3><p>role {}, quorum {}; may still sign: {}</p>",
            esc(&s.gate),
            word(&s.verdict),
            esc(&s.role),
            s.quorum,
            if s.may_still_sign.is_empty() {
                "nobody".into()
            } else {
                esc(&s.may_still_sign.join(", "))
            }
        )?;
        if let Some((c, m)) = &s.problem {
            writeln!(out, "<p class=\"red\">{}: {}</p>", code(c), esc(m))?;
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
        writeln!(out, "<p>Counted ({}):</p>", s.counted.len())?;
        table(out, &head, &statements(&s.counted))?;
        if !s.rejected.is_empty() {
            writeln!(out, "<p>Rejected ({}):</p>", s.rejected.len())?;
            table(out, &head, &statements(&s.rejected))?;
        }
        writeln!(out, "<p>Ignored ({}):</p>", s.ignored.len())?;
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
    writeln!(out, "<h2>Segregation of duties</h2>")?;
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

fn changes(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    for c in &r.changes {
        writeln!(
            out,
            "<h2>Change record: {} {}</h2><p>range {}</p>",
            esc(&c.gate),
            word(&c.verdict),
            opt(&c.range)
        )?;
        if let Some(e) = &c.error {
            writeln!(out, "<p class=\"red\">{}</p>", esc(e))?;
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
    Ok(())
}

fn findings(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    for f in &r.findings {
        writeln!(
            out,
            "<h2>Security findings: {} {}</h2>",
            esc(&f.gate),
            word(&f.verdict)
        )?;
        let rows: Vec<Vec<String>> = f
            .rows
            .iter()
            .map(|x| {
                let severity = match (&x.severity, &x.severity_source) {
                    (Some(s), Some(src)) => format!("{}<br>({})", esc(s), esc(src)),
                    (Some(s), None) => esc(s),
                    _ => "—".into(),
                };
                let verdict = if x.verdict.is_empty() {
                    word("green")
                } else {
                    x.verdict
                        .iter()
                        .map(|c| format!("<span class=\"red\">{}</span>", code(c)))
                        .collect::<Vec<_>>()
                        .join("<br>")
                };
                vec![
                    format!(
                        "{}<br><span class=\"muted\">{}</span>",
                        esc(&x.finding),
                        esc(&x.tool)
                    ),
                    severity,
                    format!("{}<br>{}", esc(&x.location), esc(&x.message)),
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
        if !f.reasons.is_empty() {
            writeln!(out, "<p>{}</p>", reasons(&f.reasons))?;
        }
        if !f.warnings.is_empty() {
            writeln!(out, "<p class=\"muted\">{}</p>", reasons(&f.warnings))?;
        }
    }
    Ok(())
}

fn scans(out: &mut dyn Write, r: &ReleaseReport) -> io::Result<()> {
    for s in &r.scans {
        writeln!(
            out,
            "<h2>Virus scan: {} {}</h2>",
            esc(&s.gate),
            word(&s.verdict)
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
            rows.push((
                "scanner error",
                format!("<span class=\"red\">{}</span>", esc(e)),
            ));
        }
        facts(out, &rows)?;
        let files: Vec<Vec<String>> = s
            .files
            .iter()
            .map(|f| {
                let result = if f.result == "OK" {
                    word("OK")
                } else {
                    format!("<span class=\"red\">{}</span>", esc(&f.result))
                };
                vec![esc(&f.path), esc(&f.method), f.size.to_string(), result]
            })
            .collect();
        table(out, &["file", "method", "bytes", "result"], &files)?;
    }
    Ok(())
}

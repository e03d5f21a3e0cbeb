//! The pure part of the security review: recorded bytes in, findings table and reasons out.
//! Shared by the judge, the collect step (for the table) and `relgate findings`.

use time::{Date, OffsetDateTime};

use super::matching::{Cover, Space, match_register};
use super::pentest::{Pentests, parse_pentests};
use super::register::{Entry, Register, Status, parse_register};
use super::severity::{Assessed, assess};
use super::table::FindingRow;
use super::{RecordedFile, SecurityReviewEvidence};
use crate::gates::{Code, Reason};
use crate::model::SecurityReviewSpec;
use crate::record::Blobs;
use crate::sarif::Finding;

const DAY: i64 = 86_400;

/// Everything the gate concluded.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub rows: Vec<FindingRow>,
    /// Each makes the gate red.
    pub reasons: Vec<Reason>,
    /// Worth a look, but not red.
    pub warnings: Vec<Reason>,
}

/// The date of `started_at` (UTC): the review's "today".
pub fn today(started_at: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(started_at)
        .map(|t| t.date())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH.date())
}

/// Judge the recorded files. Reads nothing but its arguments.
pub fn analyse(
    spec: &SecurityReviewSpec,
    ev: &SecurityReviewEvidence,
    blobs: &dyn Blobs,
    started_at: i64,
) -> Analysis {
    let mut a = Analysis::default();
    let today = today(started_at);

    if spec.findings.is_empty() {
        a.red(
            Code::FindingsMissing,
            "no `findings` files are configured".into(),
        );
    }
    for glob in &ev.unmatched {
        a.red(
            Code::FindingsMissing,
            format!("no SARIF file matches {glob:?}: did the scanner run?"),
        );
    }

    // Each finding with the codes of the problems its file reports about it.
    let mut findings: Vec<(&RecordedFile, Finding, Vec<String>)> = Vec::new();
    for file in &ev.sarif {
        let Some(bytes) = a.bytes(file, Code::SarifUnreadable, blobs) else {
            continue;
        };
        match crate::sarif::parse(&bytes) {
            Ok(report) => {
                // What the file says about its own scan, and results that contradict
                // themselves: red whatever the findings are.
                for p in &report.problems {
                    a.red(p.kind.code(), format!("{}: {}", file.path, p.message));
                }
                for f in report.findings {
                    let codes = report
                        .problems
                        .iter()
                        .filter(|p| p.result == Some((f.run, f.index)))
                        .map(|p| p.kind.code().to_string())
                        .collect();
                    findings.push((file, f, codes));
                }
            }
            Err(e) => {
                a.red(e.code(), format!("{}: {e}", file.path));
            }
        }
    }

    let reg_path = ev.register.path.as_str();
    let register = match a.bytes(&ev.register, Code::RegisterInvalid, blobs) {
        Some(bytes) => parse_register(reg_path, &bytes),
        None => Register::default(),
    };
    for d in &register.diagnostics {
        a.red(Code::RegisterInvalid, one_line(d));
    }

    // Without a register every finding would read as unassigned: say once why instead.
    let no_register = (!register.parsed).then(|| {
        a.reasons
            .last()
            .map(|r| r.code.clone())
            .unwrap_or_else(|| "register-invalid".into())
    });

    // The pentest ids are a namespace of their own; read them now (problems with the file
    // are reported with the pentest checks below).
    let pentest_ids: Vec<String> = match (&spec.pentest, &ev.pentest) {
        (Some(_), Some(file)) => file
            .digest
            .as_ref()
            .and_then(|d| blobs.get(d).ok())
            .map(|b| parse_pentests(&file.path, &b).records)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|p| p.findings.into_iter().map(|(id, _)| id))
            .collect(),
        _ => Vec::new(),
    };
    let matches = match_register(
        &register,
        &findings.iter().map(|(_, f, _)| f).collect::<Vec<_>>(),
        &pentest_ids.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    for (i, why) in &matches.ambiguous {
        let e = &register.entries[*i];
        a.red(
            Code::RegisterAmbiguous,
            format!(
                "entry {} for {:?} is ambiguous: {why}",
                e.label(reg_path),
                e.finding
            ),
        );
    }
    for (k, (file, f, problem_codes)) in findings.iter().enumerate() {
        let assessed = assess(f);
        let cover = matches.findings.get(k).cloned().unwrap_or(Cover::None);
        let matched = cover.entry();
        let mut codes = problem_codes.clone();
        let name = format!("{} ({}, {})", f.label(), f.tool, assessed.describe());
        if !assessed.unreadable.is_empty() {
            codes.push(a.red(
                Code::SeverityUnreadable,
                format!(
                    "{name}: {} (a severity that cannot be read could be the highest)",
                    assessed.unreadable.join("; ")
                ),
            ));
        }
        match matched {
            None if no_register.is_some() => codes.extend(no_register.clone()),
            None => match &cover {
                Cover::Contested(entries) => {
                    let labels: Vec<String> = entries
                        .iter()
                        .map(|i| register.entries[*i].label(reg_path))
                        .collect();
                    codes.push(a.red(
                        Code::RegisterAmbiguous,
                        format!(
                            "{name}: entries {} all match it, none more specifically: keep one",
                            labels.join(", ")
                        ),
                    ));
                }
                _ => codes.push(a.red(
                    Code::FindingUnassigned,
                    format!(
                        "{name}: no entry in {reg_path} names its rule id, guid or a fingerprint"
                    ),
                )),
            },
            // Reported once for the entry; nothing else can be judged on it.
            Some(i) if matches.ambiguous.contains_key(&i) => {
                codes.push("register-ambiguous".into());
            }
            Some(i) => {
                let e = &register.entries[i];
                let entry = e.label(reg_path);
                let missing = e.missing_assignment();
                if !missing.is_empty() {
                    codes.push(a.red(
                        Code::FindingUnassigned,
                        format!("{name}: entry {entry} lacks {}", missing.join(", ")),
                    ));
                }
                // The scanner still reports it, so it is not fixed, whatever the entry says:
                // judged as open (overdue and block apply), and red for the contradiction.
                let claims_fixed = e.status == Some(Status::Fixed);
                if claims_fixed {
                    codes.push(a.red(
                        Code::FixedStillReported,
                        format!(
                            "{name}: entry {entry} says fixed, but the scanner still reports it; judged as open"
                        ),
                    ));
                }
                if let Some(code) = a.overdue(e, &name, &entry, today, true) {
                    codes.push(code);
                }
                if let (Some(opened), Some(due), Some(sla)) = (
                    e.opened,
                    e.due,
                    spec.sla_secs.get(assessed.severity.as_str()),
                ) {
                    let allowed = (due - opened).whole_seconds();
                    if allowed > i64::try_from(*sla).unwrap_or(i64::MAX) {
                        codes.push(a.red(
                            Code::SlaExceeded,
                            format!(
                                "{name}: entry {entry} gives {} days from {opened} to {due}; the {} SLA is {} days",
                                allowed / DAY,
                                assessed.severity.as_str(),
                                sla / DAY as u64
                            ),
                        ));
                    }
                }
                let open = e.status != Some(Status::Accepted);
                if open && spec.block.iter().any(|b| b == assessed.severity.as_str()) {
                    codes.push(a.red(
                        Code::SeverityBlocks,
                        format!(
                            "{name}: open {} finding blocks the release (entry {entry})",
                            assessed.severity.as_str()
                        ),
                    ));
                }
            }
        }
        a.rows.push(row(
            file,
            f,
            &assessed,
            matched.map(|i| &register.entries[i]),
            codes,
        ));
    }

    if let (Some(ps), Some(file)) = (&spec.pentest, &ev.pentest) {
        let pentests = match a.bytes(file, Code::PentestInvalid, blobs) {
            Some(bytes) => parse_pentests(&file.path, &bytes),
            None => Pentests::default(),
        };
        for d in &pentests.diagnostics {
            a.red(Code::PentestInvalid, one_line(d));
        }
        match pentests.newest() {
            // An unreadable file has already made the gate red; it says nothing about age.
            None if !pentests.parsed => {}
            None => {
                a.red(
                    Code::PentestStale,
                    format!("{}: no pentest is recorded", file.path),
                );
            }
            Some(p) => {
                let age = (today - p.date).whole_seconds();
                if age > i64::try_from(ps.max_age_secs).unwrap_or(i64::MAX) {
                    a.red(
                        Code::PentestStale,
                        format!(
                            "{}:{}: the newest pentest ({}) is {} days old; at most {} days allowed",
                            file.path,
                            p.line,
                            p.date,
                            age / DAY,
                            ps.max_age_secs / DAY as u64
                        ),
                    );
                }
            }
        }
        let mut pentest_checked = vec![false; register.entries.len()];
        for p in &pentests.records {
            for (id, line) in &p.findings {
                let cover = matches.pentest.get(id).cloned().unwrap_or(Cover::None);
                let idx = cover.entry();
                let mut codes = Vec::new();
                let entry = idx.map(|i| &register.entries[i]);
                match idx {
                    None if no_register.is_some() => codes.extend(no_register.clone()),
                    None if matches!(cover, Cover::Contested(_)) => codes.push(a.red(
                        Code::RegisterAmbiguous,
                        format!(
                            "{}:{line}: pentest finding {id}: several entries in {reg_path} name it: keep one",
                            file.path
                        ),
                    )),
                    Some(i) if matches.ambiguous.contains_key(&i) => {
                        codes.push("register-ambiguous".into());
                    }
                    None => codes.push(a.red(
                        Code::PentestFindingUnassigned,
                        format!(
                            "{}:{line}: pentest finding {id} (pentest of {}) has no entry in {reg_path}",
                            file.path, p.date
                        ),
                    )),
                    // A pentest id is checked once, however many pentests name it.
                    Some(i) if !pentest_checked[i] => {
                        pentest_checked[i] = true;
                        let e = &register.entries[i];
                        let name = format!("pentest finding {id} ({})", p.date);
                        if let Some(code) = a.overdue(e, &name, &e.label(reg_path), today, false)
                        {
                            codes.push(code);
                        }
                    }
                    Some(_) => {}
                }
                a.rows.push(FindingRow {
                    finding: id.clone(),
                    tool: format!("pentest {}", p.date),
                    severity: None,
                    severity_source: None,
                    location: format!("{}:{line}", file.path),
                    message: p.focus.clone().unwrap_or_default(),
                    owner: entry.and_then(|e| e.owner.clone()),
                    ticket: entry.and_then(|e| e.ticket.clone()),
                    due: entry.and_then(|e| e.due).map(|d| d.to_string()),
                    status: entry.and_then(|e| e.status).map(|s| s.as_str().to_string()),
                    verdict: codes,
                });
            }
        }
    }

    for (i, space) in &matches.unqualified {
        let e = &register.entries[*i];
        a.warn(
            Code::RegisterEntryUnqualified,
            format!(
                "entry {} for {:?} matched as {space} but does not say so: add `match: {}`{} so that no other namespace can claim it",
                e.label(reg_path),
                e.finding,
                space_namespace(space),
                if e.tool.is_none() { " and `tool:`" } else { "" }
            ),
        );
    }
    for (e, used) in register.entries.iter().zip(&matches.used) {
        if !used {
            a.warn(
                Code::RegisterEntryStale,
                format!(
                    "entry {} for {:?} matches no current finding",
                    e.label(reg_path),
                    e.finding
                ),
            );
        }
    }
    a
}

impl Analysis {
    /// Add a red reason; returns its code for the finding's row.
    fn red(&mut self, code: Code, message: String) -> String {
        self.reasons.push(Reason::new(code, message));
        code.to_string()
    }

    fn warn(&mut self, code: Code, message: String) {
        self.warnings.push(Reason::new(code, message));
    }

    /// The recorded bytes of `file`, or a red reason saying why there are none.
    fn bytes(&mut self, file: &RecordedFile, code: Code, blobs: &dyn Blobs) -> Option<Vec<u8>> {
        match (&file.digest, &file.error) {
            (Some(d), _) => match blobs.get(d) {
                Ok(b) => Some(b),
                Err(e) => {
                    self.red(
                        Code::EvidenceUnreadable,
                        format!("{}: recorded copy: {e}", file.path),
                    );
                    None
                }
            },
            (None, e) => {
                let why = e.as_deref().unwrap_or("not recorded");
                self.red(code, format!("{}: {why}", file.path));
                None
            }
        }
    }

    /// Red when `e` is past due and not fixed. A scanner finding that is `still_reported` is not
    /// fixed whatever its entry says; a pentest finding has no scanner to say otherwise.
    fn overdue(
        &mut self,
        e: &Entry,
        name: &str,
        entry: &str,
        today: Date,
        still_reported: bool,
    ) -> Option<String> {
        let due = e.due?;
        let fixed = e.status == Some(Status::Fixed) && !still_reported;
        if due < today && !fixed {
            let status = match e.status {
                Some(Status::Fixed) => "marked fixed but still reported",
                Some(s) => s.as_str(),
                None => "status unknown",
            };
            return Some(self.red(
                Code::RemediationOverdue,
                format!("{name}: entry {entry} was due {due} and is {status} (today is {today})"),
            ));
        }
        None
    }
}

/// How `match:` names a space.
fn space_namespace(space: &Space) -> String {
    match space {
        Space::Rule { .. } => "rule".into(),
        Space::Guid { .. } => "guid".into(),
        Space::Fingerprint { name, .. } => format!("fingerprint:{name}"),
        Space::Pentest => "pentest".into(),
    }
}

fn row(
    file: &RecordedFile,
    f: &Finding,
    assessed: &Assessed,
    e: Option<&Entry>,
    verdict: Vec<String>,
) -> FindingRow {
    FindingRow {
        finding: f.rule_id.clone().unwrap_or_else(|| "(no rule id)".into()),
        tool: f.tool.clone(),
        severity: Some(assessed.severity.as_str().to_string()),
        severity_source: Some(match assessed.score {
            Some(s) => format!("{} {s:.1}", assessed.source),
            None => assessed.source.clone(),
        }),
        location: match f.locations.first() {
            Some(l) => l.to_string(),
            None => file.path.clone(),
        },
        message: f.message.clone(),
        owner: e.and_then(|e| e.owner.clone()),
        ticket: e.and_then(|e| e.ticket.clone()),
        due: e.and_then(|e| e.due).map(|d| d.to_string()),
        status: e.and_then(|e| e.status).map(|s| s.as_str().to_string()),
        verdict,
    }
}

fn one_line(d: &crate::config::Diagnostic) -> String {
    let mut s = format!("{}:{}:{}: ", d.file.display(), d.line, d.column);
    if !d.key_path.is_empty() {
        s.push_str(&d.key_path);
        s.push_str(": ");
    }
    s.push_str(&d.message);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_is_the_utc_date_of_started_at() {
        assert_eq!(today(0).to_string(), "1970-01-01");
        assert_eq!(today(1_795_000_000).to_string(), "2026-11-18");
    }
}

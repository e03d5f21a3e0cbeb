//! The pure part of the security review: recorded bytes in, findings table and reasons out.
//! Shared by the judge, the collect step (for the table) and `relgate findings`.

use time::{Date, OffsetDateTime};

use super::matching::{Cover, Matches, Space, match_register};
use super::pentest::{Pentest, Pentests, parse_pentests};
use super::register::{Entry, Register, Status, parse_register};
use super::severity::{Assessed, assess};
use super::table::FindingRow;
use super::{RecordedFile, SecurityReviewEvidence};
use crate::gates::{Code, Reason};
use crate::model::{PentestSpec, SecurityReviewSpec};
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

/// A scanner finding with the file it came from and the codes of the problems that file
/// reports about it.
type Found<'a> = (&'a RecordedFile, Finding, Vec<String>);

/// What each finding is judged against, once the files are read.
struct Review<'a> {
    spec: &'a SecurityReviewSpec,
    register: &'a Register,
    reg_path: &'a str,
    matches: &'a Matches,
    /// Without a register, the code every finding carries instead of its own problems.
    no_register: Option<String>,
    today: Date,
}

/// Judge the recorded files. Reads nothing but its arguments.
pub fn analyse(
    spec: &SecurityReviewSpec,
    ev: &SecurityReviewEvidence,
    blobs: &dyn Blobs,
    started_at: i64,
) -> Analysis {
    let mut a = Analysis::default();
    a.configured(spec, ev);
    let findings = a.read_sarif(ev, blobs);
    let register = a.read_register(ev, blobs);
    // Without a register every finding would read as unassigned: say once why instead.
    let no_register = (!register.parsed).then(|| {
        a.reasons
            .last()
            .map(|r| r.code.clone())
            .unwrap_or_else(|| "register-invalid".into())
    });
    let pentest_ids = pentest_ids(spec, ev, blobs);
    let matches = match_register(
        &register,
        &findings.iter().map(|(_, f, _)| f).collect::<Vec<_>>(),
        &pentest_ids.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let review = Review {
        spec,
        register: &register,
        reg_path: ev.register.path.as_str(),
        matches: &matches,
        no_register,
        today: today(started_at),
    };
    a.ambiguous_entries(&review);
    for (k, (file, f, problem_codes)) in findings.iter().enumerate() {
        a.finding(&review, k, file, f, problem_codes);
    }
    if let (Some(ps), Some(file)) = (&spec.pentest, &ev.pentest) {
        a.pentests(&review, ps, file, blobs);
    }
    a.register_warnings(&review);
    a
}

/// The pentest ids are a namespace of their own; read them before matching (problems with the
/// file are reported with the pentest checks).
fn pentest_ids(
    spec: &SecurityReviewSpec,
    ev: &SecurityReviewEvidence,
    blobs: &dyn Blobs,
) -> Vec<String> {
    match (&spec.pentest, &ev.pentest) {
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
    }
}

/// The steps of [`analyse`], each adding its reasons in turn.
impl Analysis {
    /// Something to review: `findings` configured, and a SARIF file for each of its globs.
    fn configured(&mut self, spec: &SecurityReviewSpec, ev: &SecurityReviewEvidence) {
        if spec.findings.is_empty() {
            self.red(
                Code::FindingsMissing,
                "no `findings` files are configured".into(),
            );
        }
        for glob in &ev.unmatched {
            self.red(
                Code::FindingsMissing,
                format!("no SARIF file matches {glob:?}: did the scanner run?"),
            );
        }
    }

    /// Each finding of the SARIF files, with the codes of the problems its file reports about
    /// it.
    fn read_sarif<'e>(
        &mut self,
        ev: &'e SecurityReviewEvidence,
        blobs: &dyn Blobs,
    ) -> Vec<Found<'e>> {
        let mut findings: Vec<Found<'e>> = Vec::new();
        for file in &ev.sarif {
            let Some(bytes) = self.bytes(file, Code::SarifUnreadable, blobs) else {
                continue;
            };
            match crate::sarif::parse(&bytes) {
                Ok(report) => {
                    // What the file says about its own scan, and results that contradict
                    // themselves: red whatever the findings are.
                    for p in &report.problems {
                        self.red(p.kind.code(), format!("{}: {}", file.path, p.message));
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
                    self.red(e.code(), format!("{}: {e}", file.path));
                }
            }
        }
        findings
    }

    /// The register, red for each problem with it.
    fn read_register(&mut self, ev: &SecurityReviewEvidence, blobs: &dyn Blobs) -> Register {
        let register = match self.bytes(&ev.register, Code::RegisterInvalid, blobs) {
            Some(bytes) => parse_register(&ev.register.path, &bytes),
            None => Register::default(),
        };
        for d in &register.diagnostics {
            self.red(Code::RegisterInvalid, one_line(d));
        }
        register
    }

    /// Entries that match a finding in more than one way.
    fn ambiguous_entries(&mut self, r: &Review<'_>) {
        for (i, why) in &r.matches.ambiguous {
            let e = &r.register.entries[*i];
            self.red(
                Code::RegisterAmbiguous,
                format!(
                    "entry {} for {:?} is ambiguous: {why}",
                    e.label(r.reg_path),
                    e.finding
                ),
            );
        }
    }

    /// One scanner finding: its severity read, its register entry found and checked; its row.
    fn finding(
        &mut self,
        r: &Review<'_>,
        k: usize,
        file: &RecordedFile,
        f: &Finding,
        problem_codes: &[String],
    ) {
        let assessed = assess(f);
        let cover = r.matches.findings.get(k).cloned().unwrap_or(Cover::None);
        let matched = cover.entry();
        let mut codes = problem_codes.to_vec();
        let name = format!("{} ({}, {})", f.label(), f.tool, assessed.describe());
        if !assessed.unreadable.is_empty() {
            codes.push(self.red(
                Code::SeverityUnreadable,
                format!(
                    "{name}: {} (a severity that cannot be read could be the highest)",
                    assessed.unreadable.join("; ")
                ),
            ));
        }
        match matched {
            None if r.no_register.is_some() => codes.extend(r.no_register.clone()),
            None => codes.push(self.unmatched(r, &name, &cover)),
            // Reported once for the entry; nothing else can be judged on it.
            Some(i) if r.matches.ambiguous.contains_key(&i) => {
                codes.push("register-ambiguous".into());
            }
            Some(i) => self.entry(r, &r.register.entries[i], &name, &assessed, &mut codes),
        }
        let entry = matched.map(|i| &r.register.entries[i]);
        self.rows.push(row(file, f, &assessed, entry, codes));
    }

    /// A finding no one entry names: contested by several, or unassigned. Returns the code.
    fn unmatched(&mut self, r: &Review<'_>, name: &str, cover: &Cover) -> String {
        match cover {
            Cover::Contested(entries) => {
                let labels: Vec<String> = entries
                    .iter()
                    .map(|i| r.register.entries[*i].label(r.reg_path))
                    .collect();
                self.red(
                    Code::RegisterAmbiguous,
                    format!(
                        "{name}: entries {} all match it, none more specifically: keep one",
                        labels.join(", ")
                    ),
                )
            }
            _ => self.red(
                Code::FindingUnassigned,
                format!(
                    "{name}: no entry in {} names its rule id, guid or a fingerprint",
                    r.reg_path
                ),
            ),
        }
    }

    /// A finding's entry: assigned, not claimed fixed, not overdue, within the SLA, and not an
    /// open finding of a blocking severity.
    fn entry(
        &mut self,
        r: &Review<'_>,
        e: &Entry,
        name: &str,
        assessed: &Assessed,
        codes: &mut Vec<String>,
    ) {
        let entry = e.label(r.reg_path);
        let missing = e.missing_assignment();
        if !missing.is_empty() {
            codes.push(self.red(
                Code::FindingUnassigned,
                format!("{name}: entry {entry} lacks {}", missing.join(", ")),
            ));
        }
        // The scanner still reports it, so it is not fixed, whatever the entry says:
        // judged as open (overdue and block apply), and red for the contradiction.
        let claims_fixed = e.status == Some(Status::Fixed);
        if claims_fixed {
            codes.push(self.red(
                Code::FixedStillReported,
                format!(
                    "{name}: entry {entry} says fixed, but the scanner still reports it; judged as open"
                ),
            ));
        }
        if let Some(code) = self.overdue(e, name, &entry, r.today, true) {
            codes.push(code);
        }
        if let Some(code) = self.sla_exceeded(r, e, name, &entry, assessed) {
            codes.push(code);
        }
        let open = e.status != Some(Status::Accepted);
        if open && r.spec.block.iter().any(|b| b == assessed.severity.as_str()) {
            codes.push(self.red(
                Code::SeverityBlocks,
                format!(
                    "{name}: open {} finding blocks the release (entry {entry})",
                    assessed.severity.as_str()
                ),
            ));
        }
    }

    /// Red when the entry gives the finding longer than its severity's SLA.
    fn sla_exceeded(
        &mut self,
        r: &Review<'_>,
        e: &Entry,
        name: &str,
        entry: &str,
        assessed: &Assessed,
    ) -> Option<String> {
        let (Some(opened), Some(due), Some(sla)) = (
            e.opened,
            e.due,
            r.spec.sla_secs.get(assessed.severity.as_str()),
        ) else {
            return None;
        };
        let allowed = (due - opened).whole_seconds();
        if allowed <= i64::try_from(*sla).unwrap_or(i64::MAX) {
            return None;
        }
        Some(self.red(
            Code::SlaExceeded,
            format!(
                "{name}: entry {entry} gives {} days from {opened} to {due}; the {} SLA is {} days",
                allowed / DAY,
                assessed.severity.as_str(),
                sla / DAY as u64
            ),
        ))
    }

    /// The pentests: the file read, the newest one recent enough, and each finding they name
    /// found in the register.
    fn pentests(
        &mut self,
        r: &Review<'_>,
        ps: &PentestSpec,
        file: &RecordedFile,
        blobs: &dyn Blobs,
    ) {
        let pentests = match self.bytes(file, Code::PentestInvalid, blobs) {
            Some(bytes) => parse_pentests(&file.path, &bytes),
            None => Pentests::default(),
        };
        for d in &pentests.diagnostics {
            self.red(Code::PentestInvalid, one_line(d));
        }
        self.pentest_fresh(ps, file, &pentests, r.today);
        self.pentest_findings(r, file, &pentests);
    }

    /// Red when no pentest is recorded, or the newest is older than `max_age`.
    fn pentest_fresh(
        &mut self,
        ps: &PentestSpec,
        file: &RecordedFile,
        pentests: &Pentests,
        today: Date,
    ) {
        match pentests.newest() {
            // An unreadable file has already made the gate red; it says nothing about age.
            None if !pentests.parsed => {}
            None => {
                self.red(
                    Code::PentestStale,
                    format!("{}: no pentest is recorded", file.path),
                );
            }
            Some(p) => {
                let age = (today - p.date).whole_seconds();
                if age > i64::try_from(ps.max_age_secs).unwrap_or(i64::MAX) {
                    self.red(
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
    }

    /// Each finding a pentest names: an entry of its own in the register, not overdue; a row.
    fn pentest_findings(&mut self, r: &Review<'_>, file: &RecordedFile, pentests: &Pentests) {
        let reg_path = r.reg_path;
        let mut pentest_checked = vec![false; r.register.entries.len()];
        for p in &pentests.records {
            for (id, line) in &p.findings {
                let cover = r.matches.pentest.get(id).cloned().unwrap_or(Cover::None);
                let idx = cover.entry();
                let mut codes = Vec::new();
                let entry = idx.map(|i| &r.register.entries[i]);
                match idx {
                    None if r.no_register.is_some() => codes.extend(r.no_register.clone()),
                    None if matches!(cover, Cover::Contested(_)) => codes.push(self.red(
                        Code::RegisterAmbiguous,
                        format!(
                            "{}:{line}: pentest finding {id}: several entries in {reg_path} name it: keep one",
                            file.path
                        ),
                    )),
                    Some(i) if r.matches.ambiguous.contains_key(&i) => {
                        codes.push("register-ambiguous".into());
                    }
                    None => codes.push(self.red(
                        Code::PentestFindingUnassigned,
                        format!(
                            "{}:{line}: pentest finding {id} (pentest of {}) has no entry in {reg_path}",
                            file.path, p.date
                        ),
                    )),
                    // A pentest id is checked once, however many pentests name it.
                    Some(i) if !pentest_checked[i] => {
                        pentest_checked[i] = true;
                        let e = &r.register.entries[i];
                        let name = format!("pentest finding {id} ({})", p.date);
                        if let Some(code) = self.overdue(e, &name, &e.label(reg_path), r.today, false)
                        {
                            codes.push(code);
                        }
                    }
                    Some(_) => {}
                }
                self.rows
                    .push(pentest_row(file, p, id, *line, entry, codes));
            }
        }
    }

    /// Worth a look: entries matched in a namespace they do not name, and entries that match
    /// nothing.
    fn register_warnings(&mut self, r: &Review<'_>) {
        for (i, space) in &r.matches.unqualified {
            let e = &r.register.entries[*i];
            self.warn(
                Code::RegisterEntryUnqualified,
                format!(
                    "entry {} for {:?} matched as {space} but does not say so: add `match: {}`{} so that no other namespace can claim it",
                    e.label(r.reg_path),
                    e.finding,
                    space_namespace(space),
                    if e.tool.is_none() { " and `tool:`" } else { "" }
                ),
            );
        }
        for (e, used) in r.register.entries.iter().zip(&r.matches.used) {
            if !used {
                self.warn(
                    Code::RegisterEntryStale,
                    format!(
                        "entry {} for {:?} matches no current finding",
                        e.label(r.reg_path),
                        e.finding
                    ),
                );
            }
        }
    }
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

fn pentest_row(
    file: &RecordedFile,
    p: &Pentest,
    id: &str,
    line: usize,
    e: Option<&Entry>,
    verdict: Vec<String>,
) -> FindingRow {
    FindingRow {
        finding: id.to_string(),
        tool: format!("pentest {}", p.date),
        severity: None,
        severity_source: None,
        location: format!("{}:{line}", file.path),
        message: p.focus.clone().unwrap_or_default(),
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

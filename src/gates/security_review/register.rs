//! The remediation register (SPEC §2): who fixes which finding, how, and by when. Parsed with
//! positions kept, then checked entry by entry, every problem reported at once.

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use time::Date;

use crate::config::Diagnostic;

/// `open | fixed | accepted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Open,
    Fixed,
    Accepted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Fixed => "fixed",
            Status::Accepted => "accepted",
        }
    }
}

/// Where an entry's `finding` is looked for (`match:`): a SARIF rule id, a result guid, the
/// value of one named fingerprint, or a pentest finding id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Namespace {
    Rule,
    Guid,
    /// `fingerprint:NAME`: the value of the (partial) fingerprint NAME.
    Fingerprint(String),
    Pentest,
}

impl Namespace {
    fn parse(s: &str) -> Option<Namespace> {
        match s {
            "rule" => Some(Namespace::Rule),
            "guid" => Some(Namespace::Guid),
            "pentest" => Some(Namespace::Pentest),
            _ => s
                .strip_prefix("fingerprint:")
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| Namespace::Fingerprint(k.to_string())),
        }
    }
}

impl std::fmt::Display for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Namespace::Rule => f.write_str("rule"),
            Namespace::Guid => f.write_str("guid"),
            Namespace::Fingerprint(k) => write!(f, "fingerprint:{k}"),
            Namespace::Pentest => f.write_str("pentest"),
        }
    }
}

/// One checked register entry. Fields that were missing or malformed are `None` (and a
/// diagnostic says why), so the entry still matches its finding and the judge can name it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub finding: String,
    /// `tool:` — only results of the tool whose `tool.driver.name` is this.
    pub tool: Option<String>,
    /// `match:` — only this namespace. Without it the entry is looked for in every namespace,
    /// and must be found in only one (SPEC §2's `finding:` alone).
    pub namespace: Option<Namespace>,
    pub owner: Option<String>,
    pub ticket: Option<String>,
    pub plan: Option<String>,
    pub opened: Option<Date>,
    pub due: Option<Date>,
    pub status: Option<Status>,
    pub target: Option<String>,
    /// Where the entry starts in the register file (1-based).
    pub line: usize,
    pub column: usize,
}

impl Entry {
    /// The required fields this entry lacks, by name.
    pub fn missing_assignment(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.owner.is_none() {
            out.push("owner");
        }
        if self.plan.is_none() {
            out.push("plan");
        }
        if self.due.is_none() {
            out.push("due");
        }
        out
    }

    /// `register.yaml:12:3 (SEC-123)` — how a reason names this entry.
    pub fn label(&self, file: &str) -> String {
        match &self.ticket {
            Some(t) => format!("{file}:{}:{} ({t})", self.line, self.column),
            None => format!("{file}:{}:{}", self.line, self.column),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Register {
    /// False when the file could not be read as a list of entries at all.
    pub parsed: bool,
    pub entries: Vec<Entry>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    finding: Option<Spanned<String>>,
    tool: Option<Spanned<String>>,
    #[serde(rename = "match")]
    namespace: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    ticket: Option<Spanned<String>>,
    plan: Option<Spanned<String>>,
    opened: Option<Spanned<String>>,
    due: Option<Spanned<String>>,
    status: Option<Spanned<String>>,
    target: Option<Spanned<String>>,
}

/// Parse and check a register. `file` is the path shown in diagnostics.
pub fn parse_register(file: &str, bytes: &[u8]) -> Register {
    let raw: Vec<Spanned<RawEntry>> = match parse_list(file, bytes) {
        Ok(raw) => raw,
        Err(d) => {
            return Register {
                diagnostics: vec![*d],
                ..Register::default()
            };
        }
    };
    let mut checking = Checking {
        file,
        bytes,
        reg: Register {
            parsed: true,
            ..Register::default()
        },
    };
    for (i, item) in raw.into_iter().enumerate() {
        checking.entry(i, item);
    }
    checking.reg
}

/// The register as its entries are checked one by one, and the file they come from.
struct Checking<'a> {
    file: &'a str,
    bytes: &'a [u8],
    reg: Register,
}

/// The entry being checked: its index in the list and where it starts.
struct Item {
    i: usize,
    at: Location,
}

impl Item {
    /// The key path of its field `name`: `[3].owner`.
    fn key(&self, name: &str) -> String {
        format!("[{}].{name}", self.i)
    }
}

impl Checking<'_> {
    /// A diagnostic about `key` at `loc`.
    fn problem(&mut self, loc: &Location, key: String, message: String) {
        let d = diagnostic(self.file, self.bytes, loc, key, message);
        self.reg.diagnostics.push(d);
    }

    /// Check one entry and keep it, unless it names no finding or repeats an earlier entry.
    /// A field that is missing or malformed is `None` in the entry, with a diagnostic.
    fn entry(&mut self, i: usize, item: Spanned<RawEntry>) {
        let it = Item {
            i,
            at: item.referenced,
        };
        let e = item.value;
        let Some(finding) = e.finding.filter(|f| !f.value.trim().is_empty()) else {
            self.problem(
                &it.at,
                format!("[{i}]"),
                "missing `finding` (a rule id, guid or fingerprint)".into(),
            );
            return;
        };
        let tool = self.tool(&it, e.tool);
        let namespace = self.namespace(&it, e.namespace, tool.is_some());
        if self.duplicate(&it, &finding, tool.as_ref(), namespace.as_ref()) {
            return;
        }
        let owner = self.required(&it, "owner", e.owner);
        let plan = self.required(&it, "plan", e.plan);
        let opened = self.required(&it, "opened", e.opened);
        let due = self.required(&it, "due", e.due);
        let status = self.required(&it, "status", e.status);
        let opened = self.date(&it, "opened", opened);
        let due = self.date(&it, "due", due);
        let status = self.status(&it, status);
        if let (Some(o), Some(u)) = (opened, due)
            && u < o
        {
            self.problem(
                &it.at,
                it.key("due"),
                format!("due {u} is before opened {o}"),
            );
        }
        self.reg.entries.push(Entry {
            finding: finding.value,
            tool,
            namespace,
            owner: owner.map(|s| s.value),
            ticket: e.ticket.map(|s| s.value),
            plan: plan.map(|s| s.value),
            opened,
            due,
            status,
            target: e.target.map(|s| s.value),
            line: to_usize(it.at.line()),
            column: to_usize(it.at.column()),
        });
    }

    /// `tool:`, unless empty.
    fn tool(&mut self, it: &Item, tool: Option<Spanned<String>>) -> Option<String> {
        match tool {
            Some(t) if t.value.trim().is_empty() => {
                self.problem(&t.referenced, it.key("tool"), "empty `tool`".into());
                None
            }
            other => other.map(|t| t.value),
        }
    }

    /// `match:`, a namespace that exists; a pentest finding has no tool.
    fn namespace(
        &mut self,
        it: &Item,
        m: Option<Spanned<String>>,
        has_tool: bool,
    ) -> Option<Namespace> {
        let m = m?;
        match Namespace::parse(m.value.trim()) {
            Some(Namespace::Pentest) if has_tool => {
                self.problem(
                    &m.referenced,
                    it.key("match"),
                    "a pentest finding has no `tool`".into(),
                );
                None
            }
            Some(n) => Some(n),
            None => {
                self.problem(
                    &m.referenced,
                    it.key("match"),
                    format!(
                        "expected rule, guid, pentest or fingerprint:NAME, found {:?}",
                        m.value
                    ),
                );
                None
            }
        }
    }

    /// Whether an earlier entry is for the same finding, tool and namespace (a diagnostic
    /// says where).
    fn duplicate(
        &mut self,
        it: &Item,
        finding: &Spanned<String>,
        tool: Option<&String>,
        namespace: Option<&Namespace>,
    ) -> bool {
        let Some(first) = self.reg.entries.iter().find(|x| {
            x.finding == finding.value
                && x.tool.as_ref() == tool
                && x.namespace.as_ref() == namespace
        }) else {
            return false;
        };
        let help = Some(format!("the first entry for it is at line {}", first.line));
        let d = diagnostic(
            self.file,
            self.bytes,
            &finding.referenced,
            it.key("finding"),
            format!("duplicate entry for finding {:?}", finding.value),
        );
        self.reg.diagnostics.push(Diagnostic { help, ..d });
        true
    }

    /// A required field, unless missing or blank.
    fn required(
        &mut self,
        it: &Item,
        name: &str,
        v: Option<Spanned<String>>,
    ) -> Option<Spanned<String>> {
        let v = v.filter(|s| !s.value.trim().is_empty());
        if v.is_none() {
            self.problem(&it.at, it.key(name), format!("missing `{name}`"));
        }
        v
    }

    /// A date field as a date: `YYYY-MM-DD`.
    fn date(&mut self, it: &Item, name: &str, v: Option<Spanned<String>>) -> Option<Date> {
        let v = v?;
        let date = parse_date(&v.value);
        if date.is_none() {
            self.problem(
                &v.referenced,
                it.key(name),
                format!("expected a date YYYY-MM-DD, found {:?}", v.value),
            );
        }
        date
    }

    /// `status:`, one of open, fixed or accepted.
    fn status(&mut self, it: &Item, status: Option<Spanned<String>>) -> Option<Status> {
        let s = status?;
        match s.value.trim() {
            "open" => Some(Status::Open),
            "fixed" => Some(Status::Fixed),
            "accepted" => Some(Status::Accepted),
            other => {
                self.problem(
                    &s.referenced,
                    it.key("status"),
                    format!("expected open, fixed or accepted, found {other:?}"),
                );
                None
            }
        }
    }
}

/// Parse a YAML list of mappings; an empty file is an empty list.
pub(crate) fn parse_list<T: serde::de::DeserializeOwned>(
    file: &str,
    bytes: &[u8],
) -> Result<Vec<T>, Box<Diagnostic>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Diagnostic {
            file: file.into(),
            line: 0,
            column: 0,
            key_path: String::new(),
            message: format!("not UTF-8: {e}"),
            source_line: None,
            help: None,
        })
        .map_err(Box::new)?;
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(Vec::new());
    }
    serde_saphyr::from_str::<Vec<T>>(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (to_usize(l.line()), to_usize(l.column())))
            .unwrap_or((0, 0));
        Box::new(Diagnostic {
            file: file.into(),
            line,
            column,
            key_path: String::new(),
            message: yaml_message(&e.without_snippet().to_string()),
            source_line: source_line(bytes, line),
            help: Some("the file is a YAML list of mappings, each starting with `- `".into()),
        })
    })
}

pub(crate) fn diagnostic(
    file: &str,
    bytes: &[u8],
    at: &Location,
    key_path: String,
    message: String,
) -> Diagnostic {
    let line = to_usize(at.line());
    Diagnostic {
        file: file.into(),
        line,
        column: to_usize(at.column()),
        key_path,
        message,
        source_line: source_line(bytes, line),
        help: None,
    }
}

/// `YYYY-MM-DD`, nothing else.
pub fn parse_date(s: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), format).ok()
}

fn source_line(bytes: &[u8], line: usize) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines()
        .nth(line.checked_sub(1)?)
        .map(|l| l.to_string())
}

/// The parser's message without what the diagnostic already says (the position) or what
/// only applies to the library's API (its options).
fn yaml_message(s: &str) -> String {
    let mut m = s.lines().next().unwrap_or_default().to_string();
    if let Some(i) = m.rfind(" at line ") {
        m.truncate(i);
    }
    m.replace(", set DuplicateKeyPolicy in Options if acceptable", "")
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
- finding: B602
  owner: dave@acme.test
  ticket: SEC-123
  plan: drop shell=True
  opened: 2026-11-01
  due: 2026-11-20
  status: open
  target: 1.5.0
";

    #[test]
    fn a_good_entry_parses() {
        let r = parse_register("security/remediations.yaml", GOOD.as_bytes());
        assert_eq!(r.diagnostics, []);
        let e = &r.entries[0];
        assert_eq!(e.finding, "B602");
        assert_eq!(e.due, parse_date("2026-11-20"));
        assert_eq!(e.status, Some(Status::Open));
        assert_eq!(e.target.as_deref(), Some("1.5.0"));
        assert_eq!((e.line, e.column), (1, 3));
        assert!(e.missing_assignment().is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_position() {
        let text = format!(
            "{GOOD}\
- finding: B105
  plan: rotate
  opened: 2026-13-01
  due: next week
  status: wontfix
- owner: erin@acme.test
- finding: B602
  owner: x
  plan: y
  opened: 2026-11-01
  due: 2026-11-02
  status: open
"
        );
        let r = parse_register("reg.yaml", text.as_bytes());
        let lines: Vec<String> = r
            .diagnostics
            .iter()
            .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.key_path, d.message))
            .collect();
        assert_eq!(
            lines,
            [
                "9:3: [1].owner: missing `owner`",
                "11:11: [1].opened: expected a date YYYY-MM-DD, found \"2026-13-01\"",
                "12:8: [1].due: expected a date YYYY-MM-DD, found \"next week\"",
                "13:11: [1].status: expected open, fixed or accepted, found \"wontfix\"",
                "14:3: [2]: missing `finding` (a rule id, guid or fingerprint)",
                "15:12: [3].finding: duplicate entry for finding \"B602\"",
            ],
            "{:#?}",
            r.diagnostics
        );
        assert_eq!(
            r.diagnostics[0].source_line.as_deref(),
            Some("- finding: B105")
        );
        // The incomplete entry is kept so that its finding is named as unassigned.
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.entries[1].missing_assignment(), ["owner", "due"]);
    }

    #[test]
    fn syntax_errors_and_unknown_keys_have_positions() {
        let r = parse_register("reg.yaml", b"- finding: A\n  owner: x\n  colour: red\n");
        assert_eq!(r.diagnostics.len(), 1);
        let d = &r.diagnostics[0];
        assert_eq!(d.line, 3, "{d}");
        assert_eq!(
            d.message,
            "unknown field `colour`, expected one of finding, tool, match, owner, ticket, plan, opened, due, status, target"
        );
        let r = parse_register(
            "reg.yaml",
            b"- finding: A\n  due: 2026-01-01\n  due: 2026-01-02\n",
        );
        assert_eq!(
            (r.diagnostics[0].line, r.diagnostics[0].message.as_str()),
            (3, "duplicate mapping key: due")
        );
        let r = parse_register("reg.yaml", b"- finding: [unclosed\n");
        assert_eq!(r.diagnostics.len(), 1);
        assert!(!r.parsed);
        assert!(r.diagnostics[0].line >= 1, "{}", r.diagnostics[0]);
        let empty = parse_register("reg.yaml", b"# nothing yet\n");
        assert!(empty.parsed && empty.entries.is_empty() && empty.diagnostics.is_empty());
    }

    #[test]
    fn tool_and_match_qualify_an_entry() {
        let text = "\
- finding: R1
  tool: lint-a
  match: rule
  owner: x
  plan: y
  opened: 2026-11-01
  due: 2026-11-02
  status: open
- finding: R1
  tool: depscan
  owner: x
  plan: y
  opened: 2026-11-01
  due: 2026-11-02
  status: open
- finding: rsa@0.9.8
  match: fingerprint:rustsec/package
  owner: x
  plan: y
  opened: 2026-11-01
  due: 2026-11-02
  status: open
- finding: PT-1
  tool: lint-a
  match: pentest
  owner: x
  plan: y
  opened: 2026-11-01
  due: 2026-11-02
  status: open
- finding: R2
  match: fingerprint
  owner: x
  plan: y
  opened: 2026-11-01
  due: 2026-11-02
  status: open
";
        let r = parse_register("reg.yaml", text.as_bytes());
        let e = &r.entries;
        // The same finding for two tools is two entries, not a duplicate.
        assert_eq!(
            (e[0].tool.as_deref(), e[0].namespace.clone()),
            (Some("lint-a"), Some(Namespace::Rule))
        );
        assert_eq!(
            (e[1].tool.as_deref(), e[1].namespace.clone()),
            (Some("depscan"), None)
        );
        assert_eq!(
            e[2].namespace,
            Some(Namespace::Fingerprint("rustsec/package".into()))
        );
        assert_eq!(
            e[2].namespace.as_ref().map(|n| n.to_string()).as_deref(),
            Some("fingerprint:rustsec/package")
        );
        let lines: Vec<String> = r
            .diagnostics
            .iter()
            .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.key_path, d.message))
            .collect();
        assert_eq!(
            lines,
            [
                "25:10: [3].match: a pentest finding has no `tool`",
                "32:10: [4].match: expected rule, guid, pentest or fingerprint:NAME, found \"fingerprint\"",
            ]
        );
    }
}

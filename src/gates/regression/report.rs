//! A strict JUnit XML reader over quick-xml events (judge side, pure).
//!
//! A lenient reader lets a build hide failures: one that takes the first root element ignores a
//! failing report appended after a passing one (`>>`); one that skips unknown elements ignores
//! a `<testcase>` inside a wrapper; one that passes a DTD through lets `&f;` stand for
//! `<failure/>` unseen. So this reader places every element, or refuses the report:
//!
//! - exactly one root, `<testsuites>`, `<testrun>` or a bare `<testsuite>`; after it only
//!   whitespace, comments and processing instructions;
//! - each element only where the common JUnit dialects put it (Jenkins/Ant, Surefire, nextest,
//!   pytest, gotestsum, jest-junit); anything else is an error naming the element and its parent;
//! - no DOCTYPE, and no entity reference other than XML's five and character references (no
//!   DTD is ever read, so any other entity could only mean something we did not see);
//! - text only inside elements that carry text (failure messages, output, properties).
//!
//! Unknown *attributes* are ignored (producers add many), but every attribute value must be
//! well-formed and use only the predefined entities.
//!
//! Everything is one pass over an explicit stack: no recursion, nesting bounded by
//! [`MAX_DEPTH`].

use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};

use super::failure::{FailureDetail, FailureText};

/// Deeper nesting than this is refused (real reports nest suites a few levels at most).
pub const MAX_DEPTH: usize = 256;

/// A parsed report: its top-level suites.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub suites: Vec<Suite>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Suite {
    pub name: String,
    /// `failures` + `errors` as the suite declares them (0 when absent).
    pub declared_failed: u64,
    pub cases: Vec<Case>,
    pub suites: Vec<Suite>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub classname: Option<String>,
    pub name: String,
    pub outcome: CaseOutcome,
    /// What its first `<failure>`/`<error>` (or rerun element) says, when it failed.
    pub failure: Option<FailureDetail>,
}

/// How one test case ended. Ordered: when one test case appears twice, the greater wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CaseOutcome {
    Skipped,
    Passed,
    /// Passed after failing at least once (`flakyFailure`/`flakyError`, no primary failure).
    Flaky,
    /// A `failure` or `error`, or any `rerunFailure`/`rerunError`: in Surefire's and nextest's
    /// convention a rerun element means every run failed, so it never counts as a pass, even
    /// without the primary `failure` that should accompany it.
    Failed,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    #[error("line {line}: a DOCTYPE is not allowed in a report (relgate reads no DTD)")]
    Doctype { line: usize },
    #[error(
        "line {line}: entity reference &{name}; is not one of XML's predefined entities (relgate reads no DTD)"
    )]
    UnknownEntity { line: usize, name: String },
    #[error("line {line}: {what}")]
    Malformed { line: usize, what: String },
}

impl ReportError {
    /// The reason code the judge gives this error.
    pub fn code(&self) -> crate::gates::Code {
        match self {
            ReportError::Doctype { .. } | ReportError::UnknownEntity { .. } => {
                crate::gates::Code::JunitDoctype
            }
            ReportError::Malformed { .. } => crate::gates::Code::JunitUnparsable,
        }
    }
}

/// What an open element is, which decides what may appear inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Suites,
    Suite,
    Case,
    Properties,
    Property,
    /// `failure`, `error`, `skipped`.
    Outcome(Mark),
    /// `flakyFailure`, `flakyError`, `rerunFailure`, `rerunError`.
    Retry(Mark),
    /// `system-out`, `system-err`, `stackTrace`.
    Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    Failed,
    Skipped,
    Flaky,
    Rerun,
}

impl Kind {
    /// The kind of child `name` inside `parent` (`None`: the document itself), if allowed.
    fn child(parent: Option<Kind>, name: &str) -> Option<Kind> {
        use Kind::*;
        match (parent, name) {
            (None, "testsuites" | "testrun") => Some(Suites),
            (None | Some(Suites | Suite), "testsuite") => Some(Suite),
            (Some(Suites | Suite | Case), "properties") => Some(Properties),
            (Some(Properties), "property") => Some(Property),
            (Some(Suite), "testcase") => Some(Case),
            (Some(Suite | Case | Retry(_)), "system-out" | "system-err") => Some(Output),
            (Some(Retry(_)), "stackTrace") => Some(Output),
            (Some(Case), "failure" | "error") => Some(Outcome(Mark::Failed)),
            (Some(Case), "skipped") => Some(Outcome(Mark::Skipped)),
            (Some(Case), "flakyFailure" | "flakyError") => Some(Retry(Mark::Flaky)),
            (Some(Case), "rerunFailure" | "rerunError") => Some(Retry(Mark::Rerun)),
            _ => None,
        }
    }

    fn holds_text(self) -> bool {
        matches!(
            self,
            Kind::Property | Kind::Outcome(_) | Kind::Retry(_) | Kind::Output
        )
    }
}

struct OpenCase {
    classname: Option<String>,
    name: String,
    /// The `file` and `line` attributes some producers write (pytest's xunit1, jest).
    file: Option<String>,
    line: Option<String>,
    marks: Vec<Mark>,
    /// The first failing element's message and text, read for its [`FailureDetail`].
    failure: Option<FailureText>,
    /// Text read now belongs to that element (its own text, or its `<stackTrace>`).
    in_failure: bool,
}

impl OpenCase {
    fn outcome(&self) -> CaseOutcome {
        let has = |m| self.marks.contains(&m);
        if has(Mark::Failed) || has(Mark::Rerun) {
            CaseOutcome::Failed
        } else if has(Mark::Skipped) {
            CaseOutcome::Skipped
        } else if has(Mark::Flaky) {
            CaseOutcome::Flaky
        } else {
            CaseOutcome::Passed
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    stack: Vec<(Kind, String)>,
    suites: Vec<Suite>,
    case: Option<OpenCase>,
    done: Vec<Suite>,
    root_seen: bool,
}

/// Read one report. See the module documentation for what is refused.
pub fn read(bytes: &[u8]) -> Result<Report, ReportError> {
    let mut xml = quick_xml::Reader::from_reader(bytes);
    let config = xml.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.allow_unmatched_ends = false;
    config.allow_dangling_amp = false;
    let mut r = Reader {
        bytes,
        stack: Vec::new(),
        suites: Vec::new(),
        case: None,
        done: Vec::new(),
        root_seen: false,
    };
    let mut first = true;
    loop {
        let at = xml.buffer_position();
        let event = xml.read_event().map_err(|e| ReportError::Malformed {
            line: r.line(xml.error_position()),
            what: format!("not well-formed XML: {e}"),
        })?;
        match event {
            Event::Start(e) => r.open(&e, at)?,
            Event::Empty(e) => {
                r.open(&e, at)?;
                r.close(at)?;
            }
            Event::End(_) => r.close(at)?,
            Event::Text(t) => r.text(&t.xml10_content(), at)?,
            Event::CData(t) => r.text(&t.xml10_content(), at)?,
            Event::GeneralRef(e) => r.reference(&e, at)?,
            Event::DocType(_) => return Err(ReportError::Doctype { line: r.line(at) }),
            Event::Decl(d) => {
                if !first {
                    return Err(r.malformed(at, "an XML declaration after the start"));
                }
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(|e| r.malformed(at, format!("XML declaration: {e}")))?;
                    if !enc.eq_ignore_ascii_case("utf-8") && !enc.eq_ignore_ascii_case("us-ascii") {
                        return Err(r.malformed(
                            at,
                            format!("declares encoding {enc:?}; reports must be UTF-8"),
                        ));
                    }
                }
            }
            // Comments and processing instructions carry no test results.
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
        first = false;
    }
    if let Some((_, name)) = r.stack.last() {
        return Err(r.malformed(bytes.len() as u64, format!("<{name}> is not closed")));
    }
    if !r.root_seen {
        return Err(r.malformed(0, "no root element"));
    }
    Ok(Report { suites: r.done })
}

impl Reader<'_> {
    /// 1-based line of byte offset `at`.
    fn line(&self, at: u64) -> usize {
        let at = usize::try_from(at)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        1 + self.bytes[..at].iter().filter(|b| **b == b'\n').count()
    }

    fn malformed(&self, at: u64, what: impl Into<String>) -> ReportError {
        ReportError::Malformed {
            line: self.line(at),
            what: what.into(),
        }
    }

    fn parent(&self) -> Option<Kind> {
        self.stack.last().map(|(k, _)| *k)
    }

    fn open(&mut self, e: &BytesStart<'_>, at: u64) -> Result<(), ReportError> {
        let raw = e.name();
        let name: &str = raw.as_ref();
        let name = name.to_string();
        if self.stack.is_empty() && self.root_seen {
            return Err(self.malformed(
                at,
                format!("<{name}> after the root element: a report has exactly one root"),
            ));
        }
        let Some(kind) = Kind::child(self.parent(), &name) else {
            let what = match self.stack.last() {
                None => format!(
                    "the root element is <{name}>, not <testsuites>, <testsuite> or <testrun>"
                ),
                Some((_, parent)) => format!("unexpected element <{name}> in <{parent}>"),
            };
            return Err(self.malformed(at, what));
        };
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.malformed(at, format!("elements nested deeper than {MAX_DEPTH}")));
        }
        let attrs = self.attributes(e, &name, at)?;
        let get = |key: &str| {
            attrs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        match kind {
            Kind::Suite => {
                let count = |key: &str| -> Result<u64, ReportError> {
                    match get(key).map(str::trim) {
                        None | Some("") => Ok(0),
                        Some(v) => v.parse().map_err(|_| {
                            self.malformed(
                                at,
                                format!("<testsuite {key}={v:?}>: not a whole number"),
                            )
                        }),
                    }
                };
                let declared_failed = count("failures")?.saturating_add(count("errors")?);
                self.suites.push(Suite {
                    name: get("name").unwrap_or_default().to_string(),
                    declared_failed,
                    ..Suite::default()
                });
            }
            Kind::Case => {
                let Some(case_name) = get("name") else {
                    return Err(self.malformed(at, "<testcase> without a name"));
                };
                self.case = Some(OpenCase {
                    classname: get("classname").map(str::to_string),
                    name: case_name.to_string(),
                    file: get("file").map(str::to_string),
                    line: get("line").map(str::to_string),
                    marks: Vec::new(),
                    failure: None,
                    in_failure: false,
                });
            }
            Kind::Outcome(mark) | Kind::Retry(mark) => {
                if let Some(c) = &mut self.case {
                    c.marks.push(mark);
                    if matches!(mark, Mark::Failed | Mark::Rerun) && c.failure.is_none() {
                        c.failure = Some(FailureText::new(get("message").map(str::to_string)));
                        c.in_failure = true;
                    }
                }
            }
            Kind::Suites | Kind::Properties | Kind::Property | Kind::Output => {}
        }
        self.root_seen = true;
        self.stack.push((kind, name));
        Ok(())
    }

    fn close(&mut self, at: u64) -> Result<(), ReportError> {
        let Some((kind, _)) = self.stack.pop() else {
            return Err(self.malformed(at, "an end tag without a start tag"));
        };
        match kind {
            Kind::Outcome(_) | Kind::Retry(_) => {
                if let Some(c) = &mut self.case {
                    c.in_failure = false;
                }
            }
            Kind::Case => {
                if let (Some(c), Some(suite)) = (self.case.take(), self.suites.last_mut()) {
                    let outcome = c.outcome();
                    let failure = c
                        .failure
                        .filter(|_| outcome == CaseOutcome::Failed)
                        .map(|f| f.detail(c.file.as_deref(), c.line.as_deref()));
                    suite.cases.push(Case {
                        outcome,
                        classname: c.classname,
                        name: c.name,
                        failure,
                    });
                }
            }
            Kind::Suite => {
                if let Some(done) = self.suites.pop() {
                    match self.suites.last_mut() {
                        Some(parent) => parent.suites.push(done),
                        None => self.done.push(done),
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn text(&mut self, text: &str, at: u64) -> Result<(), ReportError> {
        self.capture(text);
        self.place_text(text, at)
    }

    /// Keep text read inside a case's first failing element, for its message and place.
    /// `<system-out>` inside a rerun element is the test's output, not the failure's.
    fn capture(&mut self, text: &str) {
        let in_failure = match self.stack.last() {
            Some((Kind::Outcome(_) | Kind::Retry(_), _)) => true,
            Some((Kind::Output, name)) => name == "stackTrace",
            _ => false,
        };
        if in_failure
            && let Some(c) = &mut self.case
            && c.in_failure
            && let Some(f) = &mut c.failure
        {
            f.push(text);
        }
    }

    /// Text is allowed only inside elements that carry it.
    fn place_text(&self, text: &str, at: u64) -> Result<(), ReportError> {
        if text.trim().is_empty() {
            return Ok(());
        }
        // Point at the first character that is not white space.
        let lead = text.len() - text.trim_start().len();
        let at = at + text[..lead].len() as u64;
        match self.stack.last() {
            Some((k, _)) if k.holds_text() => Ok(()),
            Some((_, name)) => Err(self.malformed(at, format!("text in <{name}>"))),
            None if self.root_seen => Err(self.malformed(at, "text after the root element")),
            None => Err(self.malformed(at, "text before the root element")),
        }
    }

    fn reference(&mut self, e: &BytesRef<'_>, at: u64) -> Result<(), ReportError> {
        let name: &str = e;
        let name = name.to_string();
        let resolved = if e.is_char_ref() {
            match e.resolve_char_ref() {
                Ok(Some(c)) => c.to_string(),
                _ => {
                    return Err(self.malformed(at, format!("invalid character reference &{name};")));
                }
            }
        } else {
            match resolve_xml_entity(&name) {
                Some(s) => s.to_string(),
                None => {
                    return Err(ReportError::UnknownEntity {
                        line: self.line(at),
                        name,
                    });
                }
            }
        };
        self.capture(&resolved);
        // A reference is text: allowed only where text is.
        self.place_text("&", at)
    }

    /// Every attribute of `e`, values unescaped; duplicates, malformed values and unknown
    /// entities are errors.
    fn attributes(
        &self,
        e: &BytesStart<'_>,
        element: &str,
        at: u64,
    ) -> Result<Vec<(String, String)>, ReportError> {
        let mut out = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|err| self.malformed(at, format!("<{element}>: {err}")))?;
            let key: &str = a.key.as_ref();
            let key = key.to_string();
            let value = a
                .normalized_value_with(quick_xml::XmlVersion::Implicit1_0, 1, resolve_xml_entity)
                .map_err(|err| match err {
                    quick_xml::Error::Escape(
                        quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                    ) => ReportError::UnknownEntity {
                        line: self.line(at),
                        name,
                    },
                    other => self.malformed(at, format!("<{element} {key}>: {other}")),
                })?;
            out.push((key, value.into_owned()));
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;

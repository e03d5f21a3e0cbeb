//! What a failed test case says about itself — its assertion message and where it failed
//! (`file:line`) — read from its JUnit `<failure>` (judge side, pure). The refusal line names
//! the first failing assertion with it, and `relgate logs` lists every one.
//!
//! JUnit has no field for either, so each producer puts them elsewhere:
//!
//! - pytest: `message` holds the assertion (`assert (1 + 1) == 3`); the text ends with
//!   `test_calc.py:7: AssertionError`. Go (gotestsum) prints `calc_test.go:12: got 3` lines.
//! - cargo-nextest: `message` is the panic header, `thread 'x' panicked at src/lib.rs:9:25`;
//!   the assertion is the text's next line.
//! - Maven Surefire: `message` holds the assertion; the stack trace's first frame
//!   `at com.acme.CalcTest.divides(CalcTest.java:31)` gives the place.
//! - pytest's xunit1, jest, PHPUnit: `file` (and `line`) attributes on the `<testcase>`.
//!
//! A failure's text can be long (stack traces); only its first and last [`KEPT`] bytes are kept
//! while reading, which is where these things are.

use serde::{Deserialize, Serialize};

/// Bytes of a failure's text kept from its start, and from its end.
pub const KEPT: usize = 2048;
/// Characters of a message kept (a longer one is cut with `…`).
pub const MAX_MESSAGE: usize = 300;

/// The message and place of one failure, when the report says them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailureDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `path:line` or `path:line:column`, as the report writes the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// The text of a failure element as it is read: its start and its end, bounded.
#[derive(Clone, Debug, Default)]
pub struct FailureText {
    pub message: Option<String>,
    head: String,
    tail: String,
    cut: bool,
}

impl FailureText {
    pub fn new(message: Option<String>) -> Self {
        FailureText {
            message,
            ..FailureText::default()
        }
    }

    /// Add text read inside the element.
    pub fn push(&mut self, s: &str) {
        let room = KEPT.saturating_sub(self.head.len());
        if room > 0 {
            let at = floor_boundary(s, room.min(s.len()));
            self.head.push_str(&s[..at]);
            self.tail.push_str(&s[at..]);
        } else {
            self.tail.push_str(s);
        }
        // Trim only when the tail doubles, so trimming costs O(1) per byte amortised.
        if self.tail.len() > 2 * KEPT {
            self.trim_tail();
        }
    }

    fn trim_tail(&mut self) {
        if self.tail.len() > KEPT {
            let at = ceil_boundary(&self.tail, self.tail.len() - KEPT);
            self.tail.drain(..at);
            self.cut = true;
        }
    }

    /// What the failure says, with the test case's `file`/`line` attributes to fall back on.
    pub fn detail(mut self, file: Option<&str>, line: Option<&str>) -> FailureDetail {
        self.trim_tail();
        let text = if self.cut {
            format!("{}\n{}", self.head, self.tail)
        } else {
            format!("{}{}", self.head, self.tail)
        };
        let attr = self
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty());
        FailureDetail {
            message: message(attr, &text),
            location: location(attr, &text, file, line),
        }
    }
}

fn message(attr: Option<&str>, text: &str) -> Option<String> {
    let lines = || text.lines().map(str::trim).filter(|l| !l.is_empty());
    // A Rust panic: the header says where, the next line says what.
    let header = attr
        .filter(|m| m.contains(" panicked at "))
        .or_else(|| lines().next().filter(|l| l.contains(" panicked at ")));
    if header.is_some()
        && let Some(what) = lines()
            .skip_while(|l| !l.contains(" panicked at "))
            .nth(1)
            .filter(|l| !l.starts_with("stack backtrace:") && !l.starts_with("note: "))
    {
        return Some(cut(what));
    }
    if let Some(m) = attr {
        return Some(cut(m));
    }
    // pytest without a message: its `E   assert …` lines.
    if let Some(e) = lines().find_map(|l| l.strip_prefix("E ")) {
        return Some(cut(e.trim()));
    }
    lines().next().map(cut)
}

fn location(
    attr: Option<&str>,
    text: &str,
    file: Option<&str>,
    line: Option<&str>,
) -> Option<String> {
    // The assertion's own line: `path:line: …` opening a line (pytest, Go), the last one.
    let own = text.lines().rev().find_map(|l| {
        let l = l.trim_start();
        places(l)
            .into_iter()
            .find(|p| p.start == 0 && l[p.end..].starts_with(": "))
            .map(|p| l[..p.end].to_string())
    });
    if own.is_some() {
        return own;
    }
    // Else the first place named (a panic header, a stack trace's first frame), preferring one
    // in the test case's own file when the report names it.
    let mut named: Vec<String> = Vec::new();
    for source in [attr.unwrap_or(""), text] {
        named.extend(
            places(source)
                .into_iter()
                .map(|p| source[p.start..p.end].to_string()),
        );
    }
    let file = file.map(str::trim).filter(|f| !f.is_empty());
    if let Some(f) = file
        && let Some(p) = named
            .iter()
            .find(|p| path_of(p).ends_with(f) || f.ends_with(path_of(p)))
    {
        return Some(p.clone());
    }
    if let Some(p) = named.into_iter().next() {
        return Some(p);
    }
    let f = file?;
    Some(
        match line.map(str::trim).filter(|l| l.parse::<u64>().is_ok()) {
            Some(l) => format!("{f}:{l}"),
            None => f.to_string(),
        },
    )
}

fn path_of(place: &str) -> &str {
    place.split(':').next().unwrap_or(place)
}

/// A `path:line[:column]` found in a text, as byte offsets.
struct Place {
    start: usize,
    end: usize,
}

/// Every `path:line[:column]` in `s` whose path ends in a file name with an extension.
fn places(s: &str) -> Vec<Place> {
    let b = s.as_bytes();
    let is_path =
        |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/' | b'\\' | b'+');
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut out = Vec::new();
    for (i, _) in s.match_indices(':') {
        let n = digits(i + 1);
        if n == 0 {
            continue;
        }
        let start = b[..i]
            .iter()
            .rposition(|c| !is_path(*c))
            .map_or(0, |p| p + 1);
        let path = &s[start..i];
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let Some((stem, ext)) = name.rsplit_once('.') else {
            continue;
        };
        if stem.is_empty()
            || ext.is_empty()
            || ext.len() > 8
            || !ext.bytes().all(|c| c.is_ascii_alphanumeric())
            || !ext.bytes().any(|c| c.is_ascii_alphabetic())
        {
            continue;
        }
        let mut end = i + 1 + n;
        if b.get(end) == Some(&b':') {
            let col = digits(end + 1);
            if col > 0 {
                end += 1 + col;
            }
        }
        if out.last().is_some_and(|p: &Place| p.end > start) {
            continue;
        }
        out.push(Place { start, end });
    }
    out
}

/// One line, at most [`MAX_MESSAGE`] characters.
fn cut(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= MAX_MESSAGE {
        return one;
    }
    let mut out: String = one.chars().take(MAX_MESSAGE - 1).collect();
    out.push('…');
    out
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(message: Option<&str>, text: &str) -> FailureDetail {
        let mut t = FailureText::new(message.map(str::to_string));
        t.push(text);
        t.detail(None, None)
    }

    #[test]
    fn pytest_gives_the_assertion_and_the_line_that_made_it() {
        let d = detail(
            Some("assert (1 + 1) == 3"),
            "def test_add_fails():\n>       assert 1 + 1 == 3\nE       assert (1 + 1) == 3\n\ntest_calc.py:7: AssertionError",
        );
        assert_eq!(d.message.as_deref(), Some("assert (1 + 1) == 3"));
        assert_eq!(d.location.as_deref(), Some("test_calc.py:7"));
        let d = detail(
            None,
            "E       assert 2 == 3\n\ntests/test_x.py:12: AssertionError",
        );
        assert_eq!(d.message.as_deref(), Some("assert 2 == 3"));
        assert_eq!(d.location.as_deref(), Some("tests/test_x.py:12"));
    }

    #[test]
    fn a_rust_panic_gives_its_payload_and_its_place() {
        let d = detail(
            Some("thread 'tests::adds_wrongly' (11241) panicked at src/lib.rs:9:25"),
            "thread 'tests::adds_wrongly' (11241) panicked at src/lib.rs:9:25:\nassertion `left == right` failed: two and two\n  left: 4\n right: 5\nstack backtrace:\n   0: x\n             at /rustc/abc/library/std/src/panicking.rs:689:5",
        );
        assert_eq!(
            d.message.as_deref(),
            Some("assertion `left == right` failed: two and two")
        );
        assert_eq!(d.location.as_deref(), Some("src/lib.rs:9:25"));
    }

    #[test]
    fn a_java_trace_gives_its_first_frame() {
        let d = detail(
            Some("expected: <0> but was: <1>"),
            "org.opentest4j.AssertionFailedError: expected: <0> but was: <1>\n\tat com.acme.CalcTest.dividesByZero(CalcTest.java:31)\n",
        );
        assert_eq!(d.message.as_deref(), Some("expected: <0> but was: <1>"));
        assert_eq!(d.location.as_deref(), Some("CalcTest.java:31"));
    }

    #[test]
    fn file_and_line_attributes_are_the_fallback_and_pick_among_places() {
        let mut t = FailureText::new(Some("boom".into()));
        t.push("nothing useful here");
        let d = t.detail(Some("spec/calc.test.js"), Some("14"));
        assert_eq!(d.location.as_deref(), Some("spec/calc.test.js:14"));
        let mut t = FailureText::new(None);
        t.push("at lib/x.js:3:1\nat spec/calc.test.js:9:5\n");
        let d = t.detail(Some("spec/calc.test.js"), None);
        assert_eq!(d.location.as_deref(), Some("spec/calc.test.js:9:5"));
    }

    #[test]
    fn times_versions_and_urls_are_not_places() {
        let d = detail(Some("at 2026-11-27T09:03:53 with v1.2:3 and 10:30"), "");
        assert_eq!(d.location, None);
    }

    #[test]
    fn a_long_trace_keeps_its_start_and_its_end() {
        let mut t = FailureText::new(Some("m".into()));
        t.push("at Foo.bar(Calc.java:3)\n");
        for _ in 0..10_000 {
            t.push("filler line without a place\n");
        }
        t.push("x.py:9: Boom\n");
        assert!(t.head.len() <= KEPT && t.tail.len() <= 2 * KEPT);
        let d = t.detail(None, None);
        assert_eq!(d.location.as_deref(), Some("x.py:9"));
    }

    #[test]
    fn long_messages_are_cut_to_one_line() {
        let d = detail(Some(&format!("a\n{}", "b".repeat(1000))), "");
        let m = d.message.unwrap_or_default();
        assert!(!m.contains('\n'));
        assert_eq!(m.chars().count(), MAX_MESSAGE);
        assert!(m.ends_with('…'));
    }
}

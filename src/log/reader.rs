//! Reading a log strictly: canonical lines, contiguous `seq`, `prev` links, recomputed heads.

use super::chain::Head;
use super::records::{LINE_VERSION, Record, encode_line};

/// One verified line.
#[derive(Clone, Debug)]
pub struct Entry {
    pub seq: u64,
    /// 1-based line number in the file.
    pub line: usize,
    pub ts: String,
    pub record: Record,
    /// The chain head after this line.
    pub head: Head,
}

/// The first problem found, with its 1-based line number (0: the file as a whole).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("log.jsonl line {line}: {message}")]
pub struct LogProblem {
    pub line: usize,
    pub message: String,
    /// True when the problem is an unterminated or unparsable *last* line (a torn write).
    pub torn_tail: bool,
}

fn problem(line: usize, message: impl Into<String>) -> LogProblem {
    LogProblem {
        line,
        message: message.into(),
        torn_tail: false,
    }
}

/// Parse and verify a whole log. Returns the entries and the final head.
pub fn read_log(bytes: &[u8]) -> Result<(Vec<Entry>, Head), LogProblem> {
    let mut entries = Vec::new();
    let mut head = Head::GENESIS;
    if bytes.is_empty() {
        return Ok((entries, head));
    }
    let mut rest = bytes;
    let mut line_no = 0usize;
    while !rest.is_empty() {
        line_no += 1;
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err(LogProblem {
                line: line_no,
                message: "last line is not terminated by a newline (torn write?)".into(),
                torn_tail: true,
            });
        };
        let line = &rest[..nl];
        rest = &rest[nl + 1..];
        let is_last = rest.is_empty();
        match parse_line(line, line_no, entries.len() as u64, &head) {
            Ok((ts, record)) => {
                head = head.next(line);
                entries.push(Entry {
                    seq: entries.len() as u64,
                    line: line_no,
                    ts,
                    record,
                    head,
                });
            }
            Err(mut p) => {
                // Only a line that is not JSON at all, at the very end, can be a torn write.
                p.torn_tail = is_last && serde_json::from_slice::<serde_json::Value>(line).is_err();
                return Err(p);
            }
        }
    }
    Ok((entries, head))
}

fn parse_line(
    line: &[u8],
    line_no: usize,
    seq: u64,
    prev: &Head,
) -> Result<(String, Record), LogProblem> {
    let text = std::str::from_utf8(line).map_err(|_| problem(line_no, "not UTF-8"))?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| problem(line_no, format!("not JSON: {e}")))?;
    let serde_json::Value::Object(mut obj) = value else {
        return Err(problem(line_no, "not a JSON object"));
    };
    for key in obj.keys() {
        if !matches!(key.as_str(), "v" | "seq" | "prev" | "ts" | "type" | "body") {
            return Err(problem(line_no, format!("unexpected field {key:?}")));
        }
    }
    if obj.get("v").and_then(|v| v.as_u64()) != Some(LINE_VERSION) {
        return Err(problem(line_no, "unknown format version (field v)"));
    }
    let got_seq = obj.get("seq").and_then(|v| v.as_u64());
    if got_seq != Some(seq) {
        return Err(problem(
            line_no,
            format!("seq is {got_seq:?}, expected {seq} (line removed, inserted or reordered)"),
        ));
    }
    let got_prev = obj
        .get("prev")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    if got_prev != prev.hex() {
        return Err(problem(
            line_no,
            "prev does not match the chain head of the line before (line altered, removed or reordered)",
        ));
    }
    let ts = obj
        .get("ts")
        .and_then(|v| v.as_str())
        .ok_or_else(|| problem(line_no, "missing ts"))?
        .to_string();
    // Moved, not copied: a run's first line holds its whole pipeline and sources.
    let mut tagged = serde_json::Map::new();
    tagged.insert("type".into(), obj.remove("type").unwrap_or_default());
    tagged.insert("body".into(), obj.remove("body").unwrap_or_default());
    let record: Record = serde_json::from_value(serde_json::Value::Object(tagged))
        .map_err(|e| problem(line_no, format!("record does not parse: {e}")))?;
    let canonical = encode_line(seq, &got_prev, &ts, &record)
        .map_err(|e| problem(line_no, format!("cannot re-encode: {e}")))?;
    if canonical.as_bytes() != line {
        return Err(problem(line_no, "line is not in canonical form (altered)"));
    }
    Ok((ts, record))
}

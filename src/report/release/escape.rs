//! Text from the build or the record, made safe to show: commit messages, SARIF messages and
//! file names, sign-off comments and reason messages are written by whoever controls the build
//! or an approvals folder. Control and bidirectional characters become visible escapes first
//! ([`crate::report::printable`]: `evil\u{202e}txt.exe` cannot pose as `evilexe.txt`), then
//! the characters that would be markup are escaped for the format.

use crate::report::printable;

/// For HTML text and attribute values (quoted with `"`).
pub fn html(text: &str) -> String {
    let shown = printable(text);
    let mut out = String::with_capacity(shown.len());
    for c in shown.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// For Markdown text, also inside a table cell: one line, and every character that could start
/// markup, a link, an emphasis, a code span, raw HTML or a cell boundary backslash-escaped
/// (CommonMark lets any ASCII punctuation be escaped; GitHub's tables honour `\|`).
pub fn md(text: &str) -> String {
    let shown = printable(text);
    let mut out = String::with_capacity(shown.len());
    for c in shown.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&' | '!' | '$' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A digest or other value shown as code in Markdown: only hex, `sha256:`, `SHA256:` and base64
/// characters reach here, but a backtick would end the span, so it is dropped defensively.
pub fn md_code(text: &str) -> String {
    format!("`{}`", printable(text).replace('`', "'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup_and_shows_controls() {
        let s = html("<script>x</script></td>\"'&\u{202e}\n");
        assert_eq!(
            s,
            "&lt;script&gt;x&lt;/script&gt;&lt;/td&gt;&quot;&#39;&amp;\\u{202e}\\n"
        );
    }

    #[test]
    fn markdown_escapes_markup_cells_and_controls() {
        let s = md("<b>|*_[x](y)`\u{202e}");
        assert_eq!(s, "\\<b\\>\\|\\*\\_\\[x\\](y)\\`\\\\u{202e}");
        assert!(!md("a\nb").contains('\n'));
    }
}

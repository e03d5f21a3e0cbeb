//! Strict parsing of clamd's INSTREAM reply: only exactly `stream: OK` is clean.
//!
//! clamd's replies are `<path>: OK`, `<path>: <virname> FOUND` and `<path>: <message> ERROR`
//! (`conn_reply*` in clamd/session.c); with `z` framing each ends with one NUL. Anything else —
//! an empty reply, a missing terminator, extra text, a size-limit message — is not clean, and
//! the text is kept so a reader can see what clamd (or whatever answered) actually said.

/// What a recorded INSTREAM reply means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanReply {
    /// Exactly `stream: OK` + NUL.
    Clean,
    /// `stream: NAME FOUND` + NUL; holds NAME.
    Found(String),
    /// Anything else; holds a one-line description.
    NotClean(String),
}

/// Parse a raw reply as received (including its NUL terminator, when one arrived).
pub fn parse_scan_reply(raw: &str) -> ScanReply {
    let Some(body) = raw.strip_suffix('\0') else {
        return ScanReply::NotClean(if raw.is_empty() {
            "clamd closed the connection without a reply".to_string()
        } else {
            format!("reply not terminated: {}", shown(raw))
        });
    };
    if body.contains('\0') {
        return ScanReply::NotClean(format!("garbled reply: {}", shown(body)));
    }
    if body == "stream: OK" {
        return ScanReply::Clean;
    }
    if let Some(rest) = body.strip_prefix("stream: ")
        && let Some(name) = rest.strip_suffix(" FOUND")
        && is_signature_name(name)
    {
        return ScanReply::Found(name.to_string());
    }
    if body.ends_with(" ERROR") {
        return ScanReply::NotClean(format!("clamd error: {}", shown(body)));
    }
    ScanReply::NotClean(format!("unexpected reply: {}", shown(body)))
}

/// A signature name is one printable token (ClamAV names have no spaces).
fn is_signature_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic())
}

/// Quote a reply for a one-line message, escaping control characters and capping its length.
pub fn shown(s: &str) -> String {
    const MAX: usize = 200;
    let mut out: String = s.chars().take(MAX).collect();
    if s.chars().count() > MAX {
        out.push('…');
    }
    format!("{out:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_ok_is_clean() {
        assert_eq!(parse_scan_reply("stream: OK\0"), ScanReply::Clean);
        for raw in [
            "stream: OK",
            "stream: OK\n",
            "stream: OK \0",
            " stream: OK\0",
            "stream:  OK\0",
            "/x/OK/y: Access denied ERROR\0",
            "1: stream: OK\0",
            "stream: OK\0stream: OK\0",
            "",
            "\0",
            "PONG\0",
        ] {
            assert!(
                matches!(parse_scan_reply(raw), ScanReply::NotClean(_)),
                "{raw:?} must not be clean"
            );
        }
    }

    #[test]
    fn found_keeps_the_signature_name() {
        assert_eq!(
            parse_scan_reply("stream: Relgate.Test.EICAR.UNOFFICIAL FOUND\0"),
            ScanReply::Found("Relgate.Test.EICAR.UNOFFICIAL".into())
        );
        assert!(matches!(
            parse_scan_reply("stream: two words FOUND\0"),
            ScanReply::NotClean(_)
        ));
        assert!(matches!(
            parse_scan_reply("stream:  FOUND\0"),
            ScanReply::NotClean(_)
        ));
    }

    #[test]
    fn errors_and_limits_are_not_clean_and_keep_the_text() {
        match parse_scan_reply("INSTREAM size limit exceeded. ERROR\0") {
            ScanReply::NotClean(m) => assert!(m.contains("size limit exceeded"), "{m}"),
            other => panic!("{other:?}"),
        }
        match parse_scan_reply("stream: garbage") {
            ScanReply::NotClean(m) => assert!(m.contains("not terminated"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

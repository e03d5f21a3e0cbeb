//! Strict parsing of clamd's scan replies: only exactly `stream: OK` (INSTREAM) or
//! `fd[N]: OK` (FILDES) is clean.
//!
//! clamd's replies are `<path>: OK`, `<path>: <virname> FOUND` and `<path>: <message> ERROR`
//! (`conn_reply*` in clamd/session.c); with `z` framing each ends with one NUL. Anything else —
//! an empty reply, a missing terminator, extra text, a size-limit message — is not clean, and
//! the text is kept so a reader can see what clamd (or whatever answered) actually said.

/// What a recorded scan reply means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanReply {
    /// Exactly `stream: OK` (or `fd[N]: OK`) + NUL.
    Clean,
    /// `stream: NAME FOUND` (or `fd[N]: NAME FOUND`) + NUL; holds NAME.
    Found(String),
    /// Anything else; holds a one-line description.
    NotClean(String),
}

/// Parse a raw INSTREAM reply as received (including its NUL terminator, when one arrived).
pub fn parse_scan_reply(raw: &str) -> ScanReply {
    parse_with(raw, |body| body.strip_prefix("stream: "))
}

/// Parse a raw FILDES reply: `fd[N]: ...`, N being decimal digits (clamd's descriptor number).
pub fn parse_fildes_reply(raw: &str) -> ScanReply {
    parse_with(raw, |body| {
        let rest = body.strip_prefix("fd[")?;
        let (n, rest) = rest.split_once("]: ")?;
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(rest)
    })
}

/// `verdict` strips the exact subject prefix (`stream: `, `fd[N]: `), or says it is not there.
fn parse_with(raw: &str, verdict: impl Fn(&str) -> Option<&str>) -> ScanReply {
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
    if let Some(rest) = verdict(body) {
        if rest == "OK" {
            return ScanReply::Clean;
        }
        if let Some(name) = rest.strip_suffix(" FOUND")
            && is_signature_name(name)
        {
            return ScanReply::Found(name.to_string());
        }
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

    #[test]
    fn only_exact_fildes_ok_is_clean() {
        assert_eq!(parse_fildes_reply("fd[11]: OK\0"), ScanReply::Clean);
        assert_eq!(
            parse_fildes_reply("fd[9]: Relgate.Test.EICAR.UNOFFICIAL FOUND\0"),
            ScanReply::Found("Relgate.Test.EICAR.UNOFFICIAL".into())
        );
        for raw in [
            "fd[11]: OK",
            "fd[11]: OK\n",
            "fd[]: OK\0",
            "fd[x]: OK\0",
            "fd[-1]: OK\0",
            "fd[11]:  OK\0",
            "fd[11] OK\0",
            "fd11: OK\0",
            " fd[11]: OK\0",
            "fd[11]: OK \0",
            "stream: OK\0",
            "1: fd[11]: OK\0",
            "fd[11]: OK\0fd[11]: OK\0",
            "fd[11]: two words FOUND\0",
        ] {
            assert!(
                matches!(parse_fildes_reply(raw), ScanReply::NotClean(_)),
                "{raw:?} must not be clean"
            );
        }
        // And the INSTREAM parser does not accept a FILDES reply either.
        assert!(matches!(
            parse_scan_reply("fd[11]: OK\0"),
            ScanReply::NotClean(_)
        ));
        match parse_fildes_reply("fd[9]: Not a regular file ERROR\0") {
            ScanReply::NotClean(m) => assert!(m.contains("Not a regular file"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

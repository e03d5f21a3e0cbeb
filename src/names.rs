//! The one rule for release paths: what an artefact may be called inside a published release.
//!
//! `check` and `run` apply it when they resolve the artefact globs, `verify` and `replay` when
//! they read `SHA256SUMS`, so a name that one of them accepts, all of them accept. A release path
//! is `/`-separated, relative, and every component is a name a person reads correctly and every
//! tool handles alike:
//!
//! - no control characters (C0, DEL, C1): a TAB or line feed breaks `SHA256SUMS` lines and
//!   terminals;
//! - no bidirectional controls (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069): a right-to-left
//!   override (U+202E) makes `evil<U+202E>txt.exe` read as `evilexe.txt` (CVE-2021-42574, "Trojan Source");
//! - no invisible or format characters (zero-width spaces and joiners, word joiner, invisible
//!   operators, soft hyphen, the byte-order mark, Mongolian vowel separator, Hangul fillers,
//!   the braille blank, variation selectors, tag characters, interlinear annotation marks, the
//!   other Unicode format characters): two names that look the same must be the same name;
//! - no space other than U+0020 (no-break and ideographic spaces, the line and paragraph
//!   separators), and no component that starts or ends with a space or ends with a dot:
//!   Windows drops those, so the name changes on the way;
//! - in Unicode Normalization Form C: macOS and some archivers normalise names, so a name in
//!   another form changes on the way and no longer matches `SHA256SUMS`;
//! - no backslash (a separator on Windows, an escape in GNU `sha256sum`), no empty, `.` or `..`
//!   component, not absolute;
//! - not one of the names the release folder itself uses: `SHA256SUMS`, `SHA256SUMS.sig`, and
//!   `audit` as the first component.

use unicode_normalization::{IsNormalized, is_nfc_quick};

/// Why a release path is refused. Each variant's message names the character by its code point,
/// since the offending character is often invisible.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("the name is empty")]
    Empty,
    #[error("absolute path (starts with /)")]
    Absolute,
    #[error("empty, `.` or `..` path component")]
    BadComponent,
    #[error("backslash in the name (a separator on Windows, an escape in SHA256SUMS)")]
    Backslash,
    #[error("control character {0} in the name")]
    Control(String),
    #[error("bidirectional control character {0} in the name (it reorders how the name reads)")]
    Bidi(String),
    #[error("invisible character {0} in the name (two names would look alike)")]
    Invisible(String),
    #[error("space or separator character {0} in the name (only U+0020 is a space here)")]
    Separator(String),
    #[error(
        "a path component starts or ends with a space, or ends with a dot (Windows drops them)"
    )]
    Edge,
    #[error("the name is not in Unicode Normalization Form C (NFC)")]
    NotNfc,
    #[error("{0} is reserved for the release folder itself, not an artefact")]
    Reserved(String),
}

impl NameProblem {
    /// A stable code for messages and docs.
    pub fn code(&self) -> &'static str {
        match self {
            NameProblem::Empty | NameProblem::Absolute | NameProblem::BadComponent => {
                "name-malformed"
            }
            NameProblem::Backslash => "name-backslash",
            NameProblem::Control(_) => "name-control-character",
            NameProblem::Bidi(_) => "name-bidi-control",
            NameProblem::Invisible(_) => "name-invisible-character",
            NameProblem::Separator(_) => "name-separator",
            NameProblem::Edge => "name-edge",
            NameProblem::NotNfc => "name-not-nfc",
            NameProblem::Reserved(_) => "name-reserved",
        }
    }
}

fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters with no visible form of their own (Unicode's Default_Ignorable_Code_Point, less
/// the bidi controls handled above, plus the Hangul fillers that render as blanks).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                       // soft hyphen
        | '\u{034F}'                     // combining grapheme joiner
        | '\u{115F}' | '\u{1160}'        // Hangul choseong/jungseong fillers
        | '\u{0600}'..='\u{0605}'        // Arabic number signs (format)
        | '\u{06DD}' | '\u{070F}'        // Arabic end of ayah, Syriac abbreviation mark
        | '\u{0890}' | '\u{0891}' | '\u{08E2}' // Arabic pound/piastre marks, disputed end of ayah
        | '\u{17B4}' | '\u{17B5}'        // Khmer inherent vowels
        | '\u{180B}'..='\u{180F}'        // Mongolian free variation selectors, vowel separator
        | '\u{200B}'..='\u{200D}'        // zero-width space, non-joiner, joiner
        | '\u{2060}'..='\u{2065}'        // word joiner, invisible operators, reserved
        | '\u{2800}'                     // braille pattern blank
        | '\u{206A}'..='\u{206F}'        // deprecated format characters
        | '\u{3164}'                     // Hangul filler
        | '\u{FE00}'..='\u{FE0F}'        // variation selectors
        | '\u{FEFF}'                     // zero-width no-break space (BOM)
        | '\u{FFA0}'                     // halfwidth Hangul filler
        | '\u{FFF0}'..='\u{FFFB}'        // unassigned specials, interlinear annotation
        | '\u{110BD}' | '\u{110CD}'      // Kaithi number signs
        | '\u{13430}'..='\u{1343F}'      // Egyptian hieroglyph format controls
        | '\u{1BCA0}'..='\u{1BCA3}'      // shorthand format controls
        | '\u{1D173}'..='\u{1D17A}'      // musical symbol format controls
        | '\u{E0000}'..='\u{E0FFF}'      // tags, variation selectors supplement
    )
}

/// Spaces and separators other than U+0020 (Unicode categories Zs, Zl, Zp).
fn is_other_space(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// Check one release path against the rule in the module documentation.
pub fn check_release_path(path: &str) -> Result<(), NameProblem> {
    if path.is_empty() {
        return Err(NameProblem::Empty);
    }
    if path.starts_with('/') {
        return Err(NameProblem::Absolute);
    }
    for c in path.chars() {
        if c.is_control() {
            return Err(NameProblem::Control(code_point(c)));
        }
        if is_bidi_control(c) {
            return Err(NameProblem::Bidi(code_point(c)));
        }
        if is_invisible(c) {
            return Err(NameProblem::Invisible(code_point(c)));
        }
        if is_other_space(c) {
            return Err(NameProblem::Separator(code_point(c)));
        }
    }
    if path.contains('\\') {
        return Err(NameProblem::Backslash);
    }
    if path.split('/').any(|part| matches!(part, "" | "." | "..")) {
        return Err(NameProblem::BadComponent);
    }
    if path
        .split('/')
        .any(|part| part.starts_with(' ') || part.ends_with(' ') || part.ends_with('.'))
    {
        return Err(NameProblem::Edge);
    }
    // The quick check answers "maybe" for rare sequences; only then normalise to compare.
    let nfc = match is_nfc_quick(path.chars()) {
        IsNormalized::Yes => true,
        IsNormalized::No => false,
        IsNormalized::Maybe => {
            use unicode_normalization::UnicodeNormalization;
            path.nfc().eq(path.chars())
        }
    };
    if !nfc {
        return Err(NameProblem::NotNfc);
    }
    let first = path.split('/').next().unwrap_or(path);
    use crate::layout::{AUDIT_DIR, PUBKEY_FILE, SIG_FILE, SUMS_FILE, VSA_FILE};
    if [SUMS_FILE, SIG_FILE, VSA_FILE, PUBKEY_FILE].contains(&path) || first == AUDIT_DIR {
        return Err(NameProblem::Reserved(first.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for ok in [
            "acme-1.4.2.tar.gz",
            "linux/x86_64/acme.bin",
            "Révision.txt",
            "日本語.zip",
            "audit.txt",
            "docs/audit/x",
            "SHA256SUMS.txt",
            "keys/release.pub.pem",
        ] {
            assert_eq!(check_release_path(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn every_kind_of_bad_name_has_its_code() {
        let cases = [
            ("", "name-malformed"),
            ("/etc/passwd", "name-malformed"),
            ("a//b", "name-malformed"),
            ("a/../b", "name-malformed"),
            ("./a", "name-malformed"),
            ("a\\b", "name-backslash"),
            ("a\tb", "name-control-character"),
            ("a\nb", "name-control-character"),
            ("a\u{7f}b", "name-control-character"),
            ("a\u{85}b", "name-control-character"),
            ("evil\u{202E}txt.exe", "name-bidi-control"),
            ("a\u{2067}b", "name-bidi-control"),
            ("a\u{200B}b", "name-invisible-character"),
            ("a\u{FEFF}b", "name-invisible-character"),
            ("a\u{00AD}b", "name-invisible-character"),
            ("a\u{E0041}b", "name-invisible-character"),
            ("a\u{2065}b", "name-invisible-character"),
            ("a\u{FFF9}b", "name-invisible-character"),
            ("a\u{2800}b", "name-invisible-character"),
            ("release\u{2028}notes.txt", "name-separator"),
            ("a\u{00A0}b", "name-separator"),
            ("a\u{3000}b", "name-separator"),
            ("setup.exe ", "name-edge"),
            (" setup.exe", "name-edge"),
            ("dir./x", "name-edge"),
            ("x.", "name-edge"),
            ("Re\u{0301}vision.txt", "name-not-nfc"),
            ("SHA256SUMS", "name-reserved"),
            ("SHA256SUMS.sig", "name-reserved"),
            ("audit", "name-reserved"),
            ("audit/log.jsonl", "name-reserved"),
            ("attestation.intoto.jsonl", "name-reserved"),
            ("release.pub.pem", "name-reserved"),
        ];
        for (name, code) in cases {
            let got = check_release_path(name).map_err(|p| p.code());
            assert_eq!(got, Err(code), "{name:?}");
        }
    }

    #[test]
    fn messages_name_the_invisible_character() {
        let p = check_release_path("evil\u{202E}txt.exe").unwrap_err();
        assert!(p.to_string().contains("U+202E"), "{p}");
    }
}

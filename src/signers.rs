//! OpenSSH `allowed_signers`: principals, options and keys, compared by fingerprint.
//!
//! The grammar follows `ssh-keygen(1)`, section ALLOWED SIGNERS, and OpenSSH's `sshsig.c`:
//!
//! ```text
//! principals [options] keytype base64 [comment]
//! ```
//!
//! Parsing is strict: anything OpenSSH would reject is an error here too, so a file that relgate
//! accepts also works with `ssh-keygen -Y verify`. Two deliberate differences:
//! - `cert-authority` lines are rejected (relgate does not verify certificates yet), where
//!   OpenSSH would accept them.
//! - `valid-after`/`valid-before` without a `Z` (or `UTC`) suffix are read as UTC. OpenSSH reads
//!   them in the verifier's local time zone, which would make a verdict depend on the machine
//!   that replays it; write the `Z` to make both tools agree.
//!
//! A line whose key relgate cannot verify (`ssh-dss`, `ecdsa-sha2-nistp521`, RSA under 2048
//! bits: [`crate::sshsig::key_policy`]) is refused with the reason, so that `check` says it at
//! once instead of a sign-off silently never counting. Keys are compared by their SHA-256
//! fingerprint, computed from the key blob exactly as `ssh-keygen -l` does.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use ssh_key::PublicKey;

/// Key types OpenSSH accepts in `allowed_signers` (plain keys; certificates need
/// `cert-authority`, which is not supported).
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

#[derive(Clone, Debug)]
pub struct SignerEntry {
    /// 1-based line in the file.
    pub line: usize,
    /// Principal patterns as written (`*` and `?` wildcards, `!` negation).
    pub principals: Vec<String>,
    /// Namespace patterns from `namespaces="..."`; `None` allows every namespace.
    pub namespaces: Option<Vec<String>>,
    /// Unix seconds; the key is valid from this instant on (inclusive).
    pub valid_after: Option<i64>,
    /// Unix seconds; the key is valid up to this instant (inclusive).
    pub valid_before: Option<i64>,
    /// The key type as written, e.g. `ssh-ed25519`.
    pub key_type: String,
    /// `SHA256:...` fingerprint of the key blob, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The decoded key (of a type [`crate::sshsig::key_policy`] accepts).
    pub key: PublicKey,
    pub comment: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct AllowedSigners {
    pub entries: Vec<SignerEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SignersError {
    pub line: usize,
    pub message: String,
}

/// Parse the file's text; every bad line is reported.
pub fn parse(text: &str) -> Result<AllowedSigners, Vec<SignersError>> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        // OpenSSH reads lines with getline() and strips the trailing CR of CRLF files.
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let content = raw.trim_start_matches([' ', '\t']);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        match parse_line(content, line) {
            Ok(e) => entries.push(e),
            Err(message) => errors.push(SignersError { line, message }),
        }
    }
    if errors.is_empty() {
        Ok(AllowedSigners { entries })
    } else {
        Err(errors)
    }
}

impl AllowedSigners {
    /// Keys that may sign as `principal` in `namespace` at unix time `at`.
    pub fn keys_for(&self, principal: &str, namespace: &str, at: i64) -> Vec<&PublicKey> {
        self.entries
            .iter()
            .filter(|e| e.names(principal) && e.allows(namespace, at))
            .map(|e| &e.key)
            .collect()
    }

    /// The principal patterns of every line that holds `key` and allows it in `namespace` at
    /// unix time `at` (what `ssh-keygen -Y find-principals` prints), in file order, without
    /// duplicates and without negated patterns.
    pub fn principals_for_key(&self, key: &PublicKey, namespace: &str, at: i64) -> Vec<String> {
        let fp = crate::sshsig::fingerprint(key);
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            if e.fingerprint != fp || !e.allows(namespace, at) {
                continue;
            }
            for p in &e.principals {
                if !p.starts_with('!') && !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
        out
    }

    /// May `key` sign as `principal` in `namespace` at unix time `at`?
    pub fn allows(&self, principal: &str, key: &PublicKey, namespace: &str, at: i64) -> bool {
        let fp = crate::sshsig::fingerprint(key);
        self.entries
            .iter()
            .any(|e| e.fingerprint == fp && e.names(principal) && e.allows(namespace, at))
    }

    /// Does any line name `principal` (directly or through a pattern)?
    pub fn names_principal(&self, principal: &str) -> bool {
        self.entries.iter().any(|e| e.names(principal))
    }

    /// Every principal named in the file.
    pub fn principals(&self) -> BTreeSet<String> {
        self.entries
            .iter()
            .flat_map(|e| e.principals.iter().cloned())
            .collect()
    }
}

impl SignerEntry {
    /// Does this line's principal list match `principal` (OpenSSH `match_pattern_list`)?
    pub fn names(&self, principal: &str) -> bool {
        match_pattern_list(principal, &self.principals)
    }

    /// Does this line allow signing in `namespace` at unix time `at`?
    pub fn allows(&self, namespace: &str, at: i64) -> bool {
        let ns_ok = self
            .namespaces
            .as_ref()
            .is_none_or(|list| match_pattern_list(namespace, list));
        let after_ok = self.valid_after.is_none_or(|t| at >= t);
        let before_ok = self.valid_before.is_none_or(|t| at <= t);
        ns_ok && after_ok && before_ok
    }
}

/// OpenSSH `match_pattern_list`: true when some pattern matches and no negated (`!`) pattern
/// matches. Case-sensitive, as OpenSSH calls it for principals and namespaces.
pub fn match_pattern_list(s: &str, patterns: &[String]) -> bool {
    let mut positive = false;
    for p in patterns {
        match p.strip_prefix('!') {
            Some(neg) if match_pattern(s, neg) => return false,
            Some(_) => {}
            None => positive |= match_pattern(s, p),
        }
    }
    positive
}

/// OpenSSH `match_pattern`: `*` matches any sequence, `?` any one character.
pub fn match_pattern(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn parse_line(content: &str, line: usize) -> Result<SignerEntry, String> {
    let mut rest = content;
    let principals_text = next_principals(&mut rest)?;
    let principals: Vec<String> = principals_text.split(',').map(str::to_string).collect();
    if principals.iter().any(|p| p.is_empty() || p == "!") {
        return Err(format!("empty principal in {principals_text:?}"));
    }
    let second = next_word(&mut rest).ok_or("missing key")?;
    let (opts, key_type) = if KEY_TYPES.contains(&second.as_str()) {
        (Options::default(), second)
    } else {
        let opts = match parse_options(&second) {
            Ok(o) => o,
            // `alice ssh-foo AAAA...`: a word without `=` followed by key-looking base64 is
            // more likely an unknown key type than an unknown option.
            Err(e) => {
                let looks_like_key = !second.contains(['=', '"', ','])
                    && peek_word(rest).is_some_and(|w| w.starts_with("AAAA"));
                if looks_like_key {
                    return Err(format!("unsupported key type {second:?}"));
                }
                return Err(e);
            }
        };
        let key_type = next_word(&mut rest).ok_or("missing key after the options")?;
        if !KEY_TYPES.contains(&key_type.as_str()) {
            return Err(format!("unsupported key type {key_type:?}"));
        }
        (opts, key_type)
    };
    let b64 = next_word(&mut rest).ok_or_else(|| format!("missing key data after {key_type}"))?;
    let blob =
        base64_decode(&b64).ok_or_else(|| format!("key data of {key_type} is not valid base64"))?;
    if blob_type(&blob) != Some(key_type.as_bytes()) {
        return Err(format!("key data does not hold a {key_type} key"));
    }
    let key = PublicKey::from_bytes(&blob).map_err(|e| format!("invalid {key_type} key: {e}"))?;
    crate::sshsig::key_policy(&key)?;
    let comment = rest.trim();
    Ok(SignerEntry {
        line,
        principals,
        namespaces: opts.namespaces,
        valid_after: opts.valid_after,
        valid_before: opts.valid_before,
        key_type,
        fingerprint: format!("SHA256:{}", base64_encode_unpadded(&Sha256::digest(&blob))),
        key,
        comment: (!comment.is_empty()).then(|| comment.to_string()),
    })
}

/// The principals field: one word, or a double-quoted string (OpenSSH `strdelimw`).
fn next_principals(rest: &mut &str) -> Result<String, String> {
    let s = *rest;
    if let Some(q) = s.strip_prefix('"') {
        let end = q.find('"').ok_or("principals: missing end quote")?;
        let after = &q[end + 1..];
        if !(after.is_empty() || after.starts_with([' ', '\t'])) {
            return Err("principals: text after the closing quote".into());
        }
        *rest = after.trim_start_matches([' ', '\t']);
        return Ok(q[..end].to_string());
    }
    let word = next_word(rest).ok_or("missing principals")?;
    if word.contains('"') {
        return Err(format!("principals: stray quote in {word:?}"));
    }
    Ok(word)
}

/// The next whitespace-delimited word; quotes keep whitespace inside the word (options).
fn next_word(rest: &mut &str) -> Option<String> {
    let s = rest.trim_start_matches([' ', '\t']);
    if s.is_empty() {
        return None;
    }
    let mut in_quote = false;
    let mut prev_backslash = false;
    let mut end = s.len();
    for (i, c) in s.char_indices() {
        match c {
            '"' if !(in_quote && prev_backslash) => in_quote = !in_quote,
            ' ' | '\t' if !in_quote => {
                end = i;
                break;
            }
            _ => {}
        }
        prev_backslash = c == '\\' && !prev_backslash;
    }
    let word = s[..end].to_string();
    *rest = s[end..].trim_start_matches([' ', '\t']);
    Some(word)
}

fn peek_word(rest: &str) -> Option<String> {
    let mut r = rest;
    next_word(&mut r)
}

#[derive(Default)]
struct Options {
    namespaces: Option<Vec<String>>,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
}

/// The options field (OpenSSH `sshsigopt_parse`): comma-separated, case-insensitive names,
/// values in double quotes.
fn parse_options(text: &str) -> Result<Options, String> {
    let mut o = Options::default();
    let mut s = text;
    loop {
        let name_end = s.find(['=', ',']).unwrap_or(s.len());
        let name = s[..name_end].to_ascii_lowercase();
        if name == "cert-authority" {
            return Err("cert-authority: certificate authorities are not supported yet".into());
        }
        if !s[name_end..].starts_with('=') {
            return Err(format!("unsupported option {:?}", &s[..name_end]));
        }
        let value_start = &s[name_end + 1..];
        let (value, after) = dequote(value_start).map_err(|e| format!("option {name}: {e}"))?;
        match name.as_str() {
            "namespaces" => {
                if o.namespaces.is_some() {
                    return Err("multiple \"namespaces\" clauses".into());
                }
                let list: Vec<String> = value.split(',').map(str::to_string).collect();
                if list.iter().any(|n| n.is_empty() || n == "!") {
                    return Err(format!("namespaces: empty namespace in {value:?}"));
                }
                o.namespaces = Some(list);
            }
            "valid-after" | "valid-before" => {
                let t = parse_time(&value).ok_or_else(|| {
                    format!("invalid \"{name}\" time {value:?}: expected YYYYMMDD[HHMM[SS]][Z]")
                })?;
                let slot = if name == "valid-after" {
                    &mut o.valid_after
                } else {
                    &mut o.valid_before
                };
                if slot.is_some() {
                    return Err(format!("multiple \"{name}\" clauses"));
                }
                *slot = Some(t);
            }
            _ => return Err(format!("unsupported option {:?}", &s[..name_end])),
        }
        if after.is_empty() {
            break;
        }
        s = after
            .strip_prefix(',')
            .ok_or_else(|| format!("unexpected text {after:?} after option {name}"))?;
        if s.is_empty() {
            return Err("unexpected end of options after a comma".into());
        }
    }
    if let (Some(a), Some(b)) = (o.valid_after, o.valid_before)
        && b <= a
    {
        return Err("\"valid-before\" time is before \"valid-after\"".into());
    }
    Ok(o)
}

/// A double-quoted value (`\"` escapes a quote, as OpenSSH `opt_dequote`); returns the value
/// and the text after the closing quote.
fn dequote(s: &str) -> Result<(String, &str), String> {
    let body = s.strip_prefix('"').ok_or("missing start quote")?;
    let mut out = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some((_, '"'))) => {
                out.push('"');
                chars.next();
            }
            '"' => return Ok((out, &body[i + 1..])),
            _ => out.push(c),
        }
    }
    Err("missing end quote".into())
}

/// `YYYYMMDD[HHMM[SS]]` with an optional `Z` or `UTC` suffix, as unix seconds (always UTC; see
/// the module comment).
fn parse_time(s: &str) -> Option<i64> {
    let digits = if let Some(d) = s.strip_suffix(['Z', 'z']) {
        d
    } else if s.len() > 3 && s[s.len() - 3..].eq_ignore_ascii_case("utc") {
        &s[..s.len() - 3]
    } else {
        s
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).and_then(|t| t.parse::<u32>().ok());
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let hour = if digits.len() >= 12 { num(8..10)? } else { 0 };
    let minute = if digits.len() >= 12 { num(10..12)? } else { 0 };
    let second = if digits.len() == 14 { num(12..14)? } else { 0 };
    let t = time::Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// The algorithm name at the start of an SSH key blob (a uint32-length-prefixed string).
fn blob_type(blob: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    blob.get(4..4 + len)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Strict standard base64 with padding (what OpenSSH writes in key lines).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let pad = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    if pad > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let mut acc: u32 = 0;
    let body = &bytes[..bytes.len() - pad];
    for (i, &b) in body.iter().enumerate() {
        let v = B64.iter().position(|&c| c == b)? as u32;
        acc = (acc << 6) | v;
        if i % 4 == 3 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
        }
    }
    match pad {
        1 => {
            // 3 symbols = 18 bits: 2 bytes and 2 zero bits.
            if acc & 0b11 != 0 {
                return None;
            }
            out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]);
        }
        2 => {
            // 2 symbols = 12 bits: 1 byte and 4 zero bits.
            if acc & 0b1111 != 0 {
                return None;
            }
            out.push((acc >> 4) as u8);
        }
        _ => {}
    }
    Some(out)
}

fn base64_encode_unpadded(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for k in 0..symbols {
            out.push(char::from(B64[((n >> (18 - 6 * k)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A fresh key made by the real `ssh-keygen`: (private key path holder, public line,
    /// fingerprint as `ssh-keygen -l` prints it).
    fn keygen(dir: &std::path::Path, name: &str, kind: &str) -> (String, String) {
        let path = dir.join(name);
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", "c@x", "-f"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(st.success());
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(path.with_extension("pub"))
            .output()
            .unwrap();
        let fp = String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        (public.trim().to_string(), fp)
    }

    /// `ssh-keygen -f name` writes `name.pub`; `with_extension` on `name` gives that.
    fn key_line(public: &str) -> String {
        public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn parses_real_keys_of_every_type_with_options_and_comments() {
        let t = tempfile::tempdir().unwrap();
        let (ed, ed_fp) = keygen(t.path(), "ed", "ed25519");
        let (rsa, rsa_fp) = keygen(t.path(), "rsa", "rsa");
        let (ec, ec_fp) = keygen(t.path(), "ec", "ecdsa");
        let text = format!(
            "# release keys\n\
             \n\
             \t  # indented comment\n\
             release@acme.test,*@ops.acme.test NAMESPACES=\"file,relgate-*\",valid-after=\"20260101Z\" {ed}\n\
             alice@acme.test {rsa}\r\n\
             \"bob@acme.test\" valid-before=\"202701011230UTC\" {ec}\n"
        );
        let s = parse(&text).unwrap();
        assert_eq!(s.entries.len(), 3);
        let e = &s.entries[0];
        assert_eq!(e.line, 4);
        assert_eq!(e.principals, ["release@acme.test", "*@ops.acme.test"]);
        assert_eq!(
            e.namespaces.as_deref(),
            Some(&["file".to_string(), "relgate-*".to_string()][..])
        );
        assert_eq!(e.valid_after, Some(1_767_225_600));
        assert_eq!(e.fingerprint, ed_fp);
        assert_eq!(e.comment.as_deref(), Some("c@x"));
        let k = &e.key;
        assert_eq!(crate::sshsig::fingerprint(k), ed_fp);
        assert_eq!(s.entries[1].fingerprint, rsa_fp);
        assert_eq!(crate::sshsig::fingerprint(&s.entries[1].key), rsa_fp);
        assert_eq!(s.entries[2].fingerprint, ec_fp);
        assert_eq!(crate::sshsig::fingerprint(&s.entries[2].key), ec_fp);
        assert_eq!(s.entries[2].principals, ["bob@acme.test"]);
        assert_eq!(s.entries[2].valid_before, Some(1_798_806_600));

        // Lookups: patterns, namespaces and validity windows.
        let at = 1_780_000_000; // 2026-05-28
        assert_eq!(s.keys_for("release@acme.test", "file", at).len(), 1);
        assert_eq!(
            s.keys_for("x@ops.acme.test", "relgate-approval", at).len(),
            1
        );
        assert!(s.keys_for("release@acme.test", "git", at).is_empty());
        assert!(
            s.keys_for("release@acme.test", "file", 1_700_000_000)
                .is_empty()
        );
        assert!(s.keys_for("nobody@acme.test", "file", at).is_empty());
        assert_eq!(
            s.principals_for_key(k, "file", at),
            ["release@acme.test", "*@ops.acme.test"]
        );
        assert!(s.principals_for_key(k, "git", at).is_empty());
        assert!(s.allows("release@acme.test", k, "file", at));
        assert!(!s.allows("alice@acme.test", k, "file", at));
        assert!(s.names_principal("bob@acme.test"));
        assert!(!s.names_principal("carol@acme.test"));
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let t = tempfile::tempdir().unwrap();
        let (ed, _) = keygen(t.path(), "ed", "ed25519");
        let kl = key_line(&ed);
        let text = [
            format!("ok@x {kl}"),                                                   // 1 fine
            format!("ca@x cert-authority {kl}"),                                    // 2
            format!("u@x no-touch-required {kl}"),                                  // 3
            format!("q@x namespaces=file {kl}"),                                    // 4 unquoted
            format!("t@x valid-after=\"2026130\" {kl}"),                            // 5 bad time
            format!("t@x valid-after=\"20261301\" {kl}"),                           // 6 month 13
            "lonely@x".to_string(),                                                 // 7
            "k@x ssh-ed25519 AAAA!!!!".to_string(),                                 // 8 bad base64
            format!("w@x valid-after=\"20270101\",valid-before=\"20260101\" {kl}"), // 9
            format!("m@x namespaces=\"a\",namespaces=\"b\" {kl}"),                  // 10
            "f@x ssh-foo AAAAC3NzaC1lZDI1NTE5".to_string(),                         // 11
            format!("e@x namespaces=\"file\", {kl}"), // 12 trailing comma
            format!("r@x {}", kl.replace("ssh-ed25519", "ssh-rsa")), // 13 type mismatch
            format!("n@x namespaces=\"file {kl}"),    // 14 missing end quote
        ]
        .join("\n");
        let errs = parse(&text).unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, (2..=14).collect::<Vec<_>>(), "{errs:#?}");
        assert!(
            errs[0]
                .message
                .contains("certificate authorities are not supported yet")
        );
        assert!(
            errs[1].message.contains("unsupported option"),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].message.contains("missing start quote"),
            "{}",
            errs[2]
        );
        assert!(
            errs[9].message.contains("unsupported key type"),
            "{}",
            errs[9]
        );
        assert_eq!(errs[0].to_string().split(':').next(), Some("line 2"));
    }

    /// `ssh-keygen -t TYPE -b BITS` (an empty `bits` for the default).
    fn keygen_bits(dir: &std::path::Path, name: &str, kind: &str, bits: &str) -> String {
        let path = dir.join(name);
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", kind, "-N", "", "-C", "c@x", "-f"])
            .arg(&path);
        if !bits.is_empty() {
            cmd.args(["-b", bits]);
        }
        assert!(cmd.status().unwrap().success());
        key_line(&std::fs::read_to_string(path.with_extension("pub")).unwrap())
    }

    #[test]
    fn ecdsa_and_rsa_lines_hold_keys_and_unsupported_types_are_refused_by_name() {
        let t = tempfile::tempdir().unwrap();
        let p256 = keygen_bits(t.path(), "p256", "ecdsa", "256");
        let p384 = keygen_bits(t.path(), "p384", "ecdsa", "384");
        let rsa = keygen_bits(t.path(), "rsa", "rsa", "3072");
        let ok = parse(&format!("a@x {p256}\nb@x {p384}\nc@x {rsa}\n")).unwrap();
        assert_eq!(ok.entries.len(), 3);
        let p521 = keygen_bits(t.path(), "p521", "ecdsa", "521");
        let small = keygen_bits(t.path(), "small", "rsa", "1024");
        let errs = parse(&format!("d@x {p521}\ne@x {small}\n")).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(
            errs[0].message.contains("nistp521 is not supported"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].message.contains("1024 bits is too small"),
            "{}",
            errs[1]
        );
        // DSA, where this ssh-keygen still makes it.
        let dsa = t.path().join("dsa");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "dsa", "-N", "", "-f"])
            .arg(&dsa)
            .status()
            .is_ok_and(|s| s.success());
        if made {
            let line = key_line(&std::fs::read_to_string(dsa.with_extension("pub")).unwrap());
            let errs = parse(&format!("f@x {line}\n")).unwrap_err();
            assert!(errs[0].message.contains("ssh-dss (DSA)"), "{}", errs[0]);
        }
    }

    #[test]
    fn pattern_lists_follow_openssh() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(match_pattern("alice@acme.test", "*@acme.test"));
        assert!(match_pattern("ab", "a?"));
        assert!(!match_pattern("abc", "a?"));
        assert!(match_pattern("", "*"));
        assert!(match_pattern("a*b", "a*b"));
        assert!(match_pattern("axxbyyb", "a*b"));
        assert!(!match_pattern("axxbyyc", "a*b"));
        assert!(!match_pattern("Alice@acme.test", "alice@acme.test"));
        assert!(match_pattern_list("a@x", &l(&["b@x", "a@*"])));
        assert!(!match_pattern_list("a@x", &l(&["*@x", "!a@x"])));
        assert!(!match_pattern_list("a@x", &l(&["!b@x"])));
    }

    #[test]
    fn times_are_utc_with_or_without_suffix() {
        assert_eq!(parse_time("19700101"), Some(0));
        assert_eq!(parse_time("19700101Z"), Some(0));
        assert_eq!(parse_time("197001010001"), Some(60));
        assert_eq!(parse_time("19700101000001utc"), Some(1));
        assert_eq!(parse_time("20260230"), None);
        assert_eq!(parse_time("2026010"), None);
        assert_eq!(parse_time("20260101246000"), None);
        assert_eq!(parse_time("2026-1-01"), None);
    }

    #[test]
    fn base64_roundtrip_and_strictness() {
        for n in 0..10 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let mut enc = base64_encode_unpadded(&data);
            while !enc.len().is_multiple_of(4) {
                enc.push('=');
            }
            if n > 0 {
                assert_eq!(base64_decode(&enc).unwrap(), data);
            }
        }
        assert!(base64_decode("QQ").is_none());
        assert!(base64_decode("QR==").is_none(), "non-zero trailing bits");
        assert!(base64_decode("Q===").is_none());
    }
}

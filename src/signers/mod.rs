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
        // `*` first, as OpenSSH: a `*` in the string is not a literal match for the pattern's
        // (fuzzing found `*x` not matching `*`).
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            si += 1;
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
    // The decoder forgives some malformed blobs (a wrong length prefix, fuzzing found); such a
    // line would name a fingerprint no key has. Only the key's own encoding is taken.
    if key.to_bytes().ok().as_deref() != Some(blob.as_slice()) {
        return Err(format!("key data of {key_type} is not a well-formed key"));
    }
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
    } else if s.len() > 3
        // `get`: the last three bytes may be inside a character (fuzzing found the panic).
        && s.get(s.len() - 3..).is_some_and(|t| t.eq_ignore_ascii_case("utc"))
    {
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
mod tests;

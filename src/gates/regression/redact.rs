//! Keeping secrets out of the release record: captured output is published in `audit/`, so
//! the values of secret-looking environment variables are cut out of it before it is stored —
//! raw, base64 and URL-encoded (threat T12: a build that prints its token).
//!
//! A variable is secret-looking when its name contains TOKEN, SECRET, PASSWORD, PASSWD,
//! PASSPHRASE, API_KEY, APIKEY, PRIVATE_KEY or CREDENTIAL (any case), and its value has at
//! least 8 bytes (shorter values would match ordinary text). Only the stored copy is redacted;
//! the recorded digest and length still describe the stream as printed.

const MARKERS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "API_KEY",
    "APIKEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
];
const MIN_LEN: usize = 8;

/// The secret values to cut, each with the forms it may be printed in.
pub struct Secrets {
    secrets: Vec<(String, Vec<Vec<u8>>)>,
}

fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    MARKERS.iter().any(|m| upper.contains(m)) || declared().iter().any(|d| d == name)
}

/// Variables the configuration names as secret whatever they are called: a webhook's
/// `secret_env` and `url_env` (a URL that is itself a secret, Slack's).
static DECLARED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn declared() -> Vec<String> {
    DECLARED.lock().map(|d| d.clone()).unwrap_or_default()
}

/// Treat the variables `names` as secret from now on in this process, as if their names held
/// one of the markers.
pub fn declare(names: impl IntoIterator<Item = String>) {
    if let Ok(mut d) = DECLARED.lock() {
        for n in names {
            if !d.contains(&n) {
                d.push(n);
            }
        }
    }
}

impl Secrets {
    /// From this process's environment (what the gate's command inherits).
    pub fn from_env() -> Self {
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut secrets: Vec<(String, Vec<Vec<u8>>)> = vars
            .into_iter()
            .filter(|(k, v)| looks_secret(k) && v.len() >= MIN_LEN)
            .map(|(k, v)| {
                let mut forms = vec![v.as_bytes().to_vec()];
                for f in [base64(v.as_bytes()), url_encode(v.as_bytes())] {
                    let f = f.into_bytes();
                    if !forms.contains(&f) {
                        forms.push(f);
                    }
                }
                (k, forms)
            })
            .collect();
        // Longer forms first, so that a secret containing another is cut whole.
        secrets.sort_by_key(|(_, forms)| std::cmp::Reverse(forms.iter().map(Vec::len).max()));
        Secrets { secrets }
    }

    /// `data` with every occurrence replaced by `[REDACTED:NAME]`, and how many were cut.
    pub fn redact(&self, data: &[u8]) -> (Vec<u8>, u32) {
        let mut out = data.to_vec();
        let mut count = 0u32;
        for (name, forms) in &self.secrets {
            let mark = format!("[REDACTED:{name}]").into_bytes();
            for form in forms {
                let (next, n) = replace_all(&out, form, &mark);
                out = next;
                count += n;
            }
        }
        (out, count)
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

fn replace_all(data: &[u8], needle: &[u8], with: &[u8]) -> (Vec<u8>, u32) {
    if needle.is_empty() || data.len() < needle.len() {
        return (data.to_vec(), 0);
    }
    let mut out = Vec::with_capacity(data.len());
    let mut n = 0;
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
            n += 1;
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    (out, n)
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(T[((n >> shift) & 63) as usize] as char);
            }
        }
    }
    // Without padding: the same text is also the prefix of a padded encoding.
    out
}

fn url_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_encoding_without_padding() {
        assert_eq!(base64(b"hello world"), "aGVsbG8gd29ybGQ");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b"ab"), "YWI");
    }

    #[test]
    fn secret_values_are_cut_in_every_form() {
        let s = Secrets::from_vars([
            ("DEPLOY_TOKEN".to_string(), "s3cr3t/value+1".to_string()),
            ("HOME".to_string(), "/root/not-secret".to_string()),
            ("SHORT_TOKEN".to_string(), "abc".to_string()),
        ]);
        let text = format!(
            "raw s3cr3t/value+1 b64 {} url {} home /root/not-secret abc",
            base64(b"s3cr3t/value+1"),
            url_encode(b"s3cr3t/value+1")
        );
        let (out, n) = s.redact(text.as_bytes());
        let out = String::from_utf8(out).unwrap();
        assert_eq!(n, 3, "{out}");
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(out.contains("[REDACTED:DEPLOY_TOKEN]"));
        assert!(out.contains("/root/not-secret") && out.ends_with("abc"));
    }
}

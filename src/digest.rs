//! SHA-256 helpers and the canonical JSON form used for everything that is hashed or signed.

use std::io::Read;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lowercase hex SHA-256 of everything `reader` yields.
pub fn sha256_reader(mut reader: impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Canonical JSON: object keys sorted, no insignificant whitespace, UTF-8.
///
/// Going through `serde_json::Value` sorts keys (its map is ordered), whatever the field order
/// of the serialised struct. relgate never records floats, so number formatting is stable.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    serde_json::to_string(&value)
}

/// Is `s` a 64-character lowercase hex digest?
pub fn is_hex_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `sha256:` + the SHA-256 of the canonical JSON of a run's pipeline sources (the pipeline file
/// and every `uses:` file, with their paths): one digest for the whole policy as written.
pub fn policy_digest(sources: &[crate::config::SourceFile]) -> String {
    format!(
        "sha256:{}",
        sha256_hex(canonical_json(sources).unwrap_or_default().as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys() {
        #[derive(Serialize)]
        struct S {
            z: u32,
            a: &'static str,
        }
        assert_eq!(
            canonical_json(&S { z: 1, a: "x" }).unwrap(),
            r#"{"a":"x","z":1}"#
        );
    }

    #[test]
    fn sha256_of_empty() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}

//! OpenSSH `allowed_signers`: principals, options and keys, compared by fingerprint.

use ssh_key::PublicKey;

#[derive(Clone, Debug)]
pub struct SignerEntry {
    /// 1-based line in the file.
    pub line: usize,
    pub principals: Vec<String>,
    pub namespaces: Option<Vec<String>>,
    /// Unix seconds.
    pub valid_after: Option<i64>,
    pub valid_before: Option<i64>,
    pub key: PublicKey,
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
    let _ = text;
    Ok(AllowedSigners::default())
}

impl AllowedSigners {
    /// Keys that may sign as `principal` in `namespace` at unix time `at`.
    pub fn keys_for(&self, principal: &str, namespace: &str, at: i64) -> Vec<&PublicKey> {
        let _ = (principal, namespace, at);
        Vec::new()
    }

    /// Every principal named in the file.
    pub fn principals(&self) -> std::collections::BTreeSet<String> {
        self.entries
            .iter()
            .flat_map(|e| e.principals.iter().cloned())
            .collect()
    }
}

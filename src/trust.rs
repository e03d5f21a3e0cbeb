//! Trust roots: which keys may speak for a release as its signer.
//!
//! Nothing a release folder or a release record says about its own keys is trusted: a forger
//! who can write the folder can also write an `allowed_signers` into it. The keys come from
//! outside the thing checked — an `allowed_signers` file the user names (`--signers`, with the
//! release signer's principal), pinned key fingerprints (`--trust-key SHA256:…`), or, run inside
//! a project, the pipeline's own `signers` file and its `sign` gate's signer. Only the release
//! signer counts: a key the same file allows for a QA approver signs nothing that `verify`,
//! `replay` or `run` accept as the release's.

use std::path::{Path, PathBuf};

use ssh_key::PublicKey;

use crate::signers::{self, AllowedSigners};
use crate::sshsig;

/// The keys that may sign for a release, and where they came from.
#[derive(Clone, Debug)]
pub struct TrustRoot {
    /// How messages name the source: `--signers keys/allowed_signers`, `--trust-key`, …
    pub source: String,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// An allowed_signers file and the principal that signs releases.
    Signers {
        signers: AllowedSigners,
        signer: String,
    },
    /// Pinned key fingerprints (`SHA256:…`): exactly these keys, at any time, in any namespace.
    Pinned(Vec<String>),
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(
        "no trust root: the keys to trust must come from outside what is checked. Give \
         --signers FILE (an allowed_signers file, with --signer PRINCIPAL unless it names one \
         principal), or --trust-key SHA256:… (the release key's fingerprint, repeatable), or run \
         inside the project, whose pipeline names its signers"
    )]
    Missing,
    #[error("cannot read the trust root {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("the trust root {path} is not a valid allowed_signers file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "{path} names several principals ({principals}); say which one signs releases with \
         --signer PRINCIPAL"
    )]
    WhichSigner { path: PathBuf, principals: String },
    #[error("{path} does not name the release signer {signer}")]
    UnknownSigner { path: PathBuf, signer: String },
    #[error(
        "{0:?} is not a key fingerprint (expected SHA256: and 43 base64 characters, as ssh-keygen -l prints it)"
    )]
    BadFingerprint(String),
    #[error("the pipeline {path} cannot serve as the trust root: {message}")]
    Pipeline { path: PathBuf, message: String },
    #[error(
        "the trust root {} lies inside {}, the very thing being checked: whoever wrote the one \
         could write the other. Run from outside it, or give --signers/--trust-key from elsewhere",
        .root.display(), .checked.display()
    )]
    InsideChecked { root: PathBuf, checked: PathBuf },
}

impl TrustRoot {
    /// An allowed_signers text and the principal that signs releases (`None`: the file must
    /// name exactly one principal).
    pub fn from_signers_text(
        text: &str,
        path: &Path,
        signer: Option<&str>,
        source: String,
    ) -> Result<TrustRoot, TrustError> {
        let signers = signers::parse(text).map_err(|errs| TrustError::Parse {
            path: path.to_path_buf(),
            message: errs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        })?;
        let signer = match signer {
            Some(s) => s.to_string(),
            None => {
                let names = signers.principals();
                let plain: Vec<&String> = names
                    .iter()
                    .filter(|p| !p.contains(['*', '?', '!']))
                    .collect();
                match plain.as_slice() {
                    [one] if plain.len() == names.len() => (*one).clone(),
                    _ => {
                        return Err(TrustError::WhichSigner {
                            path: path.to_path_buf(),
                            principals: names.into_iter().collect::<Vec<_>>().join(", "),
                        });
                    }
                }
            }
        };
        if !signers.names_principal(&signer) {
            return Err(TrustError::UnknownSigner {
                path: path.to_path_buf(),
                signer,
            });
        }
        Ok(TrustRoot {
            source,
            kind: Kind::Signers { signers, signer },
        })
    }

    /// Read an allowed_signers file the user named.
    pub fn from_signers_file(path: &Path, signer: Option<&str>) -> Result<TrustRoot, TrustError> {
        let text = crate::config::read_limited(path, path).map_err(|e| TrustError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        TrustRoot::from_signers_text(&text, path, signer, format!("--signers {}", path.display()))
    }

    /// Pinned fingerprints, as `ssh-keygen -l -E sha256` prints them.
    pub fn pinned(fingerprints: &[String]) -> Result<TrustRoot, TrustError> {
        let mut pins = Vec::new();
        for f in fingerprints {
            if !is_fingerprint(f) {
                return Err(TrustError::BadFingerprint(f.clone()));
            }
            pins.push(f.clone());
        }
        if pins.is_empty() {
            return Err(TrustError::Missing);
        }
        Ok(TrustRoot {
            source: format!("--trust-key {}", pins.join(",")),
            kind: Kind::Pinned(pins),
        })
    }

    /// The pipeline's `signers` file (read now, from disk) and its `sign` gate's signer.
    pub fn from_pipeline(p: &crate::model::Pipeline) -> Result<TrustRoot, TrustError> {
        let failed = |message: String| TrustError::Pipeline {
            path: p.file.clone(),
            message,
        };
        let path = p
            .signers
            .as_ref()
            .ok_or_else(|| failed("it names no signers file".into()))?;
        let (_, sign) = p
            .sign_gate()
            .ok_or_else(|| failed("it has no sign gate".into()))?;
        let text = crate::config::read_limited(path, path).map_err(|e| TrustError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let shown = path.strip_prefix(&p.root).unwrap_or(path);
        TrustRoot::from_signers_text(
            &text,
            path,
            Some(&sign.signer),
            format!(
                "the pipeline's signers ({}, release signer {})",
                shown.display(),
                sign.signer
            ),
        )
    }

    /// The release signer's principal, when the root names one (pinned keys do not).
    pub fn signer(&self) -> Option<&str> {
        match &self.kind {
            Kind::Signers { signer, .. } => Some(signer),
            Kind::Pinned(_) => None,
        }
    }

    /// May `key` sign for the release in `namespace` at unix time `at`? Returns who it is
    /// (`release@acme.test (SHA256:…)`) or why not.
    pub fn release_key(&self, key: &PublicKey, namespace: &str, at: i64) -> Result<String, String> {
        let fp = sshsig::fingerprint(key);
        match &self.kind {
            Kind::Pinned(pins) => {
                if pins.contains(&fp) {
                    Ok(format!("pinned key {fp}"))
                } else {
                    Err(format!(
                        "signed by {fp}, which is not a trusted key ({})",
                        self.source
                    ))
                }
            }
            Kind::Signers { signers, signer } => {
                if signers.allows(signer, key, namespace, at) {
                    Ok(format!("{signer} ({fp})"))
                } else {
                    let others = signers.principals_for_key(key, namespace, at);
                    let also = if others.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (the key belongs to {}, who does not sign releases)",
                            others.join(", ")
                        )
                    };
                    Err(format!(
                        "signed by {fp}, which {} does not allow for the release signer {signer} \
                         in namespace {namespace} at that time{also}",
                        self.source
                    ))
                }
            }
        }
    }
}

/// `SHA256:` and the unpadded base64 of 32 bytes.
pub fn is_fingerprint(s: &str) -> bool {
    s.strip_prefix("SHA256:").is_some_and(|b| {
        b.len() == 43
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    })
}

/// What the command line says about trust, before it is resolved.
#[derive(Clone, Debug, Default)]
pub struct TrustArgs {
    pub signers: Option<PathBuf>,
    pub signer: Option<String>,
    pub trust_keys: Vec<String>,
}

/// Refuse a trust-root file inside the folder or record being checked (a release folder can
/// carry a `pipeline.yaml` and signers of its forger's choosing).
fn outside(file: &Path, checked: &Path) -> Result<(), TrustError> {
    let (Ok(f), Ok(c)) = (file.canonicalize(), checked.canonicalize()) else {
        return Ok(());
    };
    if f.starts_with(&c) {
        return Err(TrustError::InsideChecked {
            root: file.to_path_buf(),
            checked: checked.to_path_buf(),
        });
    }
    Ok(())
}

/// The trust root for `verify` and `replay` of `checked`: the options first, then the pipeline
/// at `pipeline` when there is one (a project), else none at all. No file of the root may lie
/// inside `checked`.
pub fn resolve(args: &TrustArgs, pipeline: &Path, checked: &Path) -> Result<TrustRoot, TrustError> {
    if !args.trust_keys.is_empty() {
        return TrustRoot::pinned(&args.trust_keys);
    }
    if let Some(file) = &args.signers {
        outside(file, checked)?;
        let from_project = match args.signer {
            Some(_) => None,
            None => project_signer(pipeline, checked),
        };
        return TrustRoot::from_signers_file(
            file,
            args.signer.as_deref().or(from_project.as_deref()),
        );
    }
    if !pipeline.is_file() {
        return Err(TrustError::Missing);
    }
    outside(pipeline, checked)?;
    let loaded = crate::config::load_policy(pipeline).map_err(|d| TrustError::Pipeline {
        path: pipeline.to_path_buf(),
        message: d
            .0
            .first()
            .map(|x| format!("{}: {}", x.key_path, x.message))
            .unwrap_or_default(),
    })?;
    if let Some(signers) = &loaded.pipeline.signers {
        outside(signers, checked)?;
    }
    TrustRoot::from_pipeline(&loaded.pipeline)
}

/// The sign gate's signer of the project's pipeline, if there is a loadable one.
fn project_signer(pipeline: &Path, checked: &Path) -> Option<String> {
    if !pipeline.is_file() || outside(pipeline, checked).is_err() {
        return None;
    }
    let loaded = crate::config::load_policy(pipeline).ok()?;
    loaded.pipeline.sign_gate().map(|(_, s)| s.signer.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_checked_for_shape() {
        assert!(is_fingerprint(
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
        ));
        assert!(!is_fingerprint("SHA256:short"));
        assert!(!is_fingerprint(
            "MD5:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
        ));
    }

    #[test]
    fn only_the_release_signer_counts() {
        let release = sshsig::throwaway_key().unwrap();
        let qa = sshsig::throwaway_key().unwrap();
        let text = format!(
            "release@acme.test {}\nalice@acme.test {}\n",
            sshsig::public_line(release.public_key()),
            sshsig::public_line(qa.public_key())
        );
        let root = TrustRoot::from_signers_text(
            &text,
            Path::new("s"),
            Some("release@acme.test"),
            "test".into(),
        )
        .unwrap();
        assert!(root.release_key(release.public_key(), "file", 0).is_ok());
        let err = root.release_key(qa.public_key(), "file", 0).unwrap_err();
        assert!(err.contains("alice@acme.test"), "{err}");
        // Two principals and no --signer: ambiguous.
        assert!(matches!(
            TrustRoot::from_signers_text(&text, Path::new("s"), None, "t".into()),
            Err(TrustError::WhichSigner { .. })
        ));
    }
}

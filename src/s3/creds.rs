//! S3 credentials, from where the AWS tools look for them: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, else the shared credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`) under `AWS_PROFILE` (default
//! `default`). Never in the pipeline, and never shown: `Debug` prints only the key id's first
//! characters, and nothing else in relgate formats them.

use std::fmt;
use std::path::PathBuf;

/// An access key, its secret and an optional session token.
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret: String,
    token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.access_key_id.chars().take(4).collect();
        write!(f, "Credentials({shown}…, secret and token withheld)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
         AWS_SESSION_TOKEN for temporary ones), or give profile {profile} in {}",
        .file.display()
    )]
    Missing { profile: String, file: PathBuf },
    #[error("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not (or the other way round)")]
    Half,
    #[error(
        "profile {profile} in {} lacks aws_access_key_id or aws_secret_access_key",
        .file.display()
    )]
    Incomplete { profile: String, file: PathBuf },
}

impl Credentials {
    pub fn new(access_key_id: &str, secret: &str, token: Option<String>) -> Credentials {
        Credentials {
            access_key_id: access_key_id.to_string(),
            secret: secret.to_string(),
            token,
        }
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub(super) fn secret(&self) -> &str {
        &self.secret
    }

    pub(super) fn session_token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Every credential string, for scrubbing text that came from a server before it is shown
    /// (some S3 errors echo the canonical request, which holds the session token).
    pub(super) fn secrets(&self) -> Vec<&str> {
        let mut out = vec![self.access_key_id.as_str(), self.secret.as_str()];
        if let Some(t) = &self.token {
            out.push(t);
        }
        out.retain(|s| !s.is_empty());
        out
    }

    /// From the environment, else the shared credentials file.
    pub fn from_env() -> Result<Credentials, CredentialsError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => {
                return Ok(Credentials::new(&id, &secret, var("AWS_SESSION_TOKEN")));
            }
            (None, None) => {}
            _ => return Err(CredentialsError::Half),
        }
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let file = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))
            .unwrap_or_else(|| PathBuf::from(".aws/credentials"));
        let Ok(text) = std::fs::read_to_string(&file) else {
            return Err(CredentialsError::Missing { profile, file });
        };
        match from_ini(&text, &profile) {
            Some(Ok(c)) => Ok(c),
            Some(Err(())) => Err(CredentialsError::Incomplete { profile, file }),
            None => Err(CredentialsError::Missing { profile, file }),
        }
    }
}

/// The profile's credentials in a shared credentials file (INI): `None` when the profile is not
/// there, `Err` when it lacks the key id or the secret.
fn from_ini(text: &str, profile: &str) -> Option<Result<Credentials, ()>> {
    let mut in_profile = false;
    let mut found = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            found |= in_profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "aws_access_key_id" => id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    if !found {
        return None;
    }
    Some(match (id, secret) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Ok(Credentials::new(
            &id,
            &secret,
            token.filter(|t| !t.is_empty()),
        )),
        _ => Err(()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_file_profiles() {
        let text = "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n\n\
                    [ci]\naws_access_key_id=AKIA2\naws_secret_access_key=s2\naws_session_token=t2\n\
                    [half]\naws_access_key_id=AKIA3\n";
        let d = from_ini(text, "default").unwrap().unwrap();
        assert_eq!((d.access_key_id(), d.secret()), ("AKIA1", "s1"));
        let ci = from_ini(text, "ci").unwrap().unwrap();
        assert_eq!(ci.session_token(), Some("t2"));
        assert!(from_ini(text, "half").unwrap().is_err());
        assert!(from_ini(text, "nope").is_none());
    }

    #[test]
    fn debug_withholds_the_secret_and_token() {
        let c = Credentials::new("AKIAEXAMPLE", "very-secret", Some("tok-en".into()));
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret") && !shown.contains("tok-en"));
        assert!(!shown.contains("AKIAEXAMPLE"), "{shown}");
    }
}

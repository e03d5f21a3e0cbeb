//! Sign-offs on the share: `statements/<sha256 of the statement>.json` and its `.sig`, the
//! pair `approve` writes into a record's `approvals/`, named by content so that the same
//! statement is one object however often it is sent. Reading one checks only its name
//! against its bytes; whether it counts is the signoff gate's to judge, as for a pair dropped
//! into `approvals/` by hand.

use super::layout::{self, SIG};
use super::{Share, ShareError, Store};
use crate::approval::{MAX_STATEMENT_BYTES, Pair};

/// The sign-off pairs on the share whose name is their statement's digest, and what was
/// passed over, with why (`statements/NAME`, reason).
#[derive(Debug, Default)]
pub struct Found {
    /// Each pair named as on the share (`<hex>.json`).
    pub pairs: Vec<Pair>,
    pub ignored: Vec<(String, String)>,
}

/// Every sign-off pair of the release on the share.
pub async fn read(share: &Share, project: &str, version: &str) -> Result<Found, ShareError> {
    read_pairs(
        share,
        &layout::statements_dir(project, version),
        "statements",
    )
    .await
}

/// Every `<sha256>.json` + `.sig` pair in the folder `dir` whose name is its statement's
/// digest (CI evidence statements are kept the same way); passed-over names are shown below
/// `shown`.
pub async fn read_pairs(share: &Share, dir: &str, shown: &str) -> Result<Found, ShareError> {
    let mut found = Found::default();
    let prefix = shown;
    // A link or a file planted where the folder should be: said, and nothing taken from it.
    let names = match share.list(dir).await {
        Ok(n) => n,
        Err(e) if e.about_the_object() => {
            found.ignored.push((
                prefix.to_string(),
                format!(
                    "cannot be read: {}",
                    crate::report::printable(&e.to_string())
                ),
            ));
            return Ok(found);
        }
        Err(e) => return Err(e),
    };
    for name in &names {
        let shown = format!("{prefix}/{name}");
        if let Some(base) = name.strip_suffix(SIG) {
            if !layout::is_object_name(base) {
                found
                    .ignored
                    .push((shown, "not a name relgate writes".into()));
            }
            continue;
        }
        if !layout::is_object_name(name) {
            found
                .ignored
                .push((shown, "not a name relgate writes".into()));
            continue;
        }
        // The statement is written after its signature: one without it is still arriving.
        // `list` is sorted: a lookup per name, not a scan (anyone can leave names by the
        // hundred thousand).
        if names.binary_search(&format!("{name}{SIG}")).is_err() {
            continue;
        }
        let statement = share
            .get(&format!("{dir}/{name}"), MAX_STATEMENT_BYTES)
            .await;
        let signature = share
            .get(&format!("{dir}/{name}{SIG}"), MAX_STATEMENT_BYTES)
            .await;
        let (statement, signature) = match (statement, signature) {
            (Ok(Some(s)), Ok(Some(g))) => (s, g),
            (Ok(None), _) | (_, Ok(None)) => continue,
            (Err(e), _) | (_, Err(e)) => {
                found.ignored.push((shown, format!("cannot be read: {e}")));
                continue;
            }
        };
        if !layout::names_bytes(name, &statement) {
            found.ignored.push((
                shown,
                "its content does not match its name (it was altered, or is damaged)".into(),
            ));
            continue;
        }
        found.pairs.push(Pair {
            name: name.clone(),
            statement,
            signature,
        });
    }
    Ok(found)
}

/// Put a signed pair on the share (the signature first, so a reader never finds the statement
/// without it). Returns where the statement is.
pub async fn upload(
    share: &Share,
    project: &str,
    version: &str,
    pair: &Pair,
) -> Result<String, ShareError> {
    upload_pair(share, &layout::statements_dir(project, version), pair).await
}

/// Put a signed pair into the folder `dir` as `<sha256 of the statement>.json` and its `.sig`.
pub async fn upload_pair(share: &Share, dir: &str, pair: &Pair) -> Result<String, ShareError> {
    let name = layout::object_name(&pair.statement);
    let at = format!("{dir}/{name}");
    share.put(&format!("{at}{SIG}"), &pair.signature).await?;
    // Ed25519 signatures are deterministic: another one already there was not made by this
    // key over these bytes, and would spoil the pair.
    let sig = share
        .get(&format!("{at}{SIG}"), MAX_STATEMENT_BYTES)
        .await?;
    if sig.as_deref() != Some(pair.signature.as_slice()) {
        return Err(ShareError::Refused {
            at: share.shown(&format!("{at}{SIG}")),
            why: "another signature is already there for this statement; the share's \
                  keeper should look at it"
                .into(),
        });
    }
    share.put(&at, &pair.statement).await?;
    Ok(share.shown(&at))
}

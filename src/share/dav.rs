//! A share in a WebDAV collection, through the WebDAV client publishing uses (`crate::dav`).
//!
//! - An object is written with one PUT carrying `If-None-Match: *`, after a PROPFIND found
//!   nothing there. Both are checks before the write, not an atomic create; that is enough for
//!   content-addressed names (two writers of one name write the same bytes), and mod_dav_fs
//!   writes a PUT's body to a temporary file renamed into place, so a reader never sees half.
//! - A claimed folder is built as a hidden collection beside it and moved into place with ONE
//!   `MOVE` and `Overwrite: F`: a collection MOVE is a `rename(2)` on the server, and the loser
//!   of two racing onto one name gets 412, or on Apache 500 (`rename(2)` onto the winner's
//!   non-empty folder fails) — the guarantee publishing rests on (docs/publish.md).

use reqwest::Method;

use super::{Access, Put, ShareError, Store};
use crate::dav::{self, Dav, DavError, Payload, mkcol, move_method};
use crate::http::redact;

#[derive(Clone, Debug)]
pub struct DavShare {
    dav: Dav,
    /// The share's collection, with its trailing `/`.
    base: url::Url,
    /// Why the credentials cannot be used (half a pair), said at the first request.
    auth_problem: Option<String>,
}

impl DavShare {
    pub fn new(url: &url::Url, access: &Access) -> Result<DavShare, ShareError> {
        let client = crate::http::client(access.ca.as_deref())
            .map_err(|e| ShareError::Location(format!("{}: {e}", redact(url))))?;
        let (auth, auth_problem) =
            match crate::http::credentials_from(url, &crate::http::SHARE_VARS) {
                Ok(a) => (a, None),
                Err(e) => (None, Some(e.to_string())),
            };
        let mut base = url.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(DavShare {
            dav: Dav::new(client, auth, crate::http::stall_timeout()),
            base,
            auth_problem,
        })
    }

    fn usable(&self) -> Result<(), ShareError> {
        match &self.auth_problem {
            Some(why) => Err(ShareError::Location(format!("{}: {why}", self.describe()))),
            None => Ok(()),
        }
    }

    async fn ensure_collection(&self, url: &url::Url) -> Result<(), ShareError> {
        Ok(self.dav.ensure_collection(url).await?)
    }

    /// The collection holding `name`.
    fn parent_url(&self, name: &str) -> url::Url {
        match name.rsplit_once('/') {
            Some((up, _)) => dav::collection_url(&self.base, up),
            None => self.base.clone(),
        }
    }

    async fn exists(&self, url: &url::Url) -> Result<bool, ShareError> {
        Ok(self.dav.propfind(url, "0").await?.is_some())
    }

    async fn delete(&self, url: &url::Url) {
        let _ = self
            .dav
            .send(&Method::DELETE, url, &[], &Payload::None, true)
            .await;
    }
}

impl Store for DavShare {
    fn describe(&self) -> String {
        redact(&self.base).trim_end_matches('/').to_string()
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>, ShareError> {
        self.usable()?;
        let url = if dir.is_empty() {
            self.base.clone()
        } else {
            dav::collection_url(&self.base, dir)
        };
        let Some(members) = self.dav.propfind(&url, "1").await? else {
            return Ok(Vec::new());
        };
        let own = dav::multistatus::decode_path(url.path()).unwrap_or_default();
        let own = own.trim_end_matches('/');
        let mut out = Vec::new();
        for m in members {
            if m.path.trim_end_matches('/') == own {
                continue;
            }
            let Some((up, leaf)) = m.path.rsplit_once('/') else {
                continue;
            };
            // A server listing what was not asked is not believed.
            if up != own {
                return Err(ShareError::Dav(DavError::Listing {
                    url: redact(&url),
                    message: format!("lists {} outside the collection", m.path),
                }));
            }
            out.push(leaf.to_string());
        }
        Ok(out)
    }

    async fn get(&self, name: &str, cap: u64) -> Result<Option<Vec<u8>>, ShareError> {
        self.usable()?;
        Ok(self
            .dav
            .get_small(&dav::file_url(&self.base, name), cap)
            .await?)
    }

    async fn put(&self, name: &str, bytes: &[u8]) -> Result<Put, ShareError> {
        self.usable()?;
        let url = dav::file_url(&self.base, name);
        if self.exists(&url).await? {
            return Ok(Put::Exists);
        }
        self.ensure_collection(&self.parent_url(name)).await?;
        let headers = [("If-None-Match", "*".to_string())];
        let payload = Payload::Bytes(bytes::Bytes::copy_from_slice(bytes));
        let (resp, n) = self
            .dav
            .send(&Method::PUT, &url, &headers, &payload, true)
            .await?;
        match resp.status().as_u16() {
            200 | 201 | 204 => Ok(Put::Created),
            // 412: there now (a retry after a lost answer finds its own write); 405: a
            // collection holds the name.
            412 | 405 => Ok(Put::Exists),
            _ => Err(Dav::unexpected(&Method::PUT, &url, &resp, n).into()),
        }
    }

    async fn claim(&self, dir: &str, file: &str, bytes: &[u8]) -> Result<Put, ShareError> {
        self.usable()?;
        let target = dav::collection_url(&self.base, dir);
        if self.exists(&target).await? {
            return Ok(Put::Exists);
        }
        let parent = self.parent_url(dir);
        self.ensure_collection(&parent).await?;
        let leaf = dir.rsplit('/').next().unwrap_or(dir);
        let tmp = dav::collection_url(&parent, &format!(".{leaf}.claim-{}", super::unique()));
        let (resp, n) = self
            .dav
            .send(&mkcol(), &tmp, &[], &Payload::None, false)
            .await?;
        if resp.status().as_u16() != 201 {
            return Err(Dav::unexpected(&mkcol(), &tmp, &resp, n).into());
        }
        let file_url = dav::file_url(&tmp, file);
        let payload = Payload::Bytes(bytes::Bytes::copy_from_slice(bytes));
        let put = self
            .dav
            .send(&Method::PUT, &file_url, &[], &payload, true)
            .await;
        match put {
            Ok((resp, _)) if matches!(resp.status().as_u16(), 200 | 201 | 204) => {}
            Ok((resp, n)) => {
                self.delete(&tmp).await;
                return Err(Dav::unexpected(&Method::PUT, &file_url, &resp, n).into());
            }
            Err(e) => {
                self.delete(&tmp).await;
                return Err(e.into());
            }
        }
        let headers = [
            ("Destination", target.to_string()),
            // Never without it: Apache's default (T) deletes what is there first.
            ("Overwrite", "F".to_string()),
        ];
        // MOVE is never repeated: one whose answer was lost may have happened.
        let moved = self
            .dav
            .send(&move_method(), &tmp, &headers, &Payload::None, false)
            .await;
        if let Ok((resp, _)) = &moved
            && matches!(resp.status().as_u16(), 201 | 204)
        {
            return Ok(Put::Created);
        }
        // Refused, failed or unanswered: what is at the target now decides. Our own bytes
        // there mean the MOVE happened (the claim's content holds a token of its own).
        let ours = self
            .dav
            .get_small(&dav::file_url(&target, file), super::MAX_OBJECT_BYTES)
            .await
            .ok()
            .flatten()
            .is_some_and(|b| b == bytes);
        self.delete(&tmp).await;
        if ours {
            return Ok(Put::Created);
        }
        if self.exists(&target).await? {
            return Ok(Put::Exists);
        }
        match moved {
            Ok((resp, n)) => Err(Dav::unexpected(&move_method(), &tmp, &resp, n).into()),
            Err(e) => Err(e.into()),
        }
    }
}

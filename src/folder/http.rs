//! A folder on a WebDAV server, read over HTTP(S): listed once with PROPFIND (`Depth:
//! infinity`, or one `Depth: 1` per collection where the server refuses that), files streamed
//! with GET.
//!
//! `verify` and `replay` are plain synchronous code (they hash and judge); this folder runs its
//! requests on a small runtime of its own and hands each body chunk to the reader as it
//! arrives, so nothing is held whole. Several files may be read at once, each from a thread
//! of the caller's.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;

use super::{Access, Folder, FolderError, Item, ListError, LocationError};
use crate::dav::{self, Dav, Member};
use crate::http::redact;

pub struct HttpFolder {
    rt: tokio::runtime::Runtime,
    dav: Dav,
    /// The folder's collection URL, ending in `/`.
    url: url::Url,
    /// Every member below it (sorted), or why the folder cannot be read: made once, handed out
    /// as [`FolderError::Listing`] (a shared `Arc`, not a copy) by every call that needs it.
    listing: Result<Vec<(String, Member)>, Arc<ListError>>,
}

impl HttpFolder {
    /// Connect and list the folder at `url`. `Err` only for what makes the request impossible
    /// (a CA file that does not load, half-given credentials); a folder that is not there is
    /// reported by [`Folder::check_root`].
    pub fn open(url: &url::Url, access: &Access) -> Result<HttpFolder, LocationError> {
        let client = crate::http::client(access.ca.as_deref())?;
        let auth = crate::http::credentials(url)?;
        // Several files stream at once (`concurrency`), each read by a hashing thread of its
        // own that waits here for its next chunk: the connections are driven by the runtime's
        // own threads, so no reader waits for another to hand the runtime back.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("relgate-http")
            .enable_all()
            .build()
            .map_err(|source| LocationError::Runtime { source })?;
        let mut url = url.clone();
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let dav = Dav::new(client, auth, crate::http::stall_timeout());
        let listing = match rt.block_on(dav.list_tree(&url)) {
            Ok(Some(mut l)) => {
                l.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(l)
            }
            Ok(None) => Err(Arc::new(ListError::NotFound { url: redact(&url) })),
            Err(source) => Err(Arc::new(ListError::Dav {
                url: redact(&url),
                source,
            })),
        };
        Ok(HttpFolder {
            rt,
            dav,
            url,
            listing,
        })
    }

    /// The listing, or the error it failed with (shared, not copied).
    fn listed(&self) -> Result<&[(String, Member)], FolderError> {
        self.listing
            .as_deref()
            .map_err(|e| FolderError::Listing(Arc::clone(e)))
    }

    fn member(&self, rel: &str) -> Option<&Member> {
        let list = self.listing.as_ref().ok()?;
        list.binary_search_by(|(r, _)| r.as_str().cmp(rel))
            .ok()
            .map(|i| &list[i].1)
    }
}

impl Folder for HttpFolder {
    fn describe(&self) -> String {
        redact(&self.url).trim_end_matches('/').to_string()
    }

    fn check_root(&self) -> Result<(), FolderError> {
        self.listed().map(|_| ())
    }

    fn open(&self, rel: &str) -> Result<Box<dyn Read + '_>, FolderError> {
        self.check_root()?;
        let rel_owned = || rel.to_string();
        match self.member(rel) {
            None => return Err(FolderError::Missing { rel: rel_owned() }),
            Some(m) if m.collection => return Err(FolderError::NotRegular { rel: rel_owned() }),
            Some(_) => {}
        }
        let url = dav::file_url(&self.url, rel);
        match self.rt.block_on(self.dav.get(&url)) {
            Ok(Some(resp)) => Ok(Box::new(Body {
                folder: self,
                url,
                resp,
                chunk: Bytes::new(),
            })),
            Ok(None) => Err(FolderError::Missing { rel: rel_owned() }),
            Err(e) => Err(FolderError::Get {
                url: redact(&url),
                source: Box::new(e),
            }),
        }
    }

    fn walk(&self, skip: Option<&str>) -> Vec<Item> {
        let Ok(list) = &self.listing else {
            return Vec::new();
        };
        list.iter()
            .filter(|(rel, _)| {
                skip.is_none_or(|s| rel.strip_prefix(s).is_none_or(|r| !r.starts_with('/')))
            })
            .map(|(rel, m)| Item::Entry {
                rel: rel.clone(),
                dir: m.collection,
            })
            .collect()
    }

    fn regular_files(&self) -> Result<Vec<String>, FolderError> {
        Ok(self
            .listed()?
            .iter()
            .filter(|(_, m)| !m.collection)
            .map(|(rel, _)| rel.clone())
            .collect())
    }

    fn size(&self, rel: &str) -> Option<u64> {
        self.member(rel)
            .filter(|m| !m.collection)
            .and_then(|m| m.length)
    }

    fn is_dir(&self, rel: &str) -> Result<bool, FolderError> {
        Ok(self.member(rel).is_some_and(|m| m.collection))
    }

    /// As many GETs at once as a publish sends PUTs: enough to keep a link busy while each
    /// stream waits on its own round trips, few enough not to hammer the server.
    fn concurrency(&self) -> usize {
        4
    }
}

/// A GET's body as a reader: each `read` waits for the next chunk (or the stall timeout).
struct Body<'a> {
    folder: &'a HttpFolder,
    url: url::Url,
    resp: reqwest::Response,
    chunk: Bytes,
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            let f = self.folder;
            match f.rt.block_on(f.dav.chunk(&self.url, &mut self.resp)) {
                Ok(Some(c)) => self.chunk = c,
                Ok(None) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

//! A share under an S3 prefix, through relgate's own S3 client (`crate::s3`). Every object is
//! written with `If-None-Match: *`, which the server decides atomically (`412` for the loser);
//! a claimed folder is its one file, written the same way. Create-only holds only on servers
//! that honour that header (docs/publish.md, "Which S3 servers keep the promise").

use super::{Access, Put, ShareError, Store};
use crate::s3::Bucket;
use crate::s3::body::Payload;

#[derive(Clone, Debug)]
pub struct S3Share {
    bucket: Bucket,
    prefix: String,
}

impl S3Share {
    /// The endpoint comes from the pipeline (`share.endpoint`), else `AWS_ENDPOINT_URL_S3` or
    /// `AWS_ENDPOINT_URL`, else AWS; an extra CA from `share.ca` or `AWS_CA_BUNDLE`.
    pub fn new(location: &str, access: &Access) -> Result<S3Share, ShareError> {
        let (bucket, prefix) = crate::s3::parse_url(location).map_err(ShareError::Location)?;
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let endpoint = access
            .endpoint
            .clone()
            .or_else(|| var("AWS_ENDPOINT_URL_S3"))
            .or_else(|| var("AWS_ENDPOINT_URL"));
        let ca = access
            .ca
            .clone()
            .or_else(|| var("AWS_CA_BUNDLE").map(std::path::PathBuf::from));
        let bucket = Bucket::connect(
            &bucket,
            endpoint.as_deref(),
            access.region.as_deref(),
            ca.as_deref(),
        )?;
        Ok(S3Share { bucket, prefix })
    }

    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }
}

impl Store for S3Share {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket.bucket, self.prefix)
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>, ShareError> {
        let prefix = if dir.is_empty() {
            format!("{}/", self.prefix)
        } else {
            format!("{}/", self.key(dir))
        };
        let listed = self.bucket.list(&prefix).await?;
        Ok(listed
            .into_iter()
            .filter_map(|l| {
                l.key
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.split('/').next())
                    .map(str::to_string)
            })
            .collect())
    }

    async fn get(&self, name: &str, cap: u64) -> Result<Option<Vec<u8>>, ShareError> {
        Ok(self.bucket.get_small(&self.key(name), cap).await?)
    }

    async fn put(&self, name: &str, bytes: &[u8]) -> Result<Put, ShareError> {
        let payload = Payload::Bytes {
            bytes: bytes::Bytes::copy_from_slice(bytes),
            sha256: crate::digest::sha256_hex(bytes),
        };
        match crate::s3::upload::put_create(&self.bucket, &self.key(name), payload).await? {
            crate::s3::upload::Put::Created => Ok(Put::Created),
            crate::s3::upload::Put::Exists => Ok(Put::Exists),
        }
    }

    async fn claim(&self, dir: &str, file: &str, bytes: &[u8]) -> Result<Put, ShareError> {
        // A retried write that finds its own object was the winner all along.
        match self.put(&format!("{dir}/{file}"), bytes).await? {
            Put::Created => Ok(Put::Created),
            Put::Exists => {
                let there = self
                    .get(&format!("{dir}/{file}"), super::MAX_OBJECT_BYTES)
                    .await?;
                Ok(if there.as_deref() == Some(bytes) {
                    Put::Created
                } else {
                    Put::Exists
                })
            }
        }
    }
}

//! Create-only writes: one PUT with `If-None-Match: *` for a small object, a multipart upload
//! completed with `If-None-Match: *` for a large one (aborted whenever it does not complete).
//! Either way the server refuses, with 412, to replace an object that is there.

use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

use super::body::{self, Payload};
use super::client::{Bucket, MAX_ATTEMPTS, Op, hex_to_base64};
use super::{S3Error, xml};

/// Files larger than this go up in parts of this size (S3's minimum part is 5 MiB). One part is
/// the only thing an upload holds in memory.
pub const PART_SIZE: u64 = 8 << 20;
/// S3's limit on the number of parts.
const MAX_PARTS: u64 = 10_000;

/// What a create-only write found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    Created,
    /// Something is there already (412); the caller compares it.
    Exists,
}

/// Put `payload` at `key` unless an object is there.
pub async fn put_create(b: &Bucket, key: &str, payload: Payload) -> Result<Put, S3Error> {
    let sha = payload.sha256_hex();
    let mut op = Op::new(Method::PUT, key).header("if-none-match", "*");
    // The server checks the body against it (and keeps it, for a later HEAD to compare).
    if let Some(b64) = hex_to_base64(&sha) {
        op = op.header("x-amz-checksum-sha256", &b64);
    }
    let op = op.payload(payload);
    let resp = b.send(&op).await?;
    match resp.status() {
        s if s.is_success() => Ok(Put::Created),
        StatusCode::PRECONDITION_FAILED => Ok(Put::Exists),
        _ => Err(b.fail(&op, resp).await),
    }
}

/// Put the file at `path` (`size` bytes, SHA-256 `sha256`, as staged) at `key` unless an object
/// is there: in one request up to [`PART_SIZE`], else in parts.
pub async fn put_file(
    b: &Bucket,
    key: &str,
    path: &std::path::Path,
    size: u64,
    sha256: &str,
) -> Result<Put, S3Error> {
    if size <= PART_SIZE {
        let payload = Payload::File {
            path: path.to_path_buf(),
            size,
            sha256: sha256.to_string(),
        };
        return put_create(b, key, payload).await;
    }
    let id = start(b, key).await?;
    let result = parts_then_complete(b, key, &id, path, size, sha256).await;
    if !matches!(result, Ok(Put::Created)) {
        // Nothing of an upload that did not complete may linger (it is invisible, but billed).
        let _ = abort(b, key, &id).await;
    }
    result
}

fn part_size(size: u64) -> u64 {
    let mib = 1u64 << 20;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(mib) * mib;
    PART_SIZE.max(needed)
}

async fn start(b: &Bucket, key: &str) -> Result<String, S3Error> {
    let mut op = Op::new(Method::POST, key)
        .query("uploads", "")
        .payload(Payload::bytes(Vec::new()));
    // A repeated start leaves a second, unused upload behind: not worth it.
    op.idempotent = false;
    let resp = b.send(&op).await?;
    if !resp.status().is_success() {
        return Err(b.fail(&op, resp).await);
    }
    let bytes = b.small_body(key, resp).await?;
    let flat = xml::flatten(&bytes).map_err(|why| b.protocol(&op, &why))?;
    xml::first(&flat, "InitiateMultipartUploadResult/UploadId")
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| b.protocol(&op, "no UploadId in the answer"))
}

async fn parts_then_complete(
    b: &Bucket,
    key: &str,
    id: &str,
    path: &std::path::Path,
    size: u64,
    sha256: &str,
) -> Result<Put, S3Error> {
    let io = |e: std::io::Error| S3Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(io)?;
    let part = part_size(size) as usize;
    let mut whole = Sha256::new();
    let mut etags = Vec::new();
    let mut sent = 0u64;
    let mut number = 1u32;
    while sent < size {
        let payload = body::read_part(&mut file, part, &mut whole)
            .await
            .map_err(io)?;
        let len = payload.content_length().unwrap_or(0);
        if len == 0 {
            break;
        }
        sent += len;
        let n = number.to_string();
        let op = Op::new(Method::PUT, key)
            .query("partNumber", &n)
            .query("uploadId", id)
            .payload(payload);
        let resp = b.send(&op).await?;
        if !resp.status().is_success() {
            return Err(b.fail(&op, resp).await);
        }
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| b.protocol(&op, "an uploaded part without an ETag"))?;
        etags.push((number, etag));
        number += 1;
    }
    // The whole file, as read for the parts, must still be what staging recorded (and no
    // longer): else the upload is aborted and nothing appears.
    let extra = body::read_part(&mut file, 1, &mut whole)
        .await
        .map_err(io)?;
    let found = hex::encode(whole.finalize());
    if sent != size || extra.content_length() != Some(0) || found != sha256 {
        return Err(S3Error::StagedChanged {
            key: b.shown(key),
            found,
        });
    }
    complete(b, key, id, &etags).await
}

/// CompleteMultipartUpload with `If-None-Match: *`. S3 may answer 200 with an error document
/// (the work takes long and the status is sent first), so the body decides; its retryable
/// codes are retried here, as `send` retries statuses.
async fn complete(
    b: &Bucket,
    key: &str,
    id: &str,
    etags: &[(u32, String)],
) -> Result<Put, S3Error> {
    let mut doc = String::from("<CompleteMultipartUpload>");
    for (n, etag) in etags {
        doc.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
            quick_xml::escape::escape(etag.as_str())
        ));
    }
    doc.push_str("</CompleteMultipartUpload>");
    let op = Op::new(Method::POST, key)
        .query("uploadId", id)
        .header("if-none-match", "*")
        .payload(Payload::bytes(doc.into_bytes()));
    let mut attempt = 1;
    loop {
        let resp = b.send(&op).await?;
        let status = resp.status();
        match status {
            StatusCode::PRECONDITION_FAILED => return Ok(Put::Exists),
            // A retry after a lost answer finds the upload gone: it completed, or someone else's
            // object is there. The caller compares either way.
            StatusCode::NOT_FOUND if attempt > 1 => return Ok(Put::Exists),
            s if s.is_success() => {}
            _ => return Err(b.fail(&op, resp).await),
        }
        let bytes = b.small_body(key, resp).await?;
        let (code, _) = xml::error_code(&bytes);
        match code.as_deref() {
            None => return Ok(Put::Created),
            Some("PreconditionFailed") => return Ok(Put::Exists),
            Some("InternalError" | "SlowDown" | "ConditionalRequestConflict")
                if attempt < MAX_ATTEMPTS =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                attempt += 1;
            }
            Some(_) => return Err(b.status_error(&op, status, &bytes, attempt)),
        }
    }
}

async fn abort(b: &Bucket, key: &str, id: &str) -> Result<(), S3Error> {
    let op = Op::new(Method::DELETE, key).query("uploadId", id);
    let resp = b.send(&op).await?;
    if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
        Ok(())
    } else {
        Err(b.fail(&op, resp).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_stay_within_s3_limits() {
        assert_eq!(part_size(9 << 20), PART_SIZE);
        let huge = 200u64 << 30; // 200 GiB
        let p = part_size(huge);
        assert!(
            huge.div_ceil(p) <= MAX_PARTS && p.is_multiple_of(1 << 20),
            "{p}"
        );
    }
}

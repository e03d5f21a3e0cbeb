//! `relgate verify s3://…` and `relgate replay s3://…`: the release is read out of the bucket
//! (listed, then each object streamed to a temporary folder, sizes checked against the
//! listing) and checked by the very code that checks a local folder, under the same trust
//! rules. A prefix without its commit marker (`SHA256SUMS.sig`) is not a release and is
//! refused before anything is read.
//!
//! Where the bucket is: the endpoint from `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, else the
//! project's `publish.endpoint` when its `publish.to` names the same bucket, else AWS; the
//! region and an extra CA (`AWS_CA_BUNDLE`) likewise. Credentials as for publishing.

use crate::output::{errln, outln};
use std::path::{Path, PathBuf};

use super::Format;
use crate::exit;
use crate::layout::SIG_FILE;
use crate::s3::{Bucket, fetch};
use crate::trust::{self, TrustArgs};

/// Is `path` an S3 URL these commands read remotely?
pub fn is_s3(path: &Path) -> Option<&str> {
    path.to_str().filter(|s| s.starts_with("s3://"))
}

/// Connect, refuse a markerless prefix, download into a temporary folder.
pub(crate) fn fetch_release(
    url: &str,
    pipeline: &Path,
) -> Result<tempfile::TempDir, (i32, String)> {
    let (bucket, prefix) = crate::s3::parse_url(url).map_err(|m| (exit::CONFIG, m))?;
    let (endpoint, region, ca) = location(&bucket, pipeline);
    let b = Bucket::connect(
        &bucket,
        endpoint.as_deref(),
        region.as_deref(),
        ca.as_deref(),
    )
    .map_err(|e| (exit::CONFIG, e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| (exit::REFUSED, format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        let marker = format!("{prefix}/{SIG_FILE}");
        let present = b
            .head(&marker)
            .await
            .map_err(|e| (exit::REFUSED, e.to_string()))?;
        if present.is_none() {
            return Err((
                exit::REFUSED,
                format!(
                    "{url}: not published: {SIG_FILE}, the commit marker written last, is not \
                     there (an upload that never completed, or no release at all)"
                ),
            ));
        }
        let tmp = tempfile::Builder::new()
            .prefix(".relgate-s3-")
            .tempdir()
            .map_err(|e| {
                (
                    exit::REFUSED,
                    format!("cannot make a temporary folder: {e}"),
                )
            })?;
        fetch::download_release(&b, &prefix, tmp.path())
            .await
            .map_err(|e| (exit::REFUSED, e.to_string()))?;
        Ok(tmp)
    })
}

/// Endpoint, region and CA for `bucket`: the environment first, then the project's pipeline
/// when it publishes to that bucket.
fn location(bucket: &str, pipeline: &Path) -> (Option<String>, Option<String>, Option<PathBuf>) {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let publish = pipeline
        .is_file()
        .then(|| crate::config::load_policy(pipeline).ok())
        .flatten()
        .and_then(|l| l.pipeline.publish)
        .filter(|p| {
            crate::s3::parse_url(&p.to.replace("{project}", "p").replace("{version}", "v"))
                .is_ok_and(|(b, _)| b == bucket)
        });
    let endpoint = var("AWS_ENDPOINT_URL_S3")
        .or_else(|| var("AWS_ENDPOINT_URL"))
        .or_else(|| publish.as_ref().and_then(|p| p.endpoint.clone()));
    let region = publish.as_ref().and_then(|p| p.region.clone());
    let ca = var("AWS_CA_BUNDLE")
        .map(PathBuf::from)
        .or_else(|| publish.as_ref().and_then(|p| p.ca.clone()));
    (endpoint, region, ca)
}

/// `relgate verify s3://…`.
pub fn verify(url: &str, trust_args: &TrustArgs, pipeline: &Path) -> i32 {
    let root = match trust::resolve(trust_args, pipeline, Path::new(url)) {
        Ok(r) => r,
        Err(e) => {
            errln!("relgate: {e}");
            return exit::CONFIG;
        }
    };
    let tmp = match fetch_release(url, pipeline) {
        Ok(t) => t,
        Err((code, m)) => {
            errln!("error: {m}");
            return code;
        }
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match crate::verify::check(&crate::folder::LocalFolder::new(tmp.path()), &root, now) {
        Ok(v) => {
            outln!(
                "verified: {url}: {} files, SHA256SUMS signed by {} (trust root: {})",
                v.files,
                v.signer,
                root.source
            );
            exit::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                errln!("{p}");
            }
            errln!(
                "error: {url}: {} problem(s); the release is not verified",
                problems.len()
            );
            exit::REFUSED
        }
    }
}

/// `relgate replay s3://…`.
pub fn replay(
    url: &str,
    trust_args: &TrustArgs,
    pipeline: &Path,
    checkpoints: &[PathBuf],
    format: Format,
) -> i32 {
    let trust = match trust::resolve(trust_args, pipeline, Path::new(url)) {
        Ok(t) => t,
        Err(e) => {
            errln!("relgate: {e}");
            return exit::CONFIG;
        }
    };
    let tmp = match fetch_release(url, pipeline) {
        Ok(t) => t,
        Err((code, m)) => {
            errln!("relgate: replay failed: {m}");
            return code;
        }
    };
    let mut report = crate::replay::replay(
        tmp.path(),
        &crate::replay::ReplayOptions {
            trust: &trust,
            checkpoints,
        },
    );
    // Name what was checked as the user named it, not the temporary copy.
    let local = tmp.path().display().to_string();
    report.record = PathBuf::from(format!("{url}/{}", crate::layout::AUDIT_DIR));
    if let Some(p) = &mut report.problem {
        p.message = p.message.replace(&local, url);
    }
    super::print_replay(&report, format)
}

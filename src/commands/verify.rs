//! `relgate verify DIR|URL`: resolve the trust root, check the folder ([`crate::verify`]), print.
//! A URL is an `http(s)://` WebDAV collection or an `s3://` prefix, read through the same trait.

use crate::output::{errln, outln};
use std::path::Path;

use crate::exit;
use crate::folder::{self, Access, Folder};
use crate::signers;
use crate::trust::{self, TrustArgs};
use crate::verify::{AUDIT_SIGNERS, check};

/// `relgate verify DIR|URL`: resolves the trust root, prints the result, returns the exit code.
pub fn run(dir: &Path, trust_args: &TrustArgs, pipeline: &Path, access: &Access) -> i32 {
    let root = trust::resolve(trust_args, pipeline, dir);
    let folder = match folder::open(dir, &access.with_pipeline(pipeline)) {
        Ok(f) => f,
        Err(e) => {
            if let Err(t) = &root {
                errln!("relgate: {t}");
            }
            errln!("relgate: {e}");
            return exit::CONFIG;
        }
    };
    let root = match root {
        Ok(r) => r,
        Err(e) => {
            errln!("relgate: {e}");
            if matches!(e, trust::TrustError::Missing) {
                show_untrusted_signers(folder.as_ref(), AUDIT_SIGNERS);
            }
            return exit::CONFIG;
        }
    };
    let dir = folder.describe();
    match check(folder.as_ref(), &root, now()) {
        Ok(v) => {
            outln!(
                "verified: {} files, SHA256SUMS signed by {} (trust root: {})",
                v.files,
                v.signer,
                root.source
            );
            outln!(
                "attestation: {} (SLSA VSA v1, {}) signed by the same key, over the same \
                 artefacts; {} is that key",
                crate::layout::VSA_FILE,
                crate::intoto::vsa::LEVEL_ACCEPTED,
                crate::layout::PUBKEY_FILE
            );
            exit::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                errln!("{p}");
            }
            errln!(
                "error: {dir}: {} problem(s); the release folder is not verified",
                problems.len()
            );
            exit::REFUSED
        }
    }
}

/// Show what a folder's own allowed_signers (`rel` in it) says, clearly as untrusted: it helps
/// a user find the right trust root, and can never be one.
pub(crate) fn show_untrusted_signers(folder: &dyn Folder, rel: &str) {
    let Ok(bytes) = folder::read_capped(folder, rel, folder::MAX_SMALL_FILE) else {
        return;
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return;
    };
    let Ok(allowed) = signers::parse(&text) else {
        return;
    };
    errln!(
        "  {}/{rel} lists (UNTRUSTED, for information only; anyone who can write the folder can write it):",
        folder.describe()
    );
    for e in &allowed.entries {
        errln!("    {} {}", e.principals.join(","), e.fingerprint);
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

//! `relgate verify DIR`: resolve the trust root, check the folder ([`crate::verify`]), print.

use crate::output::{errln, outln};
use std::path::Path;

use crate::exit;
use crate::signers;
use crate::trust::{self, TrustArgs};
use crate::verify::{AUDIT_SIGNERS, check, read_regular};

/// `relgate verify DIR`: resolves the trust root, prints the result, returns the exit code.
pub fn run(dir: &Path, trust_args: &TrustArgs, pipeline: &Path) -> i32 {
    let root = match trust::resolve(trust_args, pipeline, dir) {
        Ok(r) => r,
        Err(e) => {
            errln!("relgate: {e}");
            if matches!(e, trust::TrustError::Missing) {
                show_untrusted_signers(&dir.join(AUDIT_SIGNERS));
            }
            return exit::CONFIG;
        }
    };
    match check(dir, &root, now()) {
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
                "error: {}: {} problem(s); the release folder is not verified",
                dir.display(),
                problems.len()
            );
            exit::REFUSED
        }
    }
}

/// Show what a folder's own allowed_signers says, clearly as untrusted: it helps a user find
/// the right trust root, and can never be one.
pub(crate) fn show_untrusted_signers(path: &Path) {
    let Ok(bytes) = read_regular(path) else {
        return;
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return;
    };
    let Ok(allowed) = signers::parse(&text) else {
        return;
    };
    errln!(
        "  {} lists (UNTRUSTED, for information only; anyone who can write the folder can write it):",
        path.display()
    );
    for e in &allowed.entries {
        errln!("    {} {}", e.principals.join(","), e.fingerprint);
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

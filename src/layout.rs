//! The names a published release folder keeps for itself, in one place: everything that builds,
//! checks or names a release's files (staging, the sign gate, publishing, `verify`, `replay`,
//! the release-path rule) takes them from here.

/// The checksum file: GNU `sha256sum` lines over every artefact. Its SHA-256 is the subject.
pub const SUMS_FILE: &str = "SHA256SUMS";
/// The release signer's SSHSIG over `SHA256SUMS`, namespace `file`; the commit marker of a
/// remote release (written last).
pub const SIG_FILE: &str = "SHA256SUMS.sig";
/// The folder holding the release record.
pub const AUDIT_DIR: &str = "audit";
/// The published record's copy of the signers file in force (evidence, never a trust root).
pub const AUDIT_SIGNERS: &str = "audit/allowed_signers";
/// The release's SLSA Verification Summary Attestation: one line, a DSSE envelope signed by the
/// release key (`crate::intoto::vsa`).
pub const VSA_FILE: &str = "attestation.intoto.jsonl";
/// The release key as an SPKI PEM, for DSSE verifiers of [`VSA_FILE`].
pub const PUBKEY_FILE: &str = "release.pub.pem";

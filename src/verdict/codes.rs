//! Every reason code relgate reports, in one place. A gate's [`Reason`](super::Reason) takes a
//! [`Code`], never a string, so a code cannot be made up at the call site: adding one means
//! adding it here, and the tests below then require it to be unique and documented in
//! docs/diagnostics.md. The text of a code is stable (scripts match on it) and is what the
//! release log records; a record read back keeps its codes as text, so that a code retired
//! here still reads in an old release.

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// A stable, kebab-case reason code (docs/diagnostics.md).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[$doc])* $variant,)*
        }

        impl Code {
            /// Every code, in the order of docs/diagnostics.md.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }
        }
    };
}

codes! {
    // Every gate
    NeedsNotGreen = "needs-not-green",
    NeedsPending = "needs-pending",
    Interrupted = "interrupted",
    CollectError = "collect-error",
    Timeout = "timeout",
    EvidenceMalformed = "evidence-malformed",
    EvidenceUnreadable = "evidence-unreadable",
    EvidenceMissing = "evidence-missing",
    EvidenceMismatch = "evidence-mismatch",
    GateSkipped = "gate-skipped",
    // regression
    SpawnFailed = "spawn-failed",
    CommandFailed = "command-failed",
    CommandSignalled = "command-signalled",
    ProcessEscaped = "process-escaped",
    ProcessesUnaccounted = "processes-unaccounted",
    MinTestsWithoutJunit = "min-tests-without-junit",
    JunitPatternInvalid = "junit-pattern-invalid",
    JunitMissing = "junit-missing",
    JunitFutureMtime = "junit-future-mtime",
    JunitOutsideProject = "junit-outside-project",
    JunitTooLarge = "junit-too-large",
    JunitUnreadable = "junit-unreadable",
    JunitUnparsable = "junit-unparsable",
    JunitDoctype = "junit-doctype",
    TestsFailed = "tests-failed",
    TooFewTests = "too-few-tests",
    // regression with `from_share` (evidence from CI)
    CiJobMissing = "ci-job-missing",
    CiCommitUnknown = "ci-commit-unknown",
    CiShareUnreadable = "ci-share-unreadable",
    CiNoSigners = "ci-no-signers",
    CiStatementMalformed = "ci-statement-malformed",
    CiBadSignature = "ci-bad-signature",
    CiSignerNotAllowed = "ci-signer-not-allowed",
    CiSignerNotInSignedBy = "ci-signer-not-in-signed-by",
    CiOtherProject = "ci-other-project",
    CiOtherCommit = "ci-other-commit",
    CiJobNotNamed = "ci-job-not-named",
    CiStatementFromFuture = "ci-statement-from-future",
    CiReportMissing = "ci-report-missing",
    CiReportAltered = "ci-report-altered",
    // sign
    KeyUnavailable = "key-unavailable",
    KeyUnusable = "key-unusable",
    SignatureMissing = "signature-missing",
    SumsNotWritten = "sums-not-written",
    SubjectMismatch = "subject-mismatch",
    SignatureInvalid = "signature-invalid",
    ThrowawayKey = "throwaway-key",
    SignersMissing = "signers-missing",
    SignersInvalid = "signers-invalid",
    SignerNotAllowed = "signer-not-allowed",
    // virus-scan
    VirusFound = "virus-found",
    EncryptedContent = "encrypted-content",
    ScanError = "scan-error",
    ScannerUnavailable = "scanner-unavailable",
    TooLarge = "too-large",
    SignaturesStale = "signatures-stale",
    SignaturesUndated = "signatures-undated",
    DigestMismatch = "digest-mismatch",
    NotScanned = "not-scanned",
    // signoff
    QuorumNotMet = "quorum-not-met",
    SignoffRejected = "signoff-rejected",
    ApprovalUnpaired = "approval-unpaired",
    ApprovalFileRefused = "approval-file-refused",
    ApprovalNotCanonical = "approval-not-canonical",
    ApprovalMalformed = "approval-malformed",
    ApprovalBadSignature = "approval-bad-signature",
    ApprovalKeyMismatch = "approval-key-mismatch",
    ApprovalSignerNotAllowed = "approval-signer-not-allowed",
    ApprovalOtherRelease = "approval-other-release",
    ApprovalOtherGate = "approval-other-gate",
    ApprovalOtherSubject = "approval-other-subject",
    ApprovalOtherPolicy = "approval-other-policy",
    ApprovalOutsideRole = "approval-outside-role",
    ApprovalByAuthor = "approval-by-author",
    ApprovalByOperator = "approval-by-operator",
    ApprovalByReleaseSigner = "approval-by-release-signer",
    ApprovalFromFuture = "approval-from-future",
    ApprovalBackdated = "approval-backdated",
    ApprovalExpired = "approval-expired",
    ApprovalWithdrawn = "approval-withdrawn",
    ApprovalSuperseded = "approval-superseded",
    ApprovalKeyShared = "approval-key-shared",
    RequestMissing = "request-missing",
    RequestClosed = "request-closed",
    RequestInvalid = "request-invalid",
    ShareUnreadable = "share-unreadable",
    // change-record
    ChangeUnreviewed = "change-unreviewed",
    ChangeSelfReviewed = "change-self-reviewed",
    ChangeIdentityMalformed = "change-identity-malformed",
    ChangeUntested = "change-untested",
    PackagerAuthored = "packager-authored",
    ChangeRangeEmpty = "change-range-empty",
    ChangeRangeStartNotAncestor = "change-range-start-not-ancestor",
    ChangeRangeInvalid = "change-range-invalid",
    ChangeHistoryShallow = "change-history-shallow",
    ChangeHistoryUnguarded = "change-history-unguarded",
    ChangesMissing = "changes-missing",
    ChangeRangeUnreadable = "change-range-unreadable",
    TestPathsInvalid = "test-paths-invalid",
    // security-review
    FindingsMissing = "findings-missing",
    SarifUnreadable = "sarif-unreadable",
    SarifDuplicateKey = "sarif-duplicate-key",
    ScanFailed = "scan-failed",
    ScanIncomplete = "scan-incomplete",
    SarifRuleMismatch = "sarif-rule-mismatch",
    SarifKindInconsistent = "sarif-kind-inconsistent",
    SeverityUnreadable = "severity-unreadable",
    RegisterInvalid = "register-invalid",
    PentestInvalid = "pentest-invalid",
    FindingUnassigned = "finding-unassigned",
    RegisterAmbiguous = "register-ambiguous",
    RemediationOverdue = "remediation-overdue",
    FixedStillReported = "fixed-still-reported",
    SlaExceeded = "sla-exceeded",
    SeverityBlocks = "severity-blocks",
    PentestStale = "pentest-stale",
    PentestFindingUnassigned = "pentest-finding-unassigned",
    RegisterEntryStale = "register-entry-stale",
    RegisterEntryUnqualified = "register-entry-unqualified",
}

impl Code {
    /// The code with this text, if relgate has one.
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == text)
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Code, D::Error> {
        let text = String::deserialize(d)?;
        Code::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown reason code {text:?}")))
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Code> for &str {
    fn eq(&self, other: &Code) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Code> for String {
    fn eq(&self, other: &Code) -> bool {
        self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::Code;

    fn diagnostics() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/diagnostics.md");
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn every_code_is_unique_and_kebab_case() {
        let mut seen = BTreeSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} is registered twice");
            assert!(
                !s.is_empty()
                    && s.split('-').all(|w| !w.is_empty()
                        && w.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())),
                "{s} is not kebab-case"
            );
        }
    }

    #[test]
    fn every_code_is_documented() {
        let doc = diagnostics();
        let missing: Vec<_> = Code::ALL
            .iter()
            .map(|c| c.as_str())
            .filter(|s| !doc.contains(&format!("`{s}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "not in docs/diagnostics.md: {missing:?}"
        );
    }

    /// The other way round: a code in the first column of a table in docs/diagnostics.md is
    /// one relgate can report.
    #[test]
    fn every_documented_code_is_registered() {
        let known: BTreeSet<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let mut stale = Vec::new();
        for line in diagnostics().lines() {
            if !line.starts_with("| `") {
                continue;
            }
            let cell = line.split('|').nth(1).unwrap_or_default();
            for code in cell.split('`').skip(1).step_by(2) {
                if !known.contains(code) {
                    stale.push(code.to_string());
                }
            }
        }
        assert!(stale.is_empty(), "documented but never reported: {stale:?}");
    }
}

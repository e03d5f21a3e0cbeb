//! The checked pipeline: what the engine, the judges and replay see after validation.
//!
//! Every value here has been validated: ids are well formed, `needs` form a DAG, durations are
//! parsed, paths are resolved. The whole structure is serialisable so that a run can record the
//! exact policy it applied, and replay can judge again under that same policy.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A validated `pipeline.yaml`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Pipeline {
    /// Absolute path of the pipeline file.
    pub file: PathBuf,
    /// The pipeline file's folder; every relative path in the pipeline is resolved against it.
    pub root: PathBuf,
    pub project: String,
    /// Resolved state folder (`--state`, else `state_dir`, else `.relgate` beside the pipeline).
    pub state_dir: PathBuf,
    /// Artefact globs as written, in order.
    pub artefacts: Vec<String>,
    /// The resolved `allowed_signers` file, when `signers` is set.
    pub signers: Option<PathBuf>,
    /// role -> principals.
    pub roles: BTreeMap<String, Vec<String>>,
    pub changes: Option<Changes>,
    /// Gates in a topological order of `needs` (ties broken by declaration order).
    pub gates: Vec<GateSpec>,
    pub publish: Option<Publish>,
    /// The team's shared store (`share:`): requests, sign-offs, checkpoints, dry-run records.
    /// Left out of the recorded policy when unset, so records made before it existed derive
    /// again to the same pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<ShareSpec>,
}

impl Pipeline {
    pub fn gate(&self, id: &str) -> Option<&GateSpec> {
        self.gates.iter().find(|g| g.id == id)
    }

    /// The single `sign` gate (validation guarantees exactly one).
    pub fn sign_gate(&self) -> Option<(&GateSpec, &SignSpec)> {
        self.gates.iter().find_map(|g| match &g.kind {
            GateKind::Sign(s) => Some((g, s)),
            _ => None,
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Changes {
    pub repo: PathBuf,
    pub range: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Publish {
    /// The target as written (`{project}`, `{version}` are substituted): a folder, an
    /// `https://` (or loopback `http://`) WebDAV collection, or `s3://bucket/prefix`; resolved
    /// by `crate::publish::Destination::resolve`.
    pub to: String,
    /// S3 only: the endpoint URL (default: AWS's regional endpoint).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// S3 only: the signing region (default: `AWS_REGION`, else `us-east-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// A PEM file of CA certificates trusted besides the platform's, for an in-house CA.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Allow plain `http://` to a host other than this machine (credentials and bytes travel
    /// unencrypted).
    #[serde(default)]
    pub allow_http: bool,
}

/// `share:`: where a release's team meets (docs/team.md).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ShareSpec {
    /// As written: a folder (relative to the pipeline root), an `https://` (or loopback
    /// `http://`) WebDAV collection, or `s3://bucket/prefix`; opened by `crate::share::open`.
    pub url: String,
    /// S3 only: the endpoint URL.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// S3 only: the signing region.
    #[serde(default)]
    pub region: Option<String>,
    /// A PEM file of CA certificates trusted besides the platform's.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    #[serde(default)]
    pub allow_http: bool,
    /// How long a publish lease holds before another machine may take it (seconds).
    pub lease_secs: u64,
}

/// One webhook of `notify:` (`crate::config::Loaded::notify`). Not part of [`Pipeline`]: no
/// judge reads it, so it stays out of the recorded policy (the pipeline's text, recorded
/// verbatim, holds it). Nothing secret is held here: the policy is recorded verbatim in
/// the release log and published with the release, so a secret and a URL that is itself a
/// secret (Slack's) are named by the environment variable that holds them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Notify {
    pub target: NotifyTarget,
    pub format: NotifyFormat,
    /// The outcomes it is told about.
    pub on: Vec<NotifyEvent>,
    /// The environment variable holding the HMAC-SHA256 key for the signature header.
    pub secret_env: Option<String>,
    /// Attempts after the first one, for a connection that fails, a timeout, 429 or 5xx.
    pub retries: u32,
    /// Seconds one attempt may take.
    pub timeout_secs: u64,
    /// Allow plain `http://` to a host other than this machine.
    pub allow_http: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyTarget {
    /// `url:` as written.
    Url(String),
    /// `url_env:`: the variable holding the URL.
    Env(String),
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NotifyFormat {
    /// relgate's own JSON document.
    Json,
    /// `{"text": …}` in Slack's mrkdwn, as Slack's incoming webhooks (and Mattermost,
    /// Rocket.Chat, …) take it.
    Slack,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum NotifyEvent {
    /// Nothing is red, a sign-off is awaited (exit 3).
    Pending,
    /// A gate is red, or publishing failed (exit 1).
    Refused,
    /// The release is in place.
    Published,
}

impl NotifyEvent {
    pub fn name(self) -> &'static str {
        match self {
            NotifyEvent::Pending => "pending",
            NotifyEvent::Refused => "refused",
            NotifyEvent::Published => "published",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GateSpec {
    pub id: String,
    pub needs: Vec<String>,
    /// Seconds; default 3600.
    pub timeout_secs: u64,
    pub when: Option<When>,
    pub kind: GateKind,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct When {
    pub bump: Vec<Bump>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Bump {
    Major,
    Minor,
    Patch,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GateKind {
    Regression(RegressionSpec),
    /// `kind: regression` with `from_share:` instead of `run:`: the JUnit reports CI jobs
    /// uploaded to the share for the release commit.
    RegressionFromShare(FromShareSpec),
    Sign(SignSpec),
    VirusScan(VirusScanSpec),
    Signoff(SignoffSpec),
    ChangeRecord(ChangeRecordSpec),
    SecurityReview(SecurityReviewSpec),
}

/// Declares [`Kind`] and its `ALL` list and names from one table, so the list cannot miss a
/// kind.
macro_rules! gate_kinds {
    ($($variant:ident => $name:literal,)*) => {
        /// A gate kind as `kind:` names it (the table below).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
        pub enum Kind {
            $($variant,)*
        }

        impl Kind {
            /// Every kind, in the order messages list them.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];

            /// The name `kind:` takes.
            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$variant => $name,)*
                }
            }
        }
    };
}

// The gate kinds: the one list that config (which keys a kind takes and how they are checked),
// `GateKind`, the plan and the dispatch in `crate::gates` match on exhaustively, so a kind added
// here without its config, plan text or judge does not compile (ARCHITECTURE.md, "Adding a gate
// kind"); `tests::every_kind_is_documented` holds the docs to it.
gate_kinds! {
    Regression => "regression",
    ChangeRecord => "change-record",
    Signoff => "signoff",
    SecurityReview => "security-review",
    VirusScan => "virus-scan",
    Sign => "sign",
}

impl Kind {
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.name() == name)
    }
}

impl GateKind {
    pub fn kind(&self) -> Kind {
        match self {
            GateKind::Regression(_) | GateKind::RegressionFromShare(_) => Kind::Regression,
            GateKind::Sign(_) => Kind::Sign,
            GateKind::VirusScan(_) => Kind::VirusScan,
            GateKind::Signoff(_) => Kind::Signoff,
            GateKind::ChangeRecord(_) => Kind::ChangeRecord,
            GateKind::SecurityReview(_) => Kind::SecurityReview,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Automated gates may be reused on resume when their inputs did not change.
    pub fn reusable(&self) -> bool {
        matches!(self, GateKind::Regression(_) | GateKind::VirusScan(_))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Command {
    /// Run under `sh -c`.
    Shell(String),
    /// Run as argv, no shell.
    Argv(Vec<String>),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RegressionSpec {
    pub run: Command,
    /// Working folder, resolved (default: the pipeline root).
    pub dir: PathBuf,
    pub env: BTreeMap<String, String>,
    /// JUnit globs as written, relative to the pipeline root.
    pub junit: Vec<String>,
    pub min_tests: Option<u64>,
    /// `inputs:` globs as written, relative to the pipeline root: files the result depends on
    /// that git does not show (outside a work tree, or ignored). `Some([])` declares that it
    /// depends on no file. See `engine::reuse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<String>>,
}

/// `from_share:` of a regression gate (docs/pipeline.md): take the evidence from the share.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FromShareSpec {
    /// The CI jobs that must each have uploaded reports for the release commit.
    pub jobs: Vec<String>,
    /// `signed_by` as written: a role, or a list of principals.
    pub signed_by_as_written: Vec<String>,
    /// The principals whose CI statements count (a role resolved to its members).
    pub signed_by: Vec<String>,
    pub min_tests: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SignSpec {
    /// The key path as written (may hold `${VAR}`); expanded at run time.
    pub key: String,
    pub signer: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum ClamdAddr {
    Tcp(String),
    Unix(PathBuf),
    /// A private clamd started for the run on this signature folder.
    Private {
        database: PathBuf,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VirusScanSpec {
    pub clamd: ClamdAddr,
    pub max_signature_age_secs: Option<u64>,
    /// Bytes; default 100 MiB (clamd's default StreamMaxLength).
    pub max_size: u64,
    pub concurrency: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SignoffSpec {
    pub role: String,
    pub quorum: u32,
    pub expires_secs: Option<u64>,
    /// Segregation of duties (`segregation:`; all three by default): sign-offs by commit
    /// authors, by the operator, or by the sign gate's signer do not count.
    #[serde(default = "yes")]
    pub bar_authors: bool,
    #[serde(default = "yes")]
    pub bar_operator: bool,
    #[serde(default = "yes")]
    pub bar_signer: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChangeRecordSpec {
    pub require_reviewer: bool,
    pub require_tests: bool,
    pub test_paths: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SecurityReviewSpec {
    pub findings: Vec<String>,
    pub register: PathBuf,
    pub block: Vec<String>,
    pub sla_secs: BTreeMap<String, u64>,
    pub pentest: Option<PentestSpec>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PentestSpec {
    pub records: PathBuf,
    pub max_age_secs: u64,
}

#[cfg(test)]
mod tests {
    use super::Kind;

    fn doc(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn every_kind_is_named_once_and_parses_back() {
        let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.name()), Some(*k));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len(), "two kinds share a name");
        assert_eq!(Kind::parse("Regression"), None);
    }

    /// A kind is usable only once its keys are in docs/pipeline.md and its reason codes in
    /// docs/diagnostics.md: each has a section of its own there.
    #[test]
    fn every_kind_is_documented() {
        let pipeline = doc("pipeline.md");
        let diagnostics = doc("diagnostics.md");
        for k in Kind::ALL {
            let name = k.name();
            assert!(
                pipeline.lines().any(|l| l == format!("### `{name}`")),
                "docs/pipeline.md has no section \"### `{name}`\""
            );
            assert!(
                diagnostics.lines().any(|l| l == format!("## {name}")),
                "docs/diagnostics.md has no section \"## {name}\""
            );
        }
    }
}

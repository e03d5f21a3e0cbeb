//! The `relgate` binary: parse arguments, call the library, map the outcome to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use relgate::commands;
use relgate::exit;

#[derive(Parser)]
#[command(name = "relgate", version, about = "Release acceptance orchestrator")]
struct Cli {
    /// The pipeline file.
    #[arg(short, long, global = true, default_value = "pipeline.yaml")]
    pipeline: PathBuf,
    /// The state folder (default: `state_dir` from the pipeline, else `.relgate` beside it).
    #[arg(long, global = true)]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
}

impl From<Format> for commands::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Human => commands::Format::Human,
            Format::Json => commands::Format::Json,
        }
    }
}

/// The formats of `relgate report`.
#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Html,
    Markdown,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and validate the pipeline and the files it names; print every problem at once.
    Check,
    /// Print the gates in order with their needs, kinds and what each will check.
    Plan,
    /// Stage the artefacts, run the gates, and publish when all are green.
    Run {
        /// The release version (letters, digits, `.`, `_`, `+`, `-`).
        version: String,
        /// Run every gate but never publish; the record is kept under dry-runs/.
        #[arg(long)]
        dry_run: bool,
        /// Output for people (human) or for programs (json).
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Also write one JUnit testcase per gate to FILE.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// The operator running the release (or RELGATE_OPERATOR).
        #[arg(long = "as", value_name = "PRINCIPAL", env = "RELGATE_OPERATOR")]
        operator: Option<String>,
        /// Run automated gates again even when a green result for the same inputs exists.
        #[arg(long)]
        rerun: bool,
    },
    /// Each gate's state, the subject digest, and the sign-offs still awaited.
    Status {
        /// The release version whose record to show.
        version: String,
        /// Output for people (human) or for programs (json).
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Write a signed sign-off (or rejection) for one gate into the release record, or, with
    /// --from, onto the team's share from any machine.
    Approve {
        /// The release version to sign for (its record names the subject).
        #[arg(required_unless_present = "from")]
        version: Option<String>,
        /// The signoff gate's id.
        #[arg(long, value_name = "ID")]
        gate: String,
        /// The signer's OpenSSH private key file, or public key file: then the ssh-agent in
        /// SSH_AUTH_SOCK signs (RSA keys sign only that way).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// The principal signing, as named in allowed_signers.
        #[arg(long = "as", value_name = "PRINCIPAL")]
        principal: String,
        /// Why: shown to auditors in the record (required with --reject).
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
        /// Reject instead of approve (needs --comment).
        #[arg(long)]
        reject: bool,
        /// Sign for this subject without the local release record; writes into the current folder.
        #[arg(long, value_name = "sha256:HEX")]
        subject: Option<String>,
        /// Write the sign-off even though it will not count (it is refused otherwise).
        #[arg(long)]
        force: bool,
        /// Sign the open request on the team's share (a folder, https:// or s3:// URL): no
        /// checkout or release record needed; the pair is uploaded there.
        #[arg(long, value_name = "SHARE-URL", requires = "release",
              conflicts_with_all = ["version", "subject", "force"])]
        from: Option<String>,
        /// With --from: the release, as PROJECT/VERSION.
        #[arg(long, value_name = "PROJECT/VERSION", requires = "from")]
        release: Option<String>,
        /// With --from: sign without asking (required when stdin is not a terminal).
        #[arg(long, requires = "from")]
        yes: bool,
        /// With --from: an OpenSSH allowed_signers file naming the release signer's key.
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with = "trust_key",
            requires = "from"
        )]
        signers: Option<PathBuf>,
        /// With --from and --signers: the principal that signs releases.
        #[arg(long, value_name = "PRINCIPAL", requires = "signers")]
        signer: Option<String>,
        /// With --from: the release key's fingerprint (SHA256:…), given out of band; repeatable.
        #[arg(long = "trust-key", value_name = "SHA256:FPR", requires = "from")]
        trust_key: Vec<String>,
        #[command(flatten)]
        remote: RemoteOpts,
    },
    /// Upload a CI job's JUnit reports for one commit to the team's share, with a statement
    /// signed by the CI's key, for a regression gate with `from_share:` to count.
    CiUpload {
        /// The share: a folder, an https:// WebDAV collection or an s3:// URL.
        #[arg(long, value_name = "SHARE-URL")]
        share: String,
        /// The project, as the pipeline names it.
        #[arg(long, value_name = "PROJECT")]
        project: String,
        /// The full commit id the job tested (`git rev-parse HEAD`).
        #[arg(long, value_name = "SHA")]
        commit: String,
        /// The job's name, as the gate's `from_share.jobs` lists it.
        #[arg(long, value_name = "NAME")]
        job: String,
        /// The CI's OpenSSH private key file (or public key file: the ssh-agent signs).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// The CI's principal, as named in allowed_signers.
        #[arg(long = "as", value_name = "PRINCIPAL")]
        principal: String,
        /// The JUnit XML reports the job wrote.
        #[arg(required = true, value_name = "JUNIT")]
        reports: Vec<PathBuf>,
        #[command(flatten)]
        remote: RemoteOpts,
    },
    /// The releases and dry runs on the team's share: date, run, decision, first red gate,
    /// subject and who vouches for each (a dry run's report is unauthenticated).
    History {
        /// The share: a folder, an https:// WebDAV collection or an s3:// URL.
        share: String,
        /// Only this project.
        project: Option<String>,
        #[command(flatten)]
        trust: TrustOpts,
        #[command(flatten)]
        remote: RemoteOpts,
        /// Output for people (human) or for programs (json).
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Verify a release record, or a published release folder, offline: the chain, every
    /// checkpoint, every verdict judged again, and that the folder is exactly what was gated.
    Replay {
        /// A release record folder, or a published release folder (its record is `audit/`), on
        /// this machine, at an http(s):// URL (a WebDAV collection) or an s3:// URL.
        path: PathBuf,
        #[command(flatten)]
        trust: TrustOpts,
        #[command(flatten)]
        remote: RemoteOpts,
        /// A checkpoint kept from earlier (with FILE.sig beside it): the record must extend it,
        /// so a record rolled back or forked to an earlier state is caught.
        #[arg(long, value_name = "FILE")]
        checkpoint: Vec<PathBuf>,
        /// What-if: judge the recorded evidence again under this pipeline instead, and list
        /// every gate whose verdict would change (never a verification under it; exit 0: none
        /// would, 1: some would, 2: nothing was judged).
        #[arg(long, value_name = "FILE", conflicts_with = "checkpoint")]
        policy: Option<PathBuf>,
        /// Output for people (human) or for programs (json).
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// A gate's latest verdict from the release record: its reasons, failed tests with message
    /// and file:line, the tails of its captured output, and its evidence digests.
    Logs {
        version: String,
        /// The gate's id.
        gate: String,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// How many lines of each captured stream to show.
        #[arg(long, value_name = "N", default_value_t = commands::logs::DEFAULT_LINES)]
        lines: usize,
    },
    /// The security review's findings: severity and its source, assignment, verdict.
    Findings {
        /// The release version whose recorded review to show.
        version: String,
        /// Output for people (human) or for programs (json).
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// The auditor's report of a release record or published release: the release, the
    /// timeline of runs, every gate with its evidence, sign-offs, segregation of duties, the
    /// change record, security findings, the virus scan, and what replay says of the record.
    Report {
        /// A release record folder, a published release folder, or its http(s):// (WebDAV) or
        /// s3:// URL.
        path: PathBuf,
        #[command(flatten)]
        trust: TrustOpts,
        #[command(flatten)]
        remote: RemoteOpts,
        /// One self-contained HTML file (prints on A4), or Markdown.
        #[arg(long, value_enum, default_value = "html")]
        format: ReportFormat,
        /// Write the report to FILE instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Verify a published release folder: every file against SHA256SUMS, SHA256SUMS.sig made
    /// by the release signer under a trust root given from outside the folder, and the
    /// attestation (SLSA VSA) signed by that same key over those artefacts.
    Verify {
        /// The published release folder, or its http(s):// (WebDAV) or s3:// URL.
        dir: PathBuf,
        #[command(flatten)]
        trust: TrustOpts,
        #[command(flatten)]
        remote: RemoteOpts,
    },
}

/// How `verify` and `replay` reach a release at a URL. Credentials come from the environment
/// (RELGATE_PUBLISH_USER and RELGATE_PUBLISH_PASSWORD, or RELGATE_PUBLISH_TOKEN) or ~/.netrc.
#[derive(clap::Args)]
struct RemoteOpts {
    /// A PEM file of CA certificates to trust for https:// (and an s3:// endpoint) besides the
    /// system's.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Allow plain http:// to another machine (credentials travel unencrypted).
    #[arg(long)]
    allow_http: bool,
}

impl From<RemoteOpts> for relgate::share::Access {
    fn from(r: RemoteOpts) -> Self {
        relgate::share::Access {
            ca: r.ca,
            allow_http: r.allow_http,
            endpoint: None,
            region: None,
        }
    }
}

impl From<RemoteOpts> for relgate::folder::Access {
    fn from(r: RemoteOpts) -> Self {
        relgate::folder::Access {
            ca: r.ca,
            allow_http: r.allow_http,
            pipeline: None,
        }
    }
}

/// Where `verify` and `replay` take the keys they trust from: never from the folder or record
/// they check. Without these options, the pipeline of the project they run in (`-p`).
#[derive(clap::Args)]
struct TrustOpts {
    /// An OpenSSH allowed_signers file to trust (the release signer's key must be in it).
    #[arg(long, value_name = "FILE", conflicts_with = "trust_key")]
    signers: Option<PathBuf>,
    /// The principal in --signers that signs releases (default: the project's sign gate
    /// signer, or the file's only principal).
    #[arg(long, value_name = "PRINCIPAL", requires = "signers")]
    signer: Option<String>,
    /// Trust exactly this release key, by its fingerprint as `ssh-keygen -l` prints it
    /// (SHA256:…); repeatable.
    #[arg(long = "trust-key", value_name = "SHA256:FPR")]
    trust_key: Vec<String>,
}

impl From<TrustOpts> for relgate::trust::TrustArgs {
    fn from(t: TrustOpts) -> Self {
        relgate::trust::TrustArgs {
            signers: t.signers,
            signer: t.signer,
            trust_keys: t.trust_key,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::CONFIG
            } else {
                exit::SUCCESS
            };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let code = dispatch(cli.command, cli.pipeline, cli.state);
    // A reader that went away ends the output quietly; any other failure to write the results
    // must not pass for success (see `relgate::output`).
    let code = match relgate::output::finish() {
        Some(e) => {
            relgate::output::write_err(format_args!("relgate: cannot write the output: {e}\n"));
            if code == exit::SUCCESS {
                exit::REFUSED
            } else {
                code
            }
        }
        None => code,
    };
    ExitCode::from(code as u8)
}

/// Run the command: one arm per command, each handing its parsed arguments to `commands`.
#[expect(
    clippy::too_many_lines,
    reason = "one arm per command, a dispatch table"
)]
fn dispatch(command: Command, pipeline: PathBuf, state: Option<PathBuf>) -> i32 {
    match command {
        Command::Check => commands::check(&pipeline, state.as_deref()),
        Command::Plan => commands::plan(&pipeline, state.as_deref()),
        Command::Run {
            version,
            dry_run,
            format,
            junit,
            operator,
            rerun,
        } => commands::run(commands::RunArgs {
            pipeline,
            state,
            version,
            dry_run,
            format: format.into(),
            junit,
            operator,
            rerun,
        }),
        Command::Status { version, format } => {
            commands::status(&pipeline, state.as_deref(), &version, format.into())
        }
        Command::Approve {
            gate,
            key,
            principal,
            comment,
            reject,
            from: Some(from),
            release,
            yes,
            signers,
            signer,
            trust_key,
            remote,
            ..
        } => commands::approve_from::approve_from(commands::approve_from::FromArgs {
            pipeline,
            from,
            release: release.unwrap_or_default(),
            gate,
            key,
            principal,
            comment,
            reject,
            yes,
            trust: relgate::trust::TrustArgs {
                signers,
                signer,
                trust_keys: trust_key,
            },
            access: remote.into(),
        }),
        Command::Approve {
            version,
            gate,
            key,
            principal,
            comment,
            reject,
            subject,
            force,
            ..
        } => commands::approve(commands::ApproveArgs {
            pipeline,
            state,
            version: version.unwrap_or_default(),
            gate,
            key,
            principal,
            comment,
            reject,
            subject,
            force,
        }),
        Command::Replay {
            path,
            trust,
            remote,
            // clap refuses --checkpoint with --policy.
            checkpoint: _,
            policy: Some(policy),
            format,
        } => commands::what_if(
            &path,
            &trust.into(),
            &pipeline,
            &policy,
            format.into(),
            &remote.into(),
        ),
        Command::Replay {
            path,
            trust,
            remote,
            checkpoint,
            policy: None,
            format,
        } => commands::replay(
            &path,
            &trust.into(),
            &pipeline,
            &checkpoint,
            format.into(),
            &remote.into(),
        ),
        Command::Logs {
            version,
            gate,
            format,
            lines,
        } => commands::logs::run(&commands::logs::LogsArgs {
            pipeline: &pipeline,
            state: state.as_deref(),
            version: &version,
            gate: &gate,
            format: format.into(),
            lines,
        }),
        Command::Findings { version, format } => {
            commands::findings::run(&pipeline, state.as_deref(), &version, format.into())
        }
        Command::CiUpload {
            share,
            project,
            commit,
            job,
            key,
            principal,
            reports,
            remote,
        } => commands::ci_upload::ci_upload(commands::ci_upload::CiUploadArgs {
            share,
            project,
            commit,
            job,
            key,
            principal,
            reports,
            access: remote.into(),
        }),
        Command::History {
            share,
            project,
            trust,
            remote,
            format,
        } => commands::history::history(commands::history::HistoryArgs {
            pipeline,
            share,
            project,
            trust: trust.into(),
            access: remote.into(),
            format: format.into(),
        }),
        Command::Report {
            path,
            trust,
            remote,
            format,
            output,
        } => commands::report::run(&commands::report::ReportArgs {
            path: &path,
            trust: &trust.into(),
            pipeline: &pipeline,
            format: match format {
                ReportFormat::Html => commands::report::ReportFormat::Html,
                ReportFormat::Markdown => commands::report::ReportFormat::Markdown,
            },
            output: output.as_deref(),
            access: &remote.into(),
        }),
        Command::Verify { dir, trust, remote } => {
            commands::verify(&dir, &trust.into(), &pipeline, &remote.into())
        }
    }
}

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

#[derive(Subcommand)]
enum Command {
    /// Parse and validate the pipeline and the files it names; print every problem at once.
    Check,
    /// Print the gates in order with their needs, kinds and what each will check.
    Plan,
    /// Stage the artefacts, run the gates, and publish when all are green.
    Run {
        version: String,
        /// Run every gate but never publish; the record is kept under dry-runs/.
        #[arg(long)]
        dry_run: bool,
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
        version: String,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Write a signed sign-off (or rejection) for one gate into the release record.
    Approve {
        version: String,
        /// The signoff gate's id.
        #[arg(long, value_name = "ID")]
        gate: String,
        /// The signer's OpenSSH private key file.
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// The principal signing, as named in allowed_signers.
        #[arg(long = "as", value_name = "PRINCIPAL")]
        principal: String,
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
        /// Reject instead of approve (needs --comment).
        #[arg(long)]
        reject: bool,
        /// Sign for this subject without the local release record; writes into the current folder.
        #[arg(long, value_name = "sha256:HEX")]
        subject: Option<String>,
    },
    /// Verify a release record (or a published audit/ folder) offline.
    Replay {
        path: PathBuf,
        /// An allowed_signers file to trust instead of the recorded one.
        #[arg(long, value_name = "FILE")]
        signers: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// The security review's findings: severity and its source, assignment, verdict.
    Findings {
        version: String,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Verify a published release folder: every file against SHA256SUMS, and SHA256SUMS.sig.
    Verify {
        dir: PathBuf,
        #[arg(long, value_name = "FILE")]
        signers: Option<PathBuf>,
    },
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
    let pipeline = cli.pipeline;
    let state = cli.state;
    let code = match cli.command {
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
            version,
            gate,
            key,
            principal,
            comment,
            reject,
            subject,
        } => commands::approve(commands::ApproveArgs {
            pipeline,
            state,
            version,
            gate,
            key,
            principal,
            comment,
            reject,
            subject,
        }),
        Command::Replay {
            path,
            signers,
            format,
        } => commands::replay(&path, signers.as_deref(), format.into()),
        Command::Findings { version, format } => {
            commands::findings::run(&pipeline, state.as_deref(), &version, format.into())
        }
        Command::Verify { dir, signers } => commands::verify(&dir, signers.as_deref()),
    };
    ExitCode::from(code as u8)
}

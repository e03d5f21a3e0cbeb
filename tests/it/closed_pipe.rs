//! Writing into a closed pipe (`relgate run 1.0.0 --format json | true`) ends quietly with the
//! command's own exit code, as ripgrep does: never a panic (exit 101), never a message about the
//! pipe. Every command that prints is run with its stdout, then its stderr, then both, going to
//! a pipe whose reading end is already closed.

use std::process::{Command, Output, Stdio};

use crate::common::*;
use relgate::exit;

const SARIF: &str = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"scanner","rules":[]}},"results":[],"invocations":[{"executionSuccessful":true}]}]}"#;

/// Which of the child's streams go to a pipe nobody reads.
#[derive(Clone, Copy, Debug)]
enum Closed {
    Stdout,
    Stderr,
    Both,
}

fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    // Nobody will ever read: a write gets EPIPE (Rust ignores SIGPIPE).
    drop(reader);
    Stdio::from(writer)
}

fn run_closed(p: &Project, args: &[&str], which: Closed) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(p.path())
        .args(args)
        .env_remove("RELGATE_OPERATOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match which {
        Closed::Stdout => cmd.stdout(closed_pipe()),
        Closed::Stderr => cmd.stderr(closed_pipe()),
        Closed::Both => cmd.stdout(closed_pipe()).stderr(closed_pipe()),
    };
    cmd.output().expect("run relgate")
}

/// A project with a regression gate, a QA sign-off, a security review and the sign gate.
fn project() -> Project {
    let p = Project::new();
    let release = p.keygen("release");
    let alice = p.keygen("alice");
    p.write(
        "keys/allowed_signers",
        format!("release@acme.test {release}\nalice@acme.test {alice}\n"),
    );
    p.write("dist/a.txt", b"a\n");
    p.write("reports/scan.sarif", SARIF);
    p.write("security/remediations.yaml", "[]\n");
    let gates = "  unit:\n    kind: regression\n    run: echo tested\n  review:\n    kind: security-review\n    findings: [reports/*.sarif]\n    register: security/remediations.yaml\n  manual:\n    kind: signoff\n    role: qa\n    segregation: [operator, signer]\n";
    let text = pipeline(gates).replace(
        "signers: keys/allowed_signers\n",
        "signers: keys/allowed_signers\nroles:\n  qa: [alice@acme.test]\n",
    );
    p.write("pipeline.yaml", text);
    p
}

#[track_caller]
fn ends_quietly(out: &Output, want: i32, what: &str) {
    let err = stderr(out);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{what}: {err}"
    );
    assert_eq!(code(out), want, "{what}: exit code; stderr:\n{err}");
}

#[test]
fn every_command_writing_into_a_closed_pipe_ends_quietly_with_its_own_exit_code() {
    let p = project();
    let record = p.record("1.0.0");
    let record = record.to_str().expect("utf8");
    let steps: Vec<(Vec<&str>, i32)> = vec![
        (vec!["check"], exit::SUCCESS),
        (vec!["plan"], exit::SUCCESS),
        (vec!["run", "1.0.0", "--dry-run"], exit::SUCCESS),
        (
            vec!["run", "1.0.0", "--dry-run", "--format", "json"],
            exit::SUCCESS,
        ),
        // The first real run of each kind: exit 3, a sign-off is awaited.
        (vec!["run", "1.0.0", "--format", "json"], exit::PENDING),
        (vec!["run", "1.0.0"], exit::PENDING),
        (vec!["status", "1.0.0"], exit::SUCCESS),
        (vec!["status", "1.0.0", "--format", "json"], exit::SUCCESS),
        (vec!["logs", "1.0.0", "unit"], exit::SUCCESS),
        (
            vec!["logs", "1.0.0", "unit", "--format", "json"],
            exit::SUCCESS,
        ),
        (vec!["findings", "1.0.0"], exit::SUCCESS),
        (vec!["findings", "1.0.0", "--format", "json"], exit::SUCCESS),
        (vec!["replay", record], exit::SUCCESS),
        (vec!["replay", record, "--format", "json"], exit::SUCCESS),
        (vec!["--help"], exit::SUCCESS),
        (vec!["--version"], exit::SUCCESS),
    ];
    for which in [Closed::Stdout, Closed::Stderr, Closed::Both] {
        for (args, want) in &steps {
            let out = run_closed(&p, args, which);
            ends_quietly(&out, *want, &format!("{args:?} with {which:?} closed"));
        }
    }
    // An approval, a publishing run and a verify, each with both streams closed.
    let approve = [
        "approve",
        "1.0.0",
        "--gate",
        "manual",
        "--key",
        "keys/alice",
        "--as",
        "alice@acme.test",
    ];
    ends_quietly(
        &run_closed(&p, &approve, Closed::Both),
        exit::SUCCESS,
        "approve",
    );
    ends_quietly(
        &run_closed(&p, &["run", "1.0.0", "--format", "json"], Closed::Both),
        exit::SUCCESS,
        "the publishing run",
    );
    assert!(
        p.join("published/acme/1.0.0/SHA256SUMS").is_file(),
        "the run went on to publish although nobody read its output"
    );
    ends_quietly(
        &run_closed(&p, &["verify", "published/acme/1.0.0"], Closed::Both),
        exit::SUCCESS,
        "verify",
    );
}

#[test]
fn refusals_and_configuration_errors_into_a_closed_pipe_keep_their_exit_codes() {
    let p = project_with("  bad:\n    kind: regression\n    run: exit 1\n");
    for which in [Closed::Stdout, Closed::Stderr, Closed::Both] {
        let out = run_closed(&p, &["run", "1.0.0", "--format", "json"], which);
        ends_quietly(
            &out,
            exit::REFUSED,
            &format!("refused run, {which:?} closed"),
        );
    }
    p.write(
        "pipeline.yaml",
        "version: 1\nproject: acme\nartefacts: [nothing/*]\n",
    );
    for args in [vec!["check"], vec!["plan"], vec!["run", "1.0.0"]] {
        let out = run_closed(&p, &args, Closed::Both);
        ends_quietly(
            &out,
            exit::CONFIG,
            &format!("{args:?} on a broken pipeline"),
        );
    }
}

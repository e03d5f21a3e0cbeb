//! Helpers for the WebDAV tests: a real Apache ([`apache`]), projects that publish to it, and the
//! environment a run gets (credentials, and a HOME of its own so no real `~/.netrc` is read).

pub mod apache;
pub mod faults;

use std::process::Output;

pub use apache::{Apache, PASSWORD, USER};

use crate::common::{BIN, Project, pipeline};

/// A project (release key, `dist/a.txt`, one regression gate) whose release goes to `to`.
pub fn project_to(to: &str, extra: &str) -> Project {
    let p = Project::new();
    p.release_key();
    p.write("dist/a.txt", b"a\n");
    p.write("dist/linux/b.bin", b"\x7fELF not really\n");
    let text = pipeline("  unit:\n    kind: regression\n    run: \"true\"\n")
        .replace("  - dist/*\n", "  - dist/**/*\n")
        .replace(
            "  to: published/{project}/{version}\n",
            &format!("  to: {to}\n{extra}"),
        );
    p.write("pipeline.yaml", text);
    p
}

/// The environment of a run against Apache: the credentials, and HOME inside the project.
pub fn env(p: &Project) -> Vec<(String, String)> {
    vec![
        ("RELGATE_PUBLISH_USER".into(), USER.into()),
        ("RELGATE_PUBLISH_PASSWORD".into(), PASSWORD.into()),
        ("HOME".into(), p.path().display().to_string()),
    ]
}

/// Run relgate in `p` with `env` (and nothing credential-like inherited).
pub fn relgate(p: &Project, args: &[&str], env: &[(String, String)]) -> Output {
    command(p, args, env).output().expect("run relgate")
}

/// The command [`relgate`] runs, to spawn it instead.
pub fn command(p: &Project, args: &[&str], env: &[(String, String)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    cmd.current_dir(p.path())
        .args(args)
        .env_remove("RELGATE_OPERATOR")
        .env_remove("RELGATE_PUBLISH_USER")
        .env_remove("RELGATE_PUBLISH_PASSWORD")
        .env_remove("RELGATE_PUBLISH_TOKEN")
        .env_remove("NETRC");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Everything a run showed.
pub fn shown(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

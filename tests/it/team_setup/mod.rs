//! "Machines" for the team tests: each has a home of its own (HOME, XDG_STATE_HOME and the pin
//! folder, so no machine sees another's pinned checkpoints or credentials) and a folder it works
//! in. The release engineer's holds a copy of the project with the release key; an approver's
//! holds nothing but their own key. They meet on a share in a real Apache WebDAV server
//! (tests/it/dav/apache.rs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{BIN, Project, copy_dir, fingerprint};
use crate::dav::{Apache, PASSWORD, USER};

pub struct Machine {
    pub home: tempfile::TempDir,
    pub dir: PathBuf,
    /// The folder `dir` lives in, when the machine owns it.
    #[expect(
        dead_code,
        reason = "held for its Drop: the folder goes with the machine"
    )]
    own: Option<tempfile::TempDir>,
    /// More environment for every command (an S3 share's credentials).
    pub env: Vec<(String, String)>,
}

impl Machine {
    /// A machine working in a fresh empty folder.
    pub fn bare() -> Machine {
        let own = tempfile::tempdir().expect("tempdir");
        Machine {
            home: tempfile::tempdir().expect("home"),
            dir: own.path().to_path_buf(),
            own: Some(own),
            env: Vec::new(),
        }
    }

    /// A machine working in `dir` (a project it shares the lifetime of).
    pub fn at(dir: &Path) -> Machine {
        Machine {
            home: tempfile::tempdir().expect("home"),
            dir: dir.to_path_buf(),
            own: None,
            env: Vec::new(),
        }
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Make an Ed25519 key `keys/NAME` here; returns its public line.
    pub fn keygen(&self, name: &str) -> String {
        let path = self.join(&format!("keys/{name}"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .output()
            .expect("ssh-keygen");
        assert!(out.status.success(), "{out:?}");
        let public = std::fs::read_to_string(path.with_extension("pub")).expect("pub");
        public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        let home = self.home.path();
        cmd.current_dir(&self.dir)
            .args(args)
            .env_remove("RELGATE_OPERATOR")
            .env_remove("RELGATE_PUBLISH_TOKEN")
            .env_remove("RELGATE_SHARE_TOKEN")
            .env_remove("NETRC")
            .env("HOME", home)
            .env("XDG_STATE_HOME", home.join("state"))
            .env("RELGATE_PIN_DIR", home.join("pins"))
            .env("RELGATE_SHARE_USER", USER)
            .env("RELGATE_SHARE_PASSWORD", PASSWORD)
            .env("RELGATE_PUBLISH_USER", USER)
            .env("RELGATE_PUBLISH_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn relgate(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run relgate")
    }
}

/// A release team around one share: the engineer's project (release key, `dist/a.txt`, a
/// regression gate and a QA sign-off, run as operator carol), and QA approvers alice and bob on
/// machines of their own. Dave's key expired; erin is in `signers` but not in the QA role.
pub struct Team {
    /// The server the share is on (none for a folder or S3 share).
    pub apache: Option<Apache>,
    /// The share's URL.
    pub share: String,
    pub project: Project,
    pub eng: Machine,
    pub alice: Machine,
    pub bob: Machine,
    /// The release key's fingerprint: the approvers' trust root, given out of band.
    pub release: String,
}

pub const GATES: &str = "  unit:\n    kind: regression\n    run: \"true\"\n  manual:\n    kind: signoff\n    needs: [unit]\n    role: qa\n    segregation: [operator, signer]\n";

impl Team {
    pub fn new() -> Team {
        Team::with(GATES, "")
    }

    /// A team whose pipeline has `gates` (plus the sign gate) and `extra` top-level keys.
    pub fn with(gates: &str, extra: &str) -> Team {
        let apache = Apache::start();
        let share = apache.url("share");
        Team::around(Some(apache), share, gates, extra)
    }

    /// A team meeting at `share` (a WebDAV URL on `apache`, a folder, an s3:// URL).
    pub fn around(apache: Option<Apache>, share: String, gates: &str, extra: &str) -> Team {
        let project = Project::new();
        let eng = Machine::at(project.path());
        let alice = Machine::bare();
        let bob = Machine::bare();
        let mut signers = format!("release@acme.test {}\n", eng.keygen("release"));
        signers.push_str(&format!("alice@acme.test {}\n", alice.keygen("alice")));
        signers.push_str(&format!("bob@acme.test {}\n", bob.keygen("bob")));
        for who in ["carol", "erin"] {
            signers.push_str(&format!("{who}@acme.test {}\n", alice.keygen(who)));
        }
        signers.push_str(&format!(
            "dave@acme.test valid-before=\"20200101\" {}\n",
            alice.keygen("dave")
        ));
        project.write("keys/allowed_signers", signers);
        project.write("dist/a.txt", b"a\n");
        let text = crate::common::pipeline(gates)
            .replace(
                "signers: keys/allowed_signers\n",
                "signers: keys/allowed_signers\nroles:\n  qa: [alice@acme.test, bob@acme.test, carol@acme.test, dave@acme.test]\n",
            )
            .replace("gates:\n", &format!("{extra}share: {share}\ngates:\n"));
        project.write("pipeline.yaml", text);
        let release = fingerprint(&project.join("keys/release.pub"));
        Team {
            apache,
            share,
            project,
            eng,
            alice,
            bob,
            release,
        }
    }

    /// The engineer runs the release (as operator carol).
    pub fn run(&self, extra: &[&str]) -> Output {
        let mut args = vec!["run", "1.0.0", "--as", "carol@acme.test"];
        args.extend_from_slice(extra);
        self.eng.relgate(&args)
    }

    /// `who` approves from machine `m` with only the binary, the key and the URL.
    pub fn approve(&self, m: &Machine, who: &str, extra: &[&str]) -> Output {
        let key = format!("keys/{who}");
        let principal = format!("{who}@acme.test");
        let mut args = vec![
            "approve",
            "--from",
            &self.share,
            "--release",
            "acme/1.0.0",
            "--gate",
            "manual",
            "--key",
            &key,
            "--as",
            &principal,
            "--trust-key",
            &self.release,
        ];
        args.extend_from_slice(extra);
        m.relgate(&args)
    }

    /// Give every machine of the team `vars`.
    pub fn set_env(&mut self, vars: &[(&str, &str)]) {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for m in [&mut self.eng, &mut self.alice, &mut self.bob] {
            m.env.extend(vars.iter().cloned());
        }
    }

    pub fn server(&self) -> &Apache {
        self.apache.as_ref().expect("a team on a WebDAV share")
    }

    /// Files below the share, relative and sorted (folders end in `/`).
    pub fn share_tree(&self) -> Vec<String> {
        self.server().tree("share")
    }

    /// Where `rel` (below the share) is on the server's disk.
    pub fn on_share(&self, rel: &str) -> PathBuf {
        self.server().disk(&format!("share/{rel}"))
    }

    /// Publish to the share's server (`rel/{project}/{version}`) instead of a folder of the
    /// project, so that every engineer's copy publishes to one place.
    pub fn publish_to_server(&self) {
        let text = self.project.read("pipeline.yaml").replace(
            "  to: published/{project}/{version}\n",
            &format!("  to: {}\n", self.server().url("rel/{project}/{version}")),
        );
        self.project.write("pipeline.yaml", text);
    }

    /// Put a lease on the share by hand, as another machine's run would have taken it.
    pub fn lease(&self, seq: u32, holder: &str, host: &str, expires_in: i64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let doc = serde_json::json!({
            "type": "relgate-lease/v1", "project": "acme", "version": "1.0.0",
            "holder": holder, "host": host, "pid": 4242, "record": "0".repeat(64),
            "taken": now - 60, "expires": now + expires_in, "token": "t0k3n",
        });
        let path = self.on_share(&format!("acme/releases/1.0.0/lease/{seq:06}/lease.json"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, doc.to_string()).unwrap();
        self.server().own("share");
    }

    /// A second engineer's machine: a copy of the project (keys included), its own home.
    pub fn second_engineer(&self) -> (tempfile::TempDir, Machine) {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(self.project.path(), dir.path());
        let _ = std::fs::remove_dir_all(dir.path().join(".relgate"));
        let m = Machine::at(dir.path());
        (dir, m)
    }
}

/// The names below `dir` in `tree` (as [`Team::share_tree`] gives it) ending in `suffix`.
pub fn files_in(tree: &[String], dir: &str, suffix: &str) -> Vec<String> {
    tree.iter()
        .filter(|f| f.starts_with(dir) && f.ends_with(suffix) && !f.ends_with('/'))
        .cloned()
        .collect()
}

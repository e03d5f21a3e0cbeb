//! The CI examples of docs/ci.md, run: the `run:` steps of its GitHub Actions workflow and the
//! `script:` of its GitLab CI jobs, with the environment each CI system gives them, against a
//! project in a git repository with a remote — the nightly dry run, the release job stopping at
//! exit 3, the approver's commands from the page, and the release job again, publishing.
//! Steps that use an action (`uses:`: checkout, cache, artefacts) are what the CI system does
//! itself; here the project folder stays in place between jobs, as the cache keeps it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use relgate::exit;

/// The fenced block of docs/ci.md whose info string is `info` (e.g. `yaml github-actions`).
fn block(info: &str) -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ci.md"))
        .expect("docs/ci.md");
    let fence = format!("```{info}\n");
    let start = doc
        .find(&fence)
        .unwrap_or_else(|| panic!("docs/ci.md has no ```{info} block"))
        + fence.len();
    let len = doc[start..].find("\n```").expect("closing fence");
    doc[start..=start + len].to_string()
}

fn yaml(info: &str) -> serde_json::Value {
    serde_saphyr::from_str(&block(info)).expect("the YAML in docs/ci.md parses")
}

/// A project like the one docs/ci.md releases: tests, a QA sign-off, the sign gate after both
/// (its key from `RELEASE_KEY_FILE`), a build script, in a git repository whose `origin` is a
/// bare repository beside it.
struct Repo {
    p: Project,
    /// A folder on PATH holding `relgate`.
    bin: PathBuf,
}

impl Repo {
    fn new() -> Self {
        let p = Project::new();
        let release = p.keygen("release");
        let alice = p.keygen("alice");
        p.write(
            "work/keys/allowed_signers",
            format!("release@acme.test {release}\nalice@acme.test {alice}\n"),
        );
        // The private keys stay out of the repository, as secrets and approvers' keys do.
        std::fs::create_dir_all(p.join("secrets")).expect("mkdir");
        for name in ["release", "alice"] {
            std::fs::rename(
                p.join(&format!("keys/{name}")),
                p.join(&format!("secrets/{name}")),
            )
            .expect("move key");
        }
        p.write(
            "work/pipeline.yaml",
            "version: 1
project: acme-widget
artefacts: [dist/*]
signers: keys/allowed_signers
roles:
  qa: [alice@acme.test]
gates:
  unit-tests:
    kind: regression
    run: sh tests/run.sh
  manual-regression:
    kind: signoff
    needs: [unit-tests]
    role: qa
    segregation: [operator, signer]
  sign:
    kind: sign
    needs: [unit-tests, manual-regression]
    key: ${RELEASE_KEY_FILE}
    signer: release@acme.test
publish:
  to: published/{project}/{version}
",
        );
        p.write("work/tests/run.sh", "echo 'all 12 tests passed'\n");
        p.write(
            "work/scripts/dist.sh",
            "#!/bin/sh\nset -e\nmkdir -p dist\nprintf 'widget 1\\n' > dist/acme-widget.tar.gz\n",
        );
        p.write(
            "work/.gitignore",
            "/dist/\n/.relgate/\n/published/\n/relgate*.json\n/relgate-junit.xml\n",
        );
        let mut perm = std::fs::metadata(p.join("work/scripts/dist.sh"))
            .expect("meta")
            .permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(p.join("work/scripts/dist.sh"), perm).expect("chmod");
        let bin = p.join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        std::os::unix::fs::symlink(BIN, bin.join("relgate")).expect("symlink relgate");
        let r = Repo { p, bin };
        r.git(
            &["init", "-q", "--bare", "-b", "main"],
            &r.p.join("origin.git"),
        );
        let work = r.work();
        r.git(&["init", "-q", "-b", "main"], &work);
        r.git(&["add", "-A"], &work);
        r.git(&["commit", "-q", "-m", "acme-widget"], &work);
        let origin = r.p.join("origin.git");
        r.git(
            &["remote", "add", "origin", origin.to_str().expect("utf8")],
            &work,
        );
        r.git(&["push", "-q", "-u", "origin", "main"], &work);
        r
    }

    fn work(&self) -> PathBuf {
        self.p.join("work")
    }

    fn git(&self, args: &[&str], dir: &Path) {
        std::fs::create_dir_all(dir).expect("mkdir");
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .envs(identity())
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    /// Run `script` with `shell` in the checkout, with `env` and relgate on PATH.
    fn sh(&self, shell: &[&str], script: &str, env: &BTreeMap<String, String>) -> (i32, String) {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new(shell[0])
            .args(&shell[1..])
            .arg(script)
            .current_dir(self.work())
            .env_remove("RELGATE_OPERATOR")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .envs(identity())
            .envs(env)
            .env("PATH", path)
            .output()
            .expect("run the step");
        let text = format!(
            "--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// The approver's commands from docs/ci.md, as alice, for the subject the record holds.
    fn approve(&self, subject: &str) {
        let mut env = BTreeMap::new();
        env.insert("VERSION".into(), "1.0.0".into());
        env.insert("SUBJECT".into(), subject.into());
        env.insert("ME".into(), "alice@acme.test".into());
        env.insert(
            "KEY".into(),
            self.p.join("secrets/alice").display().to_string(),
        );
        let (code, out) = self.sh(&["bash", "-e", "-c"], &block("sh approve"), &env);
        assert_eq!(code, 0, "the approver's commands failed:\n{out}");
    }

    fn subject(&self) -> String {
        let out = Command::new(BIN)
            .args(["status", "1.0.0", "--format", "json"])
            .current_dir(self.work())
            .output()
            .expect("status");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
        doc["subject"].as_str().expect("subject").to_string()
    }

    fn published(&self) -> PathBuf {
        self.work().join("published/acme-widget/1.0.0")
    }
}

fn identity() -> Vec<(&'static str, &'static str)> {
    vec![
        ("GIT_AUTHOR_NAME", "Alice"),
        ("GIT_AUTHOR_EMAIL", "alice@acme.test"),
        ("GIT_COMMITTER_NAME", "Alice"),
        ("GIT_COMMITTER_EMAIL", "alice@acme.test"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("HOME", "/nonexistent"),
    ]
}

/// The `env:` (or `variables:`) of a workflow, job or step: literal values are used as they
/// are; a value computed by the CI system (`${{ … }}`, `$VAR`) must be one the test provides.
fn declared_env(
    map: &serde_json::Value,
    provided: &BTreeMap<String, String>,
    into: &mut BTreeMap<String, String>,
) {
    for (k, v) in map.as_object().into_iter().flatten() {
        let v = v
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        if v.contains("${{") || v.starts_with('$') {
            let given = provided
                .get(k)
                .unwrap_or_else(|| panic!("docs/ci.md sets {k} from {v:?}: the test must give it"));
            into.insert(k.clone(), given.clone());
        } else {
            into.insert(k.clone(), v);
        }
    }
}

/// Run a GitHub Actions job's `run:` steps as the runner does (bash -eo pipefail); returns the
/// output of all of them. Every step must succeed.
fn github_job(r: &Repo, job: &str, provided: &BTreeMap<String, String>) -> String {
    let wf = yaml("yaml github-actions");
    let j = &wf["jobs"][job];
    assert!(j.is_object(), "no job {job}");
    let mut env = provided.clone();
    declared_env(&wf["env"], provided, &mut env);
    declared_env(&j["env"], provided, &mut env);
    let mut all = String::new();
    for step in j["steps"].as_array().expect("steps") {
        let Some(script) = step["run"].as_str() else {
            continue;
        };
        assert!(
            !script.contains("${{"),
            "a run: script takes its inputs from env:, not ${{{{ … }}}}: {script}"
        );
        let mut step_env = env.clone();
        declared_env(&step["env"], provided, &mut step_env);
        let (code, out) = r.sh(
            &["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"],
            script,
            &step_env,
        );
        assert_eq!(code, 0, "step {:?} of {job} failed:\n{out}", step["name"]);
        all.push_str(&out);
    }
    all
}

/// Run a GitLab CI job's `script:` as one shell session; returns its exit code (an exit code
/// in `allow_failure.exit_codes` counts as allowed) and output.
fn gitlab_job(r: &Repo, job: &str, provided: &BTreeMap<String, String>) -> (i32, bool, String) {
    let ci = yaml("yaml gitlab-ci");
    let j = &ci[job];
    assert!(j.is_object(), "no job {job}");
    let mut env = provided.clone();
    declared_env(&ci["variables"], provided, &mut env);
    declared_env(&j["variables"], provided, &mut env);
    let script: Vec<String> = j["script"]
        .as_array()
        .expect("script")
        .iter()
        .map(|l| l.as_str().expect("a script line").to_string())
        .collect();
    let (code, out) = r.sh(&["bash", "-e", "-c"], &script.join("\n"), &env);
    let allowed = j["allow_failure"]["exit_codes"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c.as_i64() == Some(i64::from(code))));
    (code, allowed, out)
}

fn junit_failures(path: &Path) -> String {
    let xml = std::fs::read_to_string(path).expect("junit");
    xml.split("failures=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("failures")
        .to_string()
}

#[test]
fn the_github_actions_workflow_of_docs_ci_md_rehearses_stops_at_exit_3_and_publishes_after_the_signoff()
 {
    let r = Repo::new();
    let summary = r.p.join("step-summary.md");
    let runner_temp = r.p.join("runner-temp");
    std::fs::create_dir_all(&runner_temp).expect("mkdir");
    let mut provided = BTreeMap::new();
    for (k, v) in [
        ("GITHUB_ACTIONS", "true".to_string()),
        ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
        ("GITHUB_WORKSPACE", r.work().display().to_string()),
        ("RUNNER_TEMP", runner_temp.display().to_string()),
    ] {
        provided.insert(k.to_string(), v);
    }

    // The nightly: no release key, a dry run that signs with a throwaway key.
    let mut nightly = provided.clone();
    nightly.insert("GITHUB_EVENT_NAME".into(), "schedule".into());
    github_job(&r, "nightly", &nightly);
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(r.work().join("relgate.json")).expect("json"),
    )
    .expect("json");
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["exit_code"], exit::SUCCESS);
    assert_eq!(junit_failures(&r.work().join("relgate-junit.xml")), "0");
    let md = std::fs::read_to_string(&summary).expect("step summary");
    assert!(md.contains("(dry run)"), "{md}");

    // The tag v1.0.0: the release job stops at exit 3 and says who may sign.
    let mut release = provided.clone();
    release.insert("GITHUB_REF_NAME".into(), "v1.0.0".into());
    release.insert("DEFAULT_BRANCH".into(), "main".into());
    release.insert(
        "RELEASE_KEY".into(),
        std::fs::read_to_string(r.p.join("secrets/release")).expect("key"),
    );
    let out = github_job(&r, "release", &release);
    assert!(out.contains("awaits a sign-off"), "{out}");
    assert!(!r.published().exists());
    let md = std::fs::read_to_string(&summary).expect("step summary");
    assert!(md.contains("may still sign: alice@acme.test"), "{md}");
    assert!(
        !runner_temp.join("release-key").exists(),
        "the key file is removed"
    );

    // The approver signs and commits; the job runs again and publishes.
    r.approve(&r.subject());
    let out = github_job(&r, "release", &release);
    assert!(out.contains("1.0.0 is published"), "{out}");
    assert!(r.published().join("SHA256SUMS.sig").is_file());
    let verify = Command::new(BIN)
        .args(["verify", "published/acme-widget/1.0.0"])
        .current_dir(r.work())
        .output()
        .expect("verify");
    assert_eq!(verify.status.code(), Some(exit::SUCCESS), "{verify:?}");
}

#[test]
fn the_gitlab_ci_jobs_of_docs_ci_md_rehearse_stop_at_exit_3_and_publish_after_the_signoff() {
    let r = Repo::new();
    let mut provided = BTreeMap::new();
    provided.insert("CI_PIPELINE_SOURCE".to_string(), "schedule".to_string());

    let (code, _, out) = gitlab_job(&r, "nightly-rehearsal", &provided);
    assert_eq!(code, exit::SUCCESS, "{out}");
    assert_eq!(junit_failures(&r.work().join("relgate-junit.xml")), "0");

    let mut release = BTreeMap::new();
    release.insert("CI_COMMIT_TAG".to_string(), "v1.0.0".to_string());
    release.insert("CI_DEFAULT_BRANCH".to_string(), "main".to_string());
    // A File-type variable: GitLab gives the path of a file holding the value.
    release.insert(
        "RELEASE_KEY".to_string(),
        r.p.join("secrets/release").display().to_string(),
    );
    let (code, allowed, out) = gitlab_job(&r, "release", &release);
    assert_eq!(code, exit::PENDING, "{out}");
    assert!(allowed, "exit 3 is an allowed failure");
    assert!(!r.published().exists());
    assert_eq!(junit_failures(&r.work().join("relgate-junit.xml")), "0");

    r.approve(&r.subject());
    let (code, _, out) = gitlab_job(&r, "release", &release);
    assert_eq!(code, exit::SUCCESS, "{out}");
    assert!(r.published().join("SHA256SUMS.sig").is_file());
}

//! `relgate check` and `relgate plan` against pipelines written into a temp folder per test.

use std::fs;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_relgate");

/// A valid pipeline; tests replace parts of it.
const BASE: &str = "\
version: 1
project: acme-engine
artefacts:
  - dist/*.tar.gz
signers: keys/allowed_signers
roles:
  qa: [release@acme.test]
changes:
  range: v1.3.0..HEAD
gates:
  unit-tests:
    kind: regression
    run: [sh, -c, \"exit 0\"]
    timeout: 30m
  change-record:
    kind: change-record
  manual:
    kind: signoff
    needs: [unit-tests]
    role: qa
  virus-scan:
    kind: virus-scan
    clamd: tcp://127.0.0.1:3310
  sign:
    kind: sign
    needs: [manual, virus-scan]
    key: keys/release
    signer: release@acme.test
publish:
  to: out/{project}/{version}
";

struct Case {
    dir: tempfile::TempDir,
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
    fn config_error(&self) -> &Self {
        assert_eq!(
            self.code, 2,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Case {
    /// A folder with one artefact and an allowed_signers file holding a real ed25519 key.
    fn new() -> Case {
        let dir = tempfile::tempdir().expect("temp dir");
        let c = Case { dir };
        c.write("dist/acme-1.0.0.tar.gz", "artefact");
        fs::create_dir_all(c.path("keys")).expect("keys dir");
        let st = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "release@acme.test",
                "-f",
            ])
            .arg(c.path("keys/release"))
            .status()
            .expect("ssh-keygen runs");
        assert!(st.success());
        let public = fs::read_to_string(c.path("keys/release.pub")).expect("public key");
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        c.write(
            "keys/allowed_signers",
            &format!("release@acme.test {}\n", key.join(" ")),
        );
        c
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> &Self {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("parent folder");
        }
        fs::write(p, text).expect("write file");
        self
    }

    fn pipeline(&self, text: &str) -> &Self {
        self.write("pipeline.yaml", text)
    }

    /// BASE with `from` replaced by `to` (which must occur).
    fn base_with(&self, from: &str, to: &str) -> &Self {
        assert!(BASE.contains(from), "{from:?} not in BASE");
        self.pipeline(&BASE.replacen(from, to, 1))
    }

    fn run(&self, args: &[&str]) -> Outcome {
        self.run_in(BIN, args)
    }

    fn run_in(&self, program: &str, args: &[&str]) -> Outcome {
        let out = Command::new(program)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("relgate runs");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn check(&self) -> Outcome {
        self.run(&["check", "-p", "pipeline.yaml"])
    }

    /// `check` under a CPU-time and address-space limit (`ulimit -t`, `-v`): an input that made
    /// the loader run or allocate without bound is killed (a signal, no exit code) instead of
    /// being judged by the wall clock, which a loaded machine stretches.
    fn check_bounded(&self) -> Outcome {
        self.run_in(
            "sh",
            &[
                "-c",
                "ulimit -t 20 && ulimit -v 4000000 && exec \"$0\" check -p pipeline.yaml",
                BIN,
            ],
        )
    }
}

#[test]
fn a_valid_pipeline_checks_and_plans() {
    let c = Case::new();
    c.pipeline(BASE);
    let o = c.check();
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("valid (5 gates)"), "{}", o.stdout);
    let o = c.run(&["plan", "-p", "pipeline.yaml"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let order: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.chars().next().is_some_and(|ch| ch.is_ascii_digit()))
        .collect();
    assert_eq!(
        order,
        [
            "1. unit-tests (regression)",
            "2. change-record (change-record)",
            "3. manual (signoff)",
            "4. virus-scan (virus-scan)",
            "5. sign (sign)"
        ]
    );
    assert!(
        o.stdout
            .contains("`sh -c exit 0` (argv, no shell) in . exits 0")
    );
    assert!(o.stdout.contains("clamd at tcp://127.0.0.1:3310"));
    assert!(o.stdout.contains("1 distinct principal(s) of role `qa`"));
    assert!(o.stdout.contains("needs: manual, virus-scan"));
}

/// While the allowed_signers parser is incomplete the only problems a valid pipeline may show
/// are the signer/role membership ones; nothing else may be reported.
#[test]
fn a_valid_pipeline_has_no_other_problem() {
    let c = Case::new();
    c.pipeline(BASE);
    let o = c.check();
    if o.code == 0 {
        return;
    }
    for line in o.stderr.lines().filter(|l| l.starts_with("pipeline.yaml:")) {
        assert!(
            line.contains("is not in the signers file")
                || line.contains("is not a principal in the signers file"),
            "unexpected problem: {line}\n{}",
            o.stderr
        );
    }
}

#[test]
fn yaml_syntax_error_has_a_location() {
    let c = Case::new();
    c.pipeline("version: 1\nproject: [a, b\ngates: {}\n");
    c.check()
        .config_error()
        .has("pipeline.yaml:3:")
        .has("invalid YAML");
}

#[test]
fn unknown_keys_at_every_level_with_suggestions() {
    let c = Case::new();
    c.pipeline(
        &BASE
            .replace("    timeout: 30m", "    timout: 30m")
            .replace("publish:", "pubish:")
            .replace("  range: v1.3.0..HEAD", "  rang: v1.3.0..HEAD"),
    );
    c.check()
        .config_error()
        .has("pipeline.yaml:14:5: gates.unit-tests.timout: unknown key `timout`")
        .has("help: did you mean `timeout`?")
        .has("pipeline.yaml:29:1: pubish: unknown key")
        .has("help: did you mean `publish`?")
        .has("pipeline.yaml:9:3: changes.rang: unknown key")
        .has("help: did you mean `range`?");
}

#[test]
fn a_key_of_another_kind_is_named() {
    let c = Case::new();
    c.base_with(
        "    run: [sh, -c, \"exit 0\"]\n",
        "    run: [sh, -c, \"exit 0\"]\n    clamd: tcp://127.0.0.1:1\n",
    );
    c.check()
        .config_error()
        .has("gates.unit-tests.clamd: unknown key `clamd`: `clamd` belongs to a `virus-scan` gate");
}

#[test]
fn duplicate_keys_are_reported_with_location() {
    let c = Case::new();
    c.base_with(
        "project: acme-engine\n",
        "project: acme-engine\nproject: other\n",
    );
    c.check()
        .config_error()
        .has("pipeline.yaml:3:1: project: duplicate key `project` (first written at line 2)");
    let c = Case::new();
    c.base_with("    timeout: 30m\n", "    timeout: 30m\n    timeout: 1h\n");
    c.check()
        .config_error()
        .has("pipeline.yaml:15:5: gates.unit-tests.timeout: duplicate key");
}

#[test]
fn missing_required_keys() {
    let c = Case::new();
    c.pipeline("version: 1\ngates:\n  sign:\n    kind: sign\n");
    c.check()
        .config_error()
        .has("project: missing required key `project`")
        .has("artefacts: missing required key `artefacts`")
        .has("signers: missing required key `signers`")
        .has("pipeline.yaml:3:3: gates.sign.key: missing required key `key` in `gates.sign`")
        .has("gates.sign.signer: missing required key `signer`");
}

#[test]
fn wrong_types() {
    let c = Case::new();
    c.base_with("version: 1", "version: \"1\"").write(
        "pipeline.yaml",
        &fs::read_to_string(c.path("pipeline.yaml"))
            .expect("read")
            .replace(
                "roles:\n  qa: [release@acme.test]",
                "roles:\n  qa: release@acme.test",
            ),
    );
    c.check()
        .config_error()
        .has("pipeline.yaml:1:10: version: expected 1 (the only schema version), found \"1\"")
        .has("pipeline.yaml:7:7: roles.qa: expected a list of principals, found \"release@acme.test\"");
}

#[test]
fn unknown_gate_kind_and_bad_id() {
    let c = Case::new();
    c.base_with(
        "  unit-tests:\n    kind: regression",
        "  Unit_Tests:\n    kind: regresion",
    );
    c.check()
        .config_error()
        .has("pipeline.yaml:11:3: gates.Unit_Tests: expected a gate id")
        .has("pipeline.yaml:12:11: gates.Unit_Tests.kind: expected a gate kind")
        .has("help: did you mean `regression`?");
}

#[test]
fn bad_durations() {
    let c = Case::new();
    c.base_with("timeout: 30m", "timeout: 30 minutes");
    c.check()
        .config_error()
        .has("pipeline.yaml:14:14: gates.unit-tests.timeout: expected a duration like 30m")
        .has("found \"30 minutes\"");
}

#[test]
fn needs_cycle_is_named_and_unknown_ids_suggested() {
    let c = Case::new();
    c.base_with(
        "    kind: regression\n",
        "    kind: regression\n    needs: [sign]\n",
    );
    c.check()
        .config_error()
        .has("`needs` form a cycle: unit-tests -> sign -> manual -> unit-tests");
    let c = Case::new();
    c.base_with("needs: [unit-tests]", "needs: [unit-test]");
    c.check()
        .config_error()
        .has("pipeline.yaml:19:13: gates.manual.needs[0]: unknown gate id `unit-test`")
        .has("help: did you mean `unit-tests`?");
}

#[test]
fn exactly_one_sign_gate() {
    let c = Case::new();
    c.base_with(
        "  sign:\n    kind: sign\n",
        "  sign2:\n    kind: sign\n    key: k\n    signer: release@acme.test\n  sign:\n    kind: sign\n",
    );
    c.check()
        .config_error()
        .has("gates.sign: a second gate of kind `sign` (the first is `sign2`)");
    let c = Case::new();
    c.base_with("    kind: sign\n", "    kind: regression\n");
    c.check()
        .config_error()
        .has("pipeline.yaml:10:1: gates: no gate of kind `sign`");
}

#[test]
fn artefact_globs_are_resolved() {
    let c = Case::new();
    c.base_with(
        "  - dist/*.tar.gz\n",
        "  - dist/*.tar.gz\n  - dist/*.zip\n  - ../*.tar.gz\n  - other/*.tar.gz\n  - s/*.bin\n",
    );
    c.write("other/acme-1.0.0.tar.gz", "x");
    fs::create_dir_all(c.path("s")).expect("dir");
    std::os::unix::fs::symlink("/etc/hostname", c.path("s/x.bin")).expect("symlink");
    c.check()
        .config_error()
        .has("pipeline.yaml:5:5: artefacts[1]: glob \"dist/*.zip\" matches no regular file")
        .has("pipeline.yaml:6:5: artefacts[2]: glob \"../*.tar.gz\" leaves the pipeline folder")
        .has("have the same release path \"acme-1.0.0.tar.gz\"")
        .has("pipeline.yaml:8:5: artefacts[4]: s/x.bin is a symbolic link");
}

#[test]
fn signers_file_missing() {
    let c = Case::new();
    c.base_with("signers: keys/allowed_signers", "signers: keys/nope");
    c.check()
        .config_error()
        .has("pipeline.yaml:5:10: signers: file ")
        .has("keys/nope not found");
}

#[test]
fn signers_file_unparsable() {
    let c = Case::new();
    c.pipeline(BASE)
        .write("keys/allowed_signers", "release@acme.test not-a-key\n");
    c.check()
        .config_error()
        .has("allowed_signers:1:1: signers: not a valid allowed_signers line");
}

#[test]
fn role_principal_and_signer_must_be_in_signers() {
    let c = Case::new();
    c.pipeline(
        &BASE
            .replace(
                "qa: [release@acme.test]",
                "qa: [release@acme.test, relase@acme.test]",
            )
            .replace("signer: release@acme.test", "signer: nobody@acme.test"),
    );
    let o = c.check();
    o.config_error()
        .has(
            "pipeline.yaml:7:27: roles.qa: principal `relase@acme.test` is not in the signers file",
        )
        .has("help: did you mean `release@acme.test`?")
        .has(
            "pipeline.yaml:28:13: gates.sign.signer: signer `nobody@acme.test` is not a principal",
        );
    assert_eq!(
        o.stderr.matches("pipeline.yaml:").count(),
        2,
        "{}",
        o.stderr
    );
}

#[test]
fn signoff_role_and_quorum() {
    let c = Case::new();
    c.base_with("    role: qa\n", "    role: qaa\n");
    c.check()
        .config_error()
        .has("pipeline.yaml:20:11: gates.manual.role: unknown role `qaa`")
        .has("help: did you mean `qa`?");
    let c = Case::new();
    c.base_with("    role: qa\n", "    role: qa\n    quorum: 2\n");
    c.check()
        .config_error()
        .has("gates.manual.quorum: quorum 2 can never be met: role `qa` has 1 principal(s)");
    let c = Case::new();
    c.base_with("    role: qa\n", "    role: qa\n    quorum: 0\n");
    c.check()
        .config_error()
        .has("gates.manual.quorum: expected a whole number of at least 1, found the integer 0");
}

#[test]
fn change_record_needs_changes() {
    let c = Case::new();
    c.base_with("changes:\n  range: v1.3.0..HEAD\n", "");
    c.check()
        .config_error()
        .has("gates.change-record.kind: a change-record gate needs the top-level `changes`");
}

/// Issue 9, point 3: `plan` said "not counted: commit authors" for a pipeline without
/// `changes`, and the author's lone sign-off published. A segregation with nothing to read
/// the authors from is a configuration error now, with the fix.
#[test]
fn a_signoff_barring_authors_without_changes_fails_check() {
    let no_changes = BASE
        .replacen("changes:\n  range: v1.3.0..HEAD\n", "", 1)
        .replacen("  change-record:\n    kind: change-record\n", "", 1);
    // `segregation` left out: it bars authors by default.
    let c = Case::new();
    c.pipeline(&no_changes);
    c.check()
        .config_error()
        .has("pipeline.yaml:14:11: gates.manual.segregation: bars commit authors (the default), but the pipeline has no `changes` to read them from")
        .has("help: add `changes:` (the repo and range this release ships), or write `segregation: [operator, signer]` to drop `authors`");
    let o = c.run(&["plan", "-p", "pipeline.yaml"]);
    assert_eq!(
        o.code, 2,
        "plan makes no promise it cannot keep:\n{}",
        o.stdout
    );
    assert!(!o.stdout.contains("commit authors"), "{}", o.stdout);

    // Written out: the problem is at `authors` itself.
    let c = Case::new();
    c.pipeline(&no_changes.replacen(
        "    role: qa\n",
        "    role: qa\n    segregation: [operator, authors]\n",
        1,
    ));
    c.check()
        .config_error()
        .has("pipeline.yaml:17:29: gates.manual.segregation[1]: `authors` needs the top-level `changes` to read the commit authors from")
        .has("help: add `changes:` (the repo and range this release ships), or remove `authors` from `segregation`");

    // Either fix is valid.
    let c = Case::new();
    c.pipeline(&no_changes.replacen(
        "    role: qa\n",
        "    role: qa\n    segregation: [operator, signer]\n",
        1,
    ));
    let o = c.check();
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = c.run(&["plan", "-p", "pipeline.yaml"]);
    assert!(
        o.stdout
            .contains("not counted: the operator, the release signer"),
        "{}",
        o.stdout
    );
    let c = Case::new();
    c.pipeline(BASE);
    assert_eq!(c.check().code, 0);
}

#[test]
fn when_bump_values() {
    let c = Case::new();
    c.base_with(
        "    kind: change-record\n",
        "    kind: change-record\n    when: {bump: [major, minr]}\n",
    );
    c.check()
        .config_error()
        .has("gates.change-record.when.bump[1]: expected major, minor or patch, found \"minr\"")
        .has("help: did you mean `minor`?");
}

#[test]
fn regression_keys() {
    let c = Case::new();
    c.base_with(
        "    run: [sh, -c, \"exit 0\"]\n",
        "    run: \"  \"\n    dir: nowhere\n    env: {A: 1, B: on}\n    min_tests: -3\n",
    );
    c.write("afile", "x");
    c.check()
        .config_error()
        .has("pipeline.yaml:13:10: gates.unit-tests.run: expected a command")
        .has("gates.unit-tests.dir: ")
        .has("nowhere does not exist")
        .has("gates.unit-tests.env.A: expected a string, found the integer 1 (quote it: \"1\")")
        .has("gates.unit-tests.min_tests: expected a non-negative whole number");
    let c = Case::new();
    c.base_with(
        "    run: [sh, -c, \"exit 0\"]\n",
        "    run: []\n    dir: afile\n",
    );
    c.write("afile", "x");
    c.check()
        .config_error()
        .has("found an empty list")
        .has("afile is not a folder");
}

#[test]
fn virus_scan_keys() {
    let c = Case::new();
    c.base_with(
        "    clamd: tcp://127.0.0.1:3310\n",
        "    clamd: tcp://127.0.0.1\n    max_size: 10T\n    concurrency: 0\n    max_signature_age: 1w\n",
    );
    c.check()
        .config_error()
        .has("gates.virus-scan.clamd: expected tcp://HOST:PORT, unix:SOCKET or {database: FOLDER}")
        .has("gates.virus-scan.max_size: expected a size in bytes")
        .has("gates.virus-scan.concurrency: expected a whole number of at least 1")
        .has("gates.virus-scan.max_signature_age: expected a duration");
    let c = Case::new();
    c.base_with(
        "    clamd: tcp://127.0.0.1:3310\n",
        "    clamd: {database: db}\n",
    );
    c.check()
        .config_error()
        .has("gates.virus-scan.clamd.database: ")
        .has("db does not exist");
}

#[test]
fn security_review_keys() {
    let c = Case::new();
    c.base_with(
        "  sign:\n",
        "  sec:\n    kind: security-review\n    findings: reports/x.sarif\n    block: [critical, urgent]\n    sla: {critical: 7d, hihg: 30d, low: forever}\n    pentest: {records: p.yaml, max_age: 1y, extra: 1}\n  sign:\n",
    );
    c.check()
        .config_error()
        .has("gates.sec.register: missing required key `register`")
        .has("gates.sec.findings: expected a list of globs, found \"reports/x.sarif\"")
        .has("gates.sec.block[1]: expected critical, high, medium or low, found \"urgent\"")
        .has("gates.sec.sla.hihg: unknown key `hihg`")
        .has("help: did you mean `high`?")
        .has("gates.sec.sla.low: expected a duration")
        .has("gates.sec.pentest.max_age: expected a duration")
        .has("gates.sec.pentest.extra: unknown key");
}

#[test]
fn uses_files() {
    let c = Case::new();
    c.write(
        "stages/scan.yaml",
        "kind: virus-scan\nclamd: tcp://127.0.0.1:3310\nconcurrency: 0\nmax_sise: 1M\n",
    );
    c.base_with(
        "    kind: virus-scan\n    clamd: tcp://127.0.0.1:3310\n",
        "    uses: stages/scan.yaml\n    concurrency: 2\n",
    );
    let o = c.check();
    // The pipeline's `concurrency: 2` overrides the file's bad value; the typo in the file is
    // reported at the file's own line and column.
    o.config_error()
        .has("stages/scan.yaml:4:1: gates.virus-scan.max_sise: unknown key `max_sise`")
        .has("help: did you mean `max_size`?");
    assert!(!o.stderr.contains("virus-scan.concurrency"), "{}", o.stderr);

    let c = Case::new();
    c.base_with(
        "    kind: virus-scan\n",
        "    kind: virus-scan\n    uses: stages/none.yaml\n",
    );
    c.check()
        .config_error()
        .has("gates.virus-scan.uses: file ")
        .has("stages/none.yaml not found");
    let c = Case::new();
    c.base_with(
        "    kind: virus-scan\n",
        "    kind: virus-scan\n    uses: ../x.yaml\n",
    );
    c.check()
        .config_error()
        .has("gates.virus-scan.uses: \"../x.yaml\" leaves the pipeline folder");
    let c = Case::new();
    c.write("stages/bad.yaml", "kind: [virus-scan\n");
    c.base_with(
        "    kind: virus-scan\n",
        "    kind: virus-scan\n    uses: stages/bad.yaml\n",
    );
    c.check()
        .config_error()
        .has("stages/bad.yaml:")
        .has("invalid YAML");
}

#[test]
fn publish_and_version_and_project() {
    let c = Case::new();
    c.pipeline(
        &BASE
            .replace("version: 1", "version: 2")
            .replace("project: acme-engine", "project: acme engine")
            .replace("to: out/{project}/{version}", "to: out/{project}/{verison}"),
    );
    c.check()
        .config_error()
        .has("pipeline.yaml:1:10: version: expected 1")
        .has("pipeline.yaml:2:10: project: expected a project name")
        .has("publish.to: unknown placeholder");
    let c = Case::new();
    c.base_with("  to: out/{project}/{version}\n", "  too: x\n");
    c.check()
        .config_error()
        .has("publish.to: missing required key `to`")
        .has("publish.too: unknown key");
}

#[test]
fn several_errors_are_reported_at_once() {
    let c = Case::new();
    c.pipeline(
        &BASE
            .replace("timeout: 30m", "timeout: soon")
            .replace("role: qa", "role: qq")
            .replace("clamd: tcp://127.0.0.1:3310", "clamd: 3310"),
    );
    let o = c.check();
    o.config_error()
        .has("gates.unit-tests.timeout")
        .has("gates.manual.role")
        .has("gates.virus-scan.clamd");
    assert!(
        o.stderr.contains("problem(s) in pipeline.yaml"),
        "{}",
        o.stderr
    );
}

#[test]
fn caret_points_at_the_column() {
    let c = Case::new();
    c.base_with("timeout: 30m", "timeout: 30x");
    c.check()
        .config_error()
        .has("    |     timeout: 30x\n    |              ^\n");
}

#[test]
fn hostile_inputs_fail_fast() {
    let c = Case::new();
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{p}"); 10].join(", ")
        ));
    }
    c.pipeline(&bomb);
    let o = c.check_bounded();
    o.config_error().has("alias");

    c.pipeline(&format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)));
    let o = c.check_bounded();
    o.config_error().has("nesting deeper than");

    // 100 MB, sparse: refused from its size before a byte is read.
    let f = fs::File::create(c.path("pipeline.yaml")).expect("create");
    f.set_len(100 << 20).expect("set_len");
    let o = c.check_bounded();
    o.config_error().has("configuration files are limited to");
}

#[test]
fn non_utf8_tags_and_merge_keys_are_refused_and_a_bom_is_accepted() {
    let c = Case::new();
    fs::write(c.path("pipeline.yaml"), b"version: 1\nproject: \xff\xfe\n").expect("write");
    c.check()
        .config_error()
        .has("pipeline.yaml:2:10: not UTF-8 text");
    c.pipeline("version: 1\nproject: !secret acme\n");
    c.check()
        .config_error()
        .has("pipeline.yaml:2:")
        .has("unsupported tag `!secret`");
    c.pipeline("base: &b {kind: sign}\ngates:\n  sign:\n    <<: *b\n");
    c.check()
        .config_error()
        .has("merge keys (`<<`) are not supported");
    c.pipeline(&format!("\u{feff}{BASE}"));
    let o = c.check();
    assert!(!o.stderr.contains("invalid YAML"), "{}", o.stderr);
}

#[test]
fn missing_pipeline_file() {
    let c = Case::new();
    c.check().config_error().has("pipeline.yaml not found");
    let o = c.run(&["check", "-p", "nowhere/p.yaml"]);
    o.config_error()
        .has("nowhere/p.yaml: file nowhere/p.yaml not found");
    assert!(!Path::new("nowhere").exists());
}

#[test]
fn from_share_and_run_are_mutually_exclusive_and_each_problem_is_placed() {
    let c = Case::new();
    c.base_with(
        "    kind: regression\n",
        "    kind: regression\n    from_share:\n      jobs: [linux, \"bad name\", linux]\n      signed_by: qe\n",
    );
    let o = c.check();
    o.config_error()
        .has("pipeline.yaml:16:5: gates.unit-tests.run: `run` and `from_share` are mutually exclusive")
        .has("pipeline.yaml:13:5: gates.unit-tests.from_share: `from_share` needs the top-level `share`")
        .has("pipeline.yaml:14:21: gates.unit-tests.from_share.jobs[1]: expected a job name")
        .has("pipeline.yaml:14:33: gates.unit-tests.from_share.jobs[2]: `linux` is listed twice")
        .has("pipeline.yaml:15:18: gates.unit-tests.from_share.signed_by: unknown role `qe`")
        .has("did you mean `qa`?");
}

#[test]
fn a_regression_gate_from_the_share_checks_and_plans() {
    let c = Case::new();
    let text = BASE
        .replacen(
            "    run: [sh, -c, \"exit 0\"]\n",
            "    from_share:\n      jobs: [linux, macos]\n      signed_by: [release@acme.test]\n    min_tests: 10\n",
            1,
        )
        .replacen("gates:\n", "share: https://dav.acme.test/relgate\ngates:\n", 1);
    c.pipeline(&text);
    let o = c.check();
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = c.run(&["plan", "-p", "pipeline.yaml"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains(
            "JUnit reports uploaded to the share by CI jobs linux, macos for the release commit \
             (HEAD in .), signed by release@acme.test, show no failure; at least 10 tests ran"
        ),
        "{}",
        o.stdout
    );
    // A principal signed_by names must be in the signers file.
    c.pipeline(&text.replace(
        "signed_by: [release@acme.test]",
        "signed_by: [ci@acme.test]",
    ));
    c.check()
        .config_error()
        .has("gates.unit-tests.from_share.signed_by[0]: principal `ci@acme.test` is not in the signers file");
}

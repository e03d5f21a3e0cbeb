//! What the docs say about the binary, checked against it: where a gate finds the staged bytes
//! (docs/pipeline.md, `regression`), and what `relgate findings VERSION` reviews
//! (docs/security-review.md) — the recorded run once there is one, never a record that does
//! not verify. And ARCHITECTURE.md's module table against `src/`: every module named, and
//! nothing named that is not there.

use std::path::Path;

use crate::common::*;
use relgate::exit;

fn doc(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(name),
    )
    .expect("doc")
}

#[test]
fn a_gate_tests_the_staged_bytes_where_docs_pipeline_md_says_they_are() {
    assert!(doc("pipeline.md").contains("`$RELGATE_RECORD/staged/<subject>/`"));
    let p = project_with(
        "  smoke-test:\n    kind: regression\n    run: cd \"$RELGATE_RECORD\"/staged/*/ && sha256sum -c --strict SHA256SUMS && test \"$(cat a.txt)\" = a && basename \"$PWD\" > \"$RELGATE_RECORD\"/../../../seen\n",
    );
    let out = p.relgate(&["run", "1.0.0", "--format", "json"]);
    expect_code(&out, exit::SUCCESS);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let subject = doc["subject"].as_str().expect("subject");
    // The folder is the subject's hex, without `sha256:`.
    assert_eq!(
        format!("sha256:{}", p.read("seen").trim()),
        subject,
        "the gate ran in the subject's folder"
    );
    // A dry run's record holds its own copy, and the same command finds it.
    let out = p.relgate(&["run", "2.0.0", "--dry-run"]);
    expect_code(&out, exit::SUCCESS);
}

#[test]
fn docs_security_review_md_names_the_bandit_install_that_works() {
    let text = doc("security-review.md");
    assert!(
        text.contains("pip install 'bandit[sarif]'"),
        "bandit install"
    );
    assert!(
        !text.contains("bandit-sarif-formatter"),
        "the old advice is gone"
    );
}

const SARIF: &str = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"scanner","rules":[
 {"id":"R1","properties":{"security-severity":"7.5"}}]}},
 "results":[{"ruleId":"R1","message":{"text":"bad thing"}}]}]}"#;

#[test]
fn findings_shows_the_recorded_review_once_there_is_one_and_nothing_from_a_record_that_does_not_verify()
 {
    let text = doc("security-review.md");
    assert!(
        !text.contains("currently reviews the pipeline's current files"),
        "the stale sentence is gone"
    );
    let p = Project::new();
    p.release_key();
    p.write("dist/a.txt", b"a\n");
    p.write("reports/scan.sarif", SARIF);
    p.write("security/remediations.yaml", "[]\n");
    p.write(
        "pipeline.yaml",
        pipeline("  review:\n    kind: security-review\n    findings: [reports/*.sarif]\n    register: security/remediations.yaml\n"),
    );
    // Before any run: the working tree, and it says so.
    let out = p.relgate(&["findings", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(
        stdout(&out).contains("working tree: 1.0.0 has no recorded security review yet"),
        "{}",
        stdout(&out)
    );
    expect_code(&p.relgate(&["run", "1.0.0"]), exit::REFUSED);
    // Registering the finding now does not change what the recorded run saw.
    p.write(
        "security/remediations.yaml",
        "- finding: R1\n  owner: dave@acme.test\n  plan: fix it\n  opened: 2026-01-01\n  due: 2099-01-01\n  status: open\n",
    );
    let out = p.relgate(&["findings", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(stdout(&out).contains("recorded: "), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("finding-unassigned"),
        "{}",
        stderr(&out)
    );
    // A record altered after it was signed is not passed off as "no recorded review".
    let log = p.record("1.0.0").join("log.jsonl");
    let text = std::fs::read_to_string(&log).expect("log");
    std::fs::write(
        &log,
        text.replacen("finding-unassigned", "finding-unassigneD", 1),
    )
    .expect("write");
    let out = p.relgate(&["findings", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("working tree"), "{}", stdout(&out));
}

/// The first column of ARCHITECTURE.md's module table: each name in backticks, as written.
fn architecture_modules() -> Vec<String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .expect("ARCHITECTURE.md");
    let table = text
        .split("\n## Modules\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Modules section");
    table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .flat_map(|l| {
            let first = l.split(" |").next().unwrap_or_default();
            format!("`{first}")
                .split(", ")
                .map(|n| n.trim_matches('`').to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn architecture_md_lists_every_module_of_src_and_only_those() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let listed = architecture_modules();
    assert!(listed.len() > 20, "{listed:?}");
    // Each name the table gives is there, as a file or (ending in `/`) a folder.
    for name in &listed {
        let path = src.join(name.trim_end_matches('/'));
        let there = if name.ends_with('/') {
            path.is_dir()
        } else {
            path.is_file()
        };
        assert!(
            there,
            "ARCHITECTURE.md names `{name}`, which is not in src/"
        );
    }
    // Each top-level module is named, as itself or its folder (lib.rs is the crate's root).
    for entry in std::fs::read_dir(&src).expect("src") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("UTF-8");
        if name == "lib.rs" {
            continue;
        }
        let named = if src.join(&name).is_dir() {
            listed
                .iter()
                .any(|l| *l == format!("{name}/") || l.starts_with(&format!("{name}/")))
        } else {
            listed.contains(&name)
        };
        assert!(
            named,
            "src/{name} is missing from ARCHITECTURE.md's module table"
        );
    }
}

/// Every file or folder of the repository ARCHITECTURE.md names in backticks (`engine/start.rs`,
/// `copy.rs`, `fixtures/clamav/`) is there: below `src/`, `tests/it/` or the top, or — a bare
/// file or folder name, which the text names within its module — somewhere below `src/` or
/// `tests/it/`.
/// Folders of a release record (`approvals/`, `evidence/`…) are the record's, not the repository's.
#[test]
fn every_path_architecture_md_names_exists() {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(top.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    const RECORD: &[&str] = &[
        "approvals/",
        "evidence/",
        "checkpoints/",
        "staged/",
        "audit/",
        "published/",
    ];
    let files: Vec<String> = ["src", "tests/it"]
        .iter()
        .flat_map(|d| walkdir::WalkDir::new(top.join(d)))
        .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string))
        .collect();
    let mut checked = 0;
    for token in text.split('`').skip(1).step_by(2) {
        let path = token.split("::").next().unwrap_or_default();
        let is_path = !path.is_empty()
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
            && [".rs", ".md", ".sh", ".py", "/"]
                .iter()
                .any(|end| path.ends_with(end));
        if !is_path || RECORD.contains(&path) {
            continue;
        }
        checked += 1;
        let there = if path.trim_end_matches('/').contains('/') {
            ["src", "tests/it", "."]
                .iter()
                .any(|base| top.join(base).join(path.trim_end_matches('/')).exists())
        } else {
            let name = path.trim_end_matches('/');
            files.iter().any(|f| f == name) || top.join(name).exists()
        };
        assert!(
            there,
            "ARCHITECTURE.md names `{token}`, which is not in the repository"
        );
    }
    assert!(
        checked > 50,
        "only {checked} paths found: is the pattern still right?"
    );
}

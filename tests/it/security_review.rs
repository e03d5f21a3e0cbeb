//! The security-review gate end to end at library level: a pipeline folder with SARIF reports,
//! a register and pentest records; collect into a real release record, then judge.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use crate::common::copy_dir;
use crate::common::library;
use relgate::gates::{self, JudgeContext, Verdict};
use relgate::model::{GateKind, GateSpec, PentestSpec, Pipeline, SecurityReviewSpec};
use relgate::record::Record;
use relgate::stage;

const DAY: u64 = 86_400;
/// 2026-11-27T12:00:00Z
const NOV_27: i64 = 1_795_780_800;

fn fixture(rel: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(rel),
    )
    .unwrap()
}

fn spec() -> SecurityReviewSpec {
    SecurityReviewSpec {
        findings: vec!["reports/*.sarif".into()],
        register: "security/remediations.yaml".into(),
        block: vec!["critical".into()],
        sla_secs: BTreeMap::from([
            ("critical".into(), 7 * DAY),
            ("high".into(), 30 * DAY),
            ("medium".into(), 90 * DAY),
            ("low".into(), 365 * DAY),
        ]),
        pentest: Some(PentestSpec {
            records: "security/pentests.yaml".into(),
            max_age_secs: 365 * DAY,
        }),
    }
}

/// A pipeline folder holding the bandit report, the fully assigned register and the pentests.
struct Case {
    dir: tempfile::TempDir,
    spec: SecurityReviewSpec,
}

impl Case {
    fn new() -> Case {
        let case = Case {
            dir: tempfile::tempdir().unwrap(),
            spec: spec(),
        };
        case.write("dist/a.txt", b"artefact");
        case.write("reports/bandit.sarif", &fixture("sarif/bandit.sarif"));
        case.write(
            "security/remediations.yaml",
            &fixture("security/remediations.yaml"),
        );
        case.write("security/pentests.yaml", &fixture("security/pentests.yaml"));
        case
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        let p = self.root().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root().join(rel)).unwrap()
    }

    /// Edit the register text in place.
    fn edit_register(&self, from: &str, to: &str) {
        let text = self.read("security/remediations.yaml");
        assert!(text.contains(from), "{from:?} not in the register");
        self.write(
            "security/remediations.yaml",
            text.replacen(from, to, 1).as_bytes(),
        );
    }

    fn gate(&self) -> GateSpec {
        GateSpec {
            id: "security-review".into(),
            needs: vec![],
            timeout_secs: 3600,
            when: None,
            kind: GateKind::SecurityReview(self.spec.clone()),
        }
    }

    fn pipeline(&self) -> Pipeline {
        library::pipeline(self.root(), "acme", &["dist/a.txt"], vec![self.gate()])
    }

    /// Collect into a fresh release record, then judge as of `started_at`.
    fn run(&self, started_at: i64) -> Run {
        let record_dir = self
            .root()
            .join(format!(".relgate/releases/1.0.0-{started_at}"));
        let record = Record::new(&record_dir);
        let files = stage::resolve(self.root(), &["dist/a.txt".into()]).unwrap();
        let staged = stage::stage(self.root(), &files, &record_dir.join("staged/x"), 1).unwrap();
        let pipeline = Arc::new(self.pipeline());
        let (mut cx, _tx) =
            library::collect_context(pipeline.clone(), record.clone(), staged, "1.0.0");
        cx.started_at = started_at;
        let evidence = library::collect(&self.gate(), &cx);
        let subject = cx.staged.subject.clone();
        let run = Run {
            gate: self.gate(),
            pipeline: (*pipeline).clone(),
            record,
            evidence,
            subject,
            started_at,
            verdict: Verdict::green(),
        };
        let verdict = run.judge(run.started_at);
        Run { verdict, ..run }
    }
}

struct Run {
    gate: GateSpec,
    pipeline: Pipeline,
    record: Record,
    evidence: serde_json::Value,
    subject: String,
    started_at: i64,
    verdict: Verdict,
}

impl Run {
    fn judge(&self, started_at: i64) -> Verdict {
        self.judge_from(&self.record, started_at)
    }

    fn judge_from(&self, blobs: &Record, started_at: i64) -> Verdict {
        let jcx = JudgeContext {
            project: "acme",
            version: "1.0.0",
            subject: &self.subject,
            operator: None,
            started_at,
            dry_run: false,
            signers: None,
            pipeline: &self.pipeline,
            policy: "",
            subject_since: 0,
            blobs,
        };
        gates::judge(&self.gate, &self.evidence, &jcx)
    }

    fn codes(&self) -> Vec<&str> {
        self.verdict
            .reasons
            .iter()
            .map(|r| r.code.as_str())
            .collect()
    }

    fn messages(&self) -> String {
        self.verdict
            .reasons
            .iter()
            .map(|r| format!("{}: {}\n", r.code, r.message))
            .collect()
    }

    fn warnings(&self) -> Vec<String> {
        self.evidence["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                format!(
                    "{}: {}",
                    w["code"].as_str().unwrap(),
                    w["message"].as_str().unwrap()
                )
            })
            .collect()
    }
}

fn sarif(results: &str, rules: &str) -> Vec<u8> {
    format!(
        r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"hand","rules":[{rules}]}}}},"results":[{results}]}}]}}"#
    )
    .into_bytes()
}

#[test]
fn a_fully_assigned_set_is_green_and_the_table_is_recorded() {
    let case = Case::new();
    let run = case.run(NOV_27);
    assert!(run.verdict.is_green(), "{}", run.messages());
    assert_eq!(run.warnings(), Vec::<String>::new());
    let table = fs::read_to_string(run.record.dir.join("security-review.md")).unwrap();
    assert!(
        table.contains(
            "| B602 | Bandit | high (level) | app.py:10 | erin@acme.test | SEC-104 | 2026-11-30 | open | ok |"
        ),
        "{table}"
    );
    assert!(
        table.contains("| B301 | Bandit | medium (level) | app.py:14 |"),
        "{table}"
    );
    assert!(
        table.contains("| PT-2026-01 | pentest 2026-06-15 |"),
        "{table}"
    );
    // Every input is in the record under its digest, and so is the table.
    let ev = &run.evidence;
    for d in [
        &ev["sarif"][0]["digest"],
        &ev["register"]["digest"],
        &ev["pentest"]["digest"],
        &ev["table"],
    ] {
        let d = d.as_str().unwrap();
        assert!(run.record.evidence_dir().join(d).is_file(), "{d}");
    }
    assert_eq!(ev["sarif"][0]["path"], "reports/bandit.sarif");
    assert_eq!(ev["register"]["path"], "security/remediations.yaml");
}

#[test]
fn finding_without_entry_is_unassigned() {
    let case = Case::new();
    case.edit_register("- finding: B301", "- finding: B999");
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["finding-unassigned"], "{}", run.messages());
    let m = run.messages();
    assert!(
        m.contains("B301 at app.py:14 (Bandit, medium (level))"),
        "{m}"
    );
    assert!(m.contains("no entry in security/remediations.yaml"), "{m}");
    // The entry that no longer matches anything is a warning, not red.
    assert_eq!(run.warnings().len(), 1);
    assert!(
        run.warnings()[0].starts_with("register-entry-stale: entry security/remediations.yaml:")
    );
    assert!(run.warnings()[0].contains("\"B999\""));
}

#[test]
fn entry_without_owner_leaves_the_finding_unassigned() {
    let case = Case::new();
    case.edit_register("  owner: frank@acme.test\n", "");
    let run = case.run(NOV_27);
    assert_eq!(
        run.codes(),
        ["register-invalid", "finding-unassigned"],
        "{}",
        run.messages()
    );
    let m = run.messages();
    assert!(
        m.contains("register-invalid: security/remediations.yaml:39:3: [5].owner: missing `owner`"),
        "{m}"
    );
    assert!(
        m.contains("B324 at app.py:18 (Bandit, high (level)): entry security/remediations.yaml:39:3 (SEC-106) lacks owner"),
        "{m}"
    );
}

#[test]
fn overdue_entry_is_red_and_fixed_means_gone() {
    let case = Case::new();
    // 2026-12-01: B602 and B324 were due 2026-11-30; PT-2026-02 (fixed) was due 2026-07-15.
    let dec_1 = NOV_27 + 4 * DAY as i64;
    case.edit_register(
        "  due: 2026-11-30\n  status: open\n  target",
        "  due: 2026-11-30\n  status: fixed\n  target",
    );
    let run = case.run(dec_1);
    assert_eq!(
        run.codes(),
        [
            "fixed-still-reported",
            "remediation-overdue",
            "remediation-overdue"
        ],
        "{}",
        run.messages()
    );
    let m = run.messages();
    // B602 is marked fixed, yet the scanner still reports it: not fixed, so overdue as well.
    assert!(
        m.contains("fixed-still-reported: B602 at app.py:10 (Bandit, high (level)): entry security/remediations.yaml:24:3 (SEC-104) says fixed, but the scanner still reports it; judged as open"),
        "{m}"
    );
    assert!(
        m.contains("B602 at app.py:10 (Bandit, high (level)): entry security/remediations.yaml:24:3 (SEC-104) was due 2026-11-30 and is marked fixed but still reported (today is 2026-12-01)"),
        "{m}"
    );
    assert!(
        m.contains("B324 at app.py:18 (Bandit, high (level)): entry security/remediations.yaml:39:3 (SEC-106) was due 2026-11-30 and is open (today is 2026-12-01)"),
        "{m}"
    );
    // The pentest finding marked fixed has nothing reporting it: fixed, not overdue.
    assert!(!m.contains("PT-2026-02"), "{m}");
    assert_eq!(run.warnings(), Vec::<String>::new());
}

#[test]
fn due_date_beyond_the_sla_is_red() {
    let case = Case::new();
    // B602 is high: 30 days allowed from 2026-11-01.
    case.edit_register(
        "  due: 2026-11-30\n  status: open\n  target",
        "  due: 2027-01-15\n  status: open\n  target",
    );
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["sla-exceeded"], "{}", run.messages());
    assert!(
        run.messages().contains("B602 at app.py:10 (Bandit, high (level)): entry security/remediations.yaml:24:3 (SEC-104) gives 75 days from 2026-11-01 to 2027-01-15; the high SLA is 30 days"),
        "{}",
        run.messages()
    );
}

#[test]
fn open_critical_finding_blocks_even_when_assigned_and_cvss_4_gives_the_band() {
    let case = Case::new();
    let v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N";
    let v31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N";
    case.write(
        "reports/deps.sarif",
        &sarif(
            &format!(
                r#"{{"ruleId":"GHSA-crit","message":{{"text":"remote code execution"}},"properties":{{"cvssV4":"{v4}"}},
                    "locations":[{{"physicalLocation":{{"artifactLocation":{{"uri":"Cargo.lock"}},"region":{{"startLine":42}}}}}}]}},
                   {{"ruleId":"GHSA-high","message":{{"text":"leak"}}}}"#
            ),
            &format!(r#"{{"id":"GHSA-high","properties":{{"cvss":"{v31}"}}}}"#),
        ),
    );
    let mut reg = case.read("security/remediations.yaml");
    reg.push_str(
        "- finding: GHSA-crit\n  owner: dave@acme.test\n  plan: upgrade\n  opened: 2026-11-25\n  due: 2026-11-30\n  status: open\n\
         - finding: GHSA-high\n  owner: dave@acme.test\n  plan: upgrade\n  opened: 2026-11-25\n  due: 2026-12-20\n  status: open\n",
    );
    case.write("security/remediations.yaml", reg.as_bytes());
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["severity-blocks"], "{}", run.messages());
    assert!(
        run.messages().contains(
            "GHSA-crit at Cargo.lock:42 (hand, critical (cvss-4.0 9.3)): open critical finding blocks the release"
        ),
        "{}",
        run.messages()
    );
    let table = fs::read_to_string(run.record.dir.join("security-review.md")).unwrap();
    assert!(
        table.contains("| GHSA-high | hand | high (cvss-3.1 7.5) |"),
        "{table}"
    );

    // Accepting the risk (with its plan and owner) lifts the block.
    case.edit_register(
        "  due: 2026-11-30\n  status: open\n- finding: GHSA-high",
        "  due: 2026-11-30\n  status: accepted\n- finding: GHSA-high",
    );
    let run = case.run(NOV_27);
    assert!(run.verdict.is_green(), "{}", run.messages());
}

#[test]
fn stale_pentest_is_red() {
    let case = Case::new();
    case.write(
        "security/pentests.yaml",
        b"- date: 2025-11-01\n  findings: [PT-2026-01, PT-2026-02]\n",
    );
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["pentest-stale"], "{}", run.messages());
    assert!(
        run.messages().contains("security/pentests.yaml:1: the newest pentest (2025-11-01) is 391 days old; at most 365 days allowed"),
        "{}",
        run.messages()
    );
    case.write("security/pentests.yaml", b"[]\n");
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["pentest-stale"], "{}", run.messages());
}

#[test]
fn pentest_finding_missing_from_the_register_is_red() {
    let case = Case::new();
    case.write(
        "security/pentests.yaml",
        b"- date: 2026-10-01\n  version: 1.4.0\n  findings:\n    - PT-2026-01\n    - PT-2026-07\n",
    );
    let run = case.run(NOV_27);
    assert_eq!(
        run.codes(),
        ["pentest-finding-unassigned"],
        "{}",
        run.messages()
    );
    assert!(
        run.messages().contains("security/pentests.yaml:5: pentest finding PT-2026-07 (pentest of 2026-10-01) has no entry in security/remediations.yaml"),
        "{}",
        run.messages()
    );
    // PT-2026-02 is no longer named by any pentest nor any finding.
    assert_eq!(run.warnings().len(), 1, "{:?}", run.warnings());
}

#[test]
fn overdue_pentest_finding_is_red() {
    let case = Case::new();
    let dec_20 = NOV_27 + 23 * DAY as i64;
    // Move every SARIF finding's due date out of the way: only PT-2026-01 (due 12-15) is late.
    let text = case
        .read("security/remediations.yaml")
        .replace("due: 2026-11-30", "due: 2026-12-31")
        .replace(
            "opened: 2026-11-01\n  due: 2026-12-31",
            "opened: 2026-12-01\n  due: 2026-12-31",
        );
    case.write("security/remediations.yaml", text.as_bytes());
    let run = case.run(dec_20);
    assert_eq!(run.codes(), ["remediation-overdue"], "{}", run.messages());
    assert!(
        run.messages()
            .contains("pentest finding PT-2026-01 (2026-06-15)"),
        "{}",
        run.messages()
    );
}

#[test]
fn unreadable_sarif_files_are_red_and_named() {
    let case = Case::new();
    let good = fixture("sarif/bandit.sarif");
    case.write("reports/truncated.sarif", &good[..good.len() - 100]);
    case.write("reports/plain.sarif", b"<html>not json</html>");
    case.write("reports/old.sarif", br#"{"version":"2.0.0","runs":[]}"#);
    let deep = format!(
        r#"{{"version":"2.1.0","runs":{}{}}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    case.write("reports/deep.sarif", deep.as_bytes());
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["sarif-unreadable"; 4], "{}", run.messages());
    let m = run.messages();
    for (file, why) in [
        ("reports/deep.sarif", "not JSON: recursion limit exceeded"),
        ("reports/old.sarif", "not SARIF 2.1.0: version is \"2.0.0\""),
        ("reports/plain.sarif", "not JSON: expected value"),
        ("reports/truncated.sarif", "not JSON: EOF while parsing"),
    ] {
        assert!(
            m.contains(&format!("sarif-unreadable: {file}: {why}")),
            "{file}: {m}"
        );
    }
    // The bad files are recorded too (replay sees the same bytes), with the parse error noted.
    let recorded: Vec<&str> = run.evidence["sarif"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !f["error"].is_null())
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(recorded.len(), 4);
}

#[test]
fn oversized_sarif_is_refused_before_reading() {
    let case = Case::new();
    let path = case.root().join("reports/huge.sarif");
    let f = fs::File::create(&path).unwrap();
    // Sparse: no disk space used, but the size says 65 MiB.
    f.set_len(65 * 1024 * 1024).unwrap();
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["sarif-unreadable"], "{}", run.messages());
    assert!(
        run.messages()
            .contains("reports/huge.sarif: larger than 67108864 bytes (68157440 bytes)"),
        "{}",
        run.messages()
    );
    let huge = run.evidence["sarif"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "reports/huge.sarif")
        .unwrap();
    assert!(huge["digest"].is_null());
}

#[test]
fn a_glob_matching_nothing_is_red() {
    let mut case = Case::new();
    case.spec.findings.push("reports/audit/*.sarif".into());
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["findings-missing"], "{}", run.messages());
    assert!(
        run.messages()
            .contains("no SARIF file matches \"reports/audit/*.sarif\"")
    );
}

#[test]
fn invalid_register_is_red_with_every_problem() {
    let case = Case::new();
    case.edit_register("  status: open\n", "  status: wontfix\n");
    case.edit_register("due: 2027-05-01", "due: 2027-02-30");
    let run = case.run(NOV_27);
    let m = run.messages();
    assert!(m.contains("register-invalid: security/remediations.yaml:9:11: [0].status: expected open, fixed or accepted, found \"wontfix\""), "{m}");
    assert!(m.contains("register-invalid: security/remediations.yaml:8:8: [0].due: expected a date YYYY-MM-DD, found \"2027-02-30\""), "{m}");
    // B404 has no due date now: it is not assigned either.
    assert!(m.contains("finding-unassigned: B404 at app.py:3"), "{m}");

    case.write(
        "security/remediations.yaml",
        b"- finding: B404\n  owner: [x\n",
    );
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["register-invalid"], "{}", run.messages());
    let table = fs::read_to_string(run.record.dir.join("security-review.md")).unwrap();
    assert!(
        table.contains(
            "| B404 | Bandit | low (level) | app.py:3 | - | - | - | - | register-invalid |"
        ),
        "{table}"
    );
    assert!(
        run.messages()
            .starts_with("register-invalid: security/remediations.yaml:"),
        "{}",
        run.messages()
    );

    fs::remove_file(case.root().join("security/remediations.yaml")).unwrap();
    let run = case.run(NOV_27);
    assert!(
        run.messages()
            .starts_with("register-invalid: security/remediations.yaml: cannot read"),
        "{}",
        run.messages()
    );
}

#[test]
fn guid_and_fingerprint_entries_win_over_the_rule_wide_entry() {
    let case = Case::new();
    let loc = |line: u32| {
        format!(
            r#""locations":[{{"physicalLocation":{{"artifactLocation":{{"uri":"src/q.rs"}},"region":{{"startLine":{line}}}}}}}]"#
        )
    };
    case.write(
        "reports/many.sarif",
        &sarif(
            &format!(
                r#"{{"ruleId":"SQLI","level":"warning","message":{{"text":"a"}},{}}},
                   {{"ruleId":"SQLI","level":"warning","guid":"6f1c-guid","message":{{"text":"b"}},{}}},
                   {{"ruleId":"SQLI","level":"warning","partialFingerprints":{{"primaryLocationLineHash":"abc:1"}},"message":{{"text":"c"}},{}}}"#,
                loc(1),
                loc(2),
                loc(3)
            ),
            "",
        ),
    );
    let mut reg = case.read("security/remediations.yaml");
    reg.push_str(
        "- finding: SQLI\n  owner: dave@acme.test\n  plan: bind parameters\n  opened: 2026-11-20\n  due: 2026-12-20\n  status: open\n\
         - finding: 6f1c-guid\n  owner: dave@acme.test\n  plan: bind parameters\n  opened: 2026-11-01\n  due: 2026-11-10\n  status: open\n\
         - finding: abc:1\n  owner: dave@acme.test\n  plan: bind parameters\n  opened: 2026-11-01\n  due: 2027-12-31\n  status: open\n",
    );
    case.write("security/remediations.yaml", reg.as_bytes());
    let run = case.run(NOV_27);
    assert_eq!(
        run.codes(),
        ["remediation-overdue", "sla-exceeded"],
        "{}",
        run.messages()
    );
    assert!(
        run.verdict.reasons[0]
            .message
            .starts_with("SQLI at src/q.rs:2 "),
        "{}",
        run.messages()
    );
    assert!(
        run.verdict.reasons[1]
            .message
            .starts_with("SQLI at src/q.rs:3 "),
        "{}",
        run.messages()
    );
}

#[test]
fn judge_never_reads_the_clock_nor_the_files() {
    let case = Case::new();
    // Recorded on 2026-11-10: every due date was still ahead. Today (real time) several have
    // passed; judged again with the recorded started_at, the verdict is the same.
    let nov_10 = NOV_27 - 17 * DAY as i64;
    case.edit_register("due: 2026-11-30", "due: 2026-11-12");
    let run = case.run(nov_10);
    assert!(run.verdict.is_green(), "{}", run.messages());
    assert!(
        std::time::SystemTime::now()
            > std::time::UNIX_EPOCH + std::time::Duration::from_secs(nov_10 as u64 + 3 * DAY),
        "the machine clock is past the due date"
    );
    // The pipeline's files are gone and the record has moved (an auditor's copy).
    let audit = tempfile::tempdir().unwrap();
    copy_dir(&run.record.dir, audit.path());
    fs::remove_dir_all(case.root().join("security")).unwrap();
    fs::remove_dir_all(case.root().join("reports")).unwrap();
    let copy = Record::new(audit.path());
    assert_eq!(run.judge_from(&copy, nov_10), run.verdict);
    // Only started_at moves "today".
    let later = run.judge_from(&copy, NOV_27);
    assert_eq!(later.reasons[0].code, "remediation-overdue");
}

#[test]
fn editing_the_recorded_register_is_caught_by_its_digest() {
    let case = Case::new();
    let run = case.run(NOV_27);
    assert!(run.verdict.is_green());
    let digest = run.evidence["register"]["digest"].as_str().unwrap();
    let path = run.record.evidence_dir().join(digest);
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("2026-11-30", "2027-11-30");
    fs::write(&path, text).unwrap();
    let v = run.judge(NOV_27);
    // One reason: the findings are not also reported as unassigned.
    assert_eq!(v.reasons.len(), 1, "{v:?}");
    assert_eq!(v.reasons[0].code, "evidence-unreadable");
    assert!(
        v.reasons[0]
            .message
            .starts_with("security/remediations.yaml: recorded copy: evidence file"),
        "{v:?}"
    );
}

#[test]
fn malformed_evidence_is_red() {
    let case = Case::new();
    let mut run = case.run(NOV_27);
    run.evidence = serde_json::json!({"sarif": "nope"});
    assert_eq!(run.judge(NOV_27).reasons[0].code, "evidence-malformed");
}

#[test]
fn a_dependency_audit_report_is_judged_like_any_other() {
    let case = Case::new();
    case.write(
        "reports/cargo-audit.sarif",
        &fixture("sarif/cargo-audit-shaped.sarif"),
    );
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["finding-unassigned"], "{}", run.messages());
    // The advisory's score is 5.9 (medium), but cargo-audit marks every vulnerability
    // `level: error`: the highest source wins, so it is high.
    assert!(
        run.messages()
            .contains("RUSTSEC-2023-0071 at Cargo.lock:1 (cargo-audit, high (level))"),
        "{}",
        run.messages()
    );
    let table = fs::read_to_string(run.record.dir.join("security-review.md")).unwrap();
    assert!(
        table.contains("| RUSTSEC-2023-0071 | cargo-audit | high (level) |"),
        "{table}"
    );
    // The package fingerprint names this one occurrence.
    let mut reg = case.read("security/remediations.yaml");
    reg.push_str(
        "- finding: rsa@0.9.8\n  owner: dave@acme.test\n  plan: no fix upstream; rsa is not used for decryption\n  opened: 2026-11-20\n  due: 2026-12-18\n  status: accepted\n",
    );
    case.write("security/remediations.yaml", reg.as_bytes());
    let run = case.run(NOV_27);
    assert!(run.verdict.is_green(), "{}", run.messages());
}

#[test]
fn an_unreadable_severity_is_red_not_skipped() {
    let case = Case::new();
    // "9,8" would have been skipped, leaving the level (warning, medium) to decide.
    case.write(
        "reports/deps.sarif",
        &sarif(
            r#"{"ruleId":"CVE-X","message":{"text":"x"}}"#,
            r#"{"id":"CVE-X","properties":{"security-severity":"9,8"}}"#,
        ),
    );
    let mut reg = case.read("security/remediations.yaml");
    reg.push_str("- finding: CVE-X\n  owner: dave@acme.test\n  plan: upgrade\n  opened: 2026-11-25\n  due: 2026-12-20\n  status: open\n");
    case.write("security/remediations.yaml", reg.as_bytes());
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["severity-unreadable"], "{}", run.messages());
    assert!(
        run.messages().contains(
            "CVE-X (hand, medium (level)): security-severity \"9,8\" is not a score 0-10"
        ),
        "{}",
        run.messages()
    );
    let table = fs::read_to_string(run.record.dir.join("security-review.md")).unwrap();
    assert!(table.contains("| severity-unreadable |"), "{table}");
}

/// A register entry for the hand-written reports (dates within every SLA as of NOV_27).
fn entry(finding: &str, extra: &str, status: &str) -> String {
    format!(
        "- finding: {finding}\n{extra}  owner: dave@acme.test\n  plan: upgrade\n  opened: 2026-11-25\n  due: 2026-11-30\n  status: {status}\n"
    )
}

#[test]
fn tool_and_match_keep_an_entry_in_its_namespace() {
    let case = Case::new();
    let lint = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"lint-a"}},"results":[
        {"ruleId":"R1","level":"note","message":{"text":"naming"}}]}]}"#;
    let deps = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"depscan","rules":[
        {"id":"R1","properties":{"security-severity":"9.9"}},{"id":"INFO-1"}]}},"results":[
        {"ruleId":"R1","message":{"text":"rce"},"partialFingerprints":{"pkg":"libfoo@1.2"}},
        {"ruleId":"INFO-1","level":"note","message":{"text":"banner"},"partialFingerprints":{"pkg":"PT-2026-02"}}]}]}"#;
    case.write("reports/lint.sarif", lint.as_bytes());
    case.write("reports/deps.sarif", deps.as_bytes());
    let base = case.read("security/remediations.yaml");

    // Bare entries: R1 is two tools' rule id, PT-2026-02 both a pentest id and a fingerprint.
    let bare = format!(
        "{base}{}{}",
        entry("R1", "", "accepted"),
        entry("INFO-1", "", "open")
    );
    case.write("security/remediations.yaml", bare.as_bytes());
    let run = case.run(NOV_27);
    assert_eq!(
        run.codes(),
        ["register-ambiguous", "register-ambiguous"],
        "{}",
        run.messages()
    );
    let m = run.messages();
    assert!(m.contains("for \"R1\" is ambiguous: it matches as a rule id of depscan and as a rule id of lint-a; add `tool:` or `match:` to say which"), "{m}");
    assert!(m.contains("for \"PT-2026-02\" is ambiguous: it matches as fingerprint pkg of depscan and as a pentest finding id"), "{m}");

    // Qualified: each entry stays in its namespace, and the critical R1 of depscan blocks.
    let qualified = base.replace(
        "- finding: PT-2026-02\n",
        "- finding: PT-2026-02\n  match: pentest\n",
    ) + &entry("R1", "  tool: lint-a\n", "accepted")
        + &entry("R1", "  tool: depscan\n  match: rule\n", "open")
        + &entry("INFO-1", "  tool: depscan\n", "open");
    case.write("security/remediations.yaml", qualified.as_bytes());
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["severity-blocks"], "{}", run.messages());
    assert!(run.messages().contains("R1 (depscan, critical (security-severity 9.9)): open critical finding blocks the release"), "{}", run.messages());

    // A fingerprint entry with its name covers that one occurrence (its own entry wins over
    // the rule-wide one). Written bare it still works, but is flagged: a bare value does not
    // say what it was written for.
    let pinned = qualified.clone()
        + &entry(
            "libfoo@1.2",
            "  tool: depscan\n  match: fingerprint:pkg\n",
            "accepted",
        );
    case.write("security/remediations.yaml", pinned.as_bytes());
    let run = case.run(NOV_27);
    assert!(run.verdict.is_green(), "{}", run.messages());
    assert_eq!(run.warnings(), Vec::<String>::new());
    let unpinned = qualified + &entry("libfoo@1.2", "", "accepted");
    case.write("security/remediations.yaml", unpinned.as_bytes());
    let run = case.run(NOV_27);
    assert!(run.verdict.is_green(), "{}", run.messages());
    assert_eq!(run.warnings().len(), 1, "{:?}", run.warnings());
    assert!(
        run.warnings()[0]
            .starts_with("register-entry-unqualified: entry security/remediations.yaml:"),
        "{:?}",
        run.warnings()
    );
    assert!(run.warnings()[0].contains("matched as fingerprint pkg of depscan but does not say so: add `match: fingerprint:pkg` and `tool:`"), "{:?}", run.warnings());
}

#[test]
fn two_entries_matching_one_finding_equally_are_ambiguous() {
    let case = Case::new();
    let deps = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"depscan"}},"results":[
        {"ruleId":"R1","level":"note","message":{"text":"x"},"partialFingerprints":{"a":"fp-a","b":"fp-b"}}]}]}"#;
    case.write("reports/deps.sarif", deps.as_bytes());
    let mut reg = case.read("security/remediations.yaml");
    reg.push_str(&entry("fp-a", "  match: fingerprint:a\n", "open"));
    reg.push_str(&entry("fp-b", "  match: fingerprint:b\n", "accepted"));
    case.write("security/remediations.yaml", reg.as_bytes());
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["register-ambiguous"], "{}", run.messages());
    assert!(
        run.messages()
            .contains("R1 (depscan, low (level)): entries security/remediations.yaml:"),
        "{}",
        run.messages()
    );
    assert!(
        run.messages()
            .ends_with("all match it, none more specifically: keep one\n"),
        "{}",
        run.messages()
    );
}

#[test]
fn a_fingerprint_entry_matching_results_of_two_rules_is_ambiguous() {
    // An entry for one occurrence must not cover a second result that copies its fingerprint.
    let case = Case::new();
    let deps = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"depscan","rules":[{"id":"LOW"},{"id":"CRIT","properties":{"security-severity":"9.9"}}]}},"results":[
        {"ruleId":"LOW","level":"note","message":{"text":"x"},"partialFingerprints":{"h":"abc"}},
        {"ruleId":"CRIT","message":{"text":"y"},"partialFingerprints":{"h":"abc"}}]}]}"#;
    case.write("reports/deps.sarif", deps.as_bytes());
    let mut reg = case.read("security/remediations.yaml");
    reg.push_str(&entry(
        "abc",
        "  tool: depscan\n  match: fingerprint:h\n",
        "accepted",
    ));
    case.write("security/remediations.yaml", reg.as_bytes());
    let run = case.run(NOV_27);
    assert_eq!(run.codes(), ["register-ambiguous"], "{}", run.messages());
    assert!(run.messages().contains("as fingerprint h of depscan it names one occurrence, but matches results of the rules CRIT, LOW"), "{}", run.messages());
}

//! The `regression` gate through the real binary against reports and processes a hostile or
//! sloppy build makes: JUnit files that a lenient reader misplaces, reports that are not this
//! run's, duplicates that inflate `min_tests`, and processes that leave the command's group.
//! Each test makes its input the way the attack does (a shell script run by the gate) and
//! expects a refusal with its reason code, nothing published, and a record that replays.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use relgate::exit;

const FAILING: &str = r#"<testsuite name="calc" tests="1" failures="1"><testcase classname="calc" name="divides"><failure message="boom"/></testcase></testsuite>"#;
const PASSING_ONE: &str =
    r#"<testsuite name="calc" tests="1"><testcase classname="calc" name="adds"/></testsuite>"#;

/// A project whose `unit` gate runs `sh build.sh` (written by the caller) and reads `junit`.
fn unit_project(junit: &str, extra: &str) -> Project {
    let gates =
        format!("  unit:\n    kind: regression\n    run: sh build.sh\n    junit: {junit}\n{extra}");
    let p = project_with(&gates);
    std::fs::create_dir_all(p.join("build")).expect("mkdir");
    p
}

/// Run release 1.0.0: refused, nothing published, and the refusal replays. Returns stderr.
fn refused(p: &Project) -> String {
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::REFUSED);
    assert!(!p.join("published").exists());
    let replay = p.relgate(&["replay", p.record("1.0.0").to_str().expect("utf8")]);
    expect_code(&replay, exit::SUCCESS);
    stderr(&out)
}

#[track_caller]
fn has(err: &str, needle: &str) {
    assert!(err.contains(needle), "{needle:?} not in:\n{err}");
}

// ---------------------------------------------------------------------------------------------
// 12. Content a lenient reader does not place
// ---------------------------------------------------------------------------------------------

#[test]
fn a_failing_report_appended_after_a_passing_one_is_unparsable() {
    let p = unit_project("[build/*.xml]", "");
    p.write("pass.xml", PASSING_ONE);
    p.write("fail.xml", FAILING);
    // Two test steps appending to one report: the second root is the failing one.
    p.write(
        "build.sh",
        "cat pass.xml > build/r.xml\ncat fail.xml >> build/r.xml\n",
    );
    let err = refused(&p);
    has(&err, "junit-unparsable");
    has(&err, "build/r.xml");
    has(&err, "after the root element");
}

#[test]
fn a_testcase_inside_an_unknown_wrapper_element_is_unparsable() {
    let p = unit_project("[build/*.xml]", "");
    p.write(
        "build.sh",
        r#"cat > build/r.xml <<'EOF'
<testsuite name="calc" tests="1">
  <group><testcase classname="calc" name="divides"><failure message="boom"/></testcase></group>
  <testcase classname="calc" name="adds"/>
</testsuite>
EOF
"#,
    );
    let err = refused(&p);
    has(&err, "junit-unparsable");
    has(&err, "<group>");
}

// ---------------------------------------------------------------------------------------------
// 15. DTDs and entities
// ---------------------------------------------------------------------------------------------

#[test]
fn an_internal_dtd_entity_standing_for_a_failure_is_refused() {
    let p = unit_project("[build/*.xml]", "");
    p.write(
        "build.sh",
        r#"cat > build/r.xml <<'EOF'
<?xml version="1.0"?>
<!DOCTYPE testsuite [<!ENTITY f "<failure message='boom'/>">]>
<testsuite name="calc" tests="1"><testcase classname="calc" name="divides">&f;</testcase></testsuite>
EOF
"#,
    );
    let err = refused(&p);
    has(&err, "junit-doctype");
    has(&err, "DOCTYPE");
}

#[test]
fn an_undeclared_entity_is_refused() {
    let p = unit_project("[build/*.xml]", "");
    p.write(
        "build.sh",
        r#"cat > build/r.xml <<'EOF'
<testsuite name="calc" tests="1"><testcase classname="calc" name="divides">&f;</testcase></testsuite>
EOF
"#,
    );
    let err = refused(&p);
    has(&err, "junit-doctype");
    has(&err, "&f;");
}

// ---------------------------------------------------------------------------------------------
// 17. Reruns
// ---------------------------------------------------------------------------------------------

#[test]
fn a_rerun_failure_without_a_primary_failure_is_a_failed_test() {
    let p = unit_project("[build/*.xml]", "");
    p.write(
        "build.sh",
        r#"cat > build/r.xml <<'EOF'
<testsuite name="net" tests="2">
  <testcase classname="net" name="connects"/>
  <testcase classname="net" name="timesOut"><rerunFailure message="timed out"/><rerunError message="reset"/></testcase>
</testsuite>
EOF
"#,
    );
    let err = refused(&p);
    has(&err, "tests-failed");
    has(&err, "net::timesOut");
}

// ---------------------------------------------------------------------------------------------
// 16. Duplicates that inflate min_tests, and a build folder that leads outside
// ---------------------------------------------------------------------------------------------

#[test]
fn one_report_through_two_globs_is_counted_once() {
    let p = unit_project("[build/*.xml, build/./r.xml]", "    min_tests: 2\n");
    p.write("pass.xml", PASSING_ONE);
    p.write("build.sh", "cp pass.xml build/r.xml\n");
    let err = refused(&p);
    has(&err, "too-few-tests");
    has(&err, "ran 1 test, need at least 2");
}

#[test]
fn a_hard_link_or_a_copy_of_a_report_is_counted_once() {
    for how in ["ln", "cp"] {
        let p = unit_project("[build/*.xml]", "    min_tests: 2\n");
        p.write("pass.xml", PASSING_ONE);
        p.write(
            "build.sh",
            format!("cp pass.xml build/r.xml\n{how} build/r.xml build/r2.xml\n"),
        );
        let err = refused(&p);
        has(&err, "too-few-tests");
        has(&err, "ran 1 test, need at least 2");
        has(
            &err,
            "build/r2.xml: the same bytes as build/r.xml, counted once",
        );
    }
}

#[test]
fn a_repeated_testcase_is_counted_once() {
    let p = unit_project("[build/*.xml]", "    min_tests: 3\n");
    p.write(
        "build.sh",
        r#"cat > build/r.xml <<'EOF'
<testsuite name="calc" tests="3">
  <testcase classname="calc" name="adds"/>
  <testcase classname="calc" name="adds"/>
  <testcase classname="calc" name="subtracts"/>
</testsuite>
EOF
"#,
    );
    let err = refused(&p);
    has(&err, "too-few-tests");
    has(&err, "ran 2 tests, need at least 3");
    has(
        &err,
        "1 repeated test case entry (same suite, classname and name) counted once",
    );
}

#[test]
fn a_symlinked_build_folder_leading_outside_the_project_is_refused() {
    let outside = tempfile::tempdir().expect("tempdir");
    let gates = format!(
        "  unit:\n    kind: regression\n    run: sh build.sh\n    junit: [build/*.xml]\n    env: {{OUT: {}}}\n",
        outside.path().display()
    );
    let p = project_with(&gates);
    p.write("pass.xml", PASSING_ONE);
    // The reports live outside the project; `build` is a link to them.
    p.write(
        "build.sh",
        "cp pass.xml \"$OUT/r.xml\"\nln -s \"$OUT\" build\n",
    );
    let err = refused(&p);
    has(&err, "junit-outside-project");
    has(&err, "build/r.xml");
}

// ---------------------------------------------------------------------------------------------
// 14. A report not written during this run's command window
// ---------------------------------------------------------------------------------------------

#[test]
fn a_stale_report_dated_in_the_future_is_not_this_runs() {
    let p = unit_project("[build/*.xml]", "");
    p.write("build/r.xml", PASSING_ONE);
    let st = std::process::Command::new("touch")
        .args(["-d", "+1 day"])
        .arg(p.join("build/r.xml"))
        .status()
        .expect("touch");
    assert!(st.success());
    p.write("build.sh", "true\n");
    let err = refused(&p);
    has(&err, "junit-future-mtime");
    has(&err, "junit-missing");
}

#[test]
fn a_linked_build_folder_that_stays_inside_the_project_is_read() {
    let p = unit_project(
        "[out/*.xml]",
        "    min_tests: 1
",
    );
    p.write("pass.xml", PASSING_ONE);
    p.write("build.sh", "cp pass.xml build/r.xml\nln -s build out\n");
    let out = p.relgate(&["run", "1.0.0"]);
    expect_code(&out, exit::SUCCESS);
}

// ---------------------------------------------------------------------------------------------
// 13. A detached process that outlives the command
// ---------------------------------------------------------------------------------------------

fn wait_for_file(path: &Path, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_detached_process_is_killed_before_the_report_is_read_and_the_gate_is_red() {
    let p = unit_project("[build/*.xml]", "");
    p.write("pass.xml", PASSING_ONE);
    p.write("fail.xml", FAILING);
    // The command writes a failing report and leaves a process in a session of its own that
    // would swap in a passing report later (and would still be running after the verdict).
    p.write(
        "build.sh",
        r#"cp fail.xml build/r.xml
setsid sh -c 'echo $$ > escaped.pid; sleep 3; cp pass.xml build/r.xml; touch escaped-ran' </dev/null >/dev/null 2>&1 &
while [ ! -s escaped.pid ]; do sleep 0.05; done
"#,
    );
    let err = refused(&p);
    has(&err, "process-escaped");
    has(&err, "tests-failed");
    let pid: u32 = wait_for_file(&p.join("escaped.pid"), Duration::from_secs(1))
        .trim()
        .parse()
        .expect("pid");
    assert!(!alive(pid), "the detached process {pid} outlived the run");
    // Had it lived, it would have rewritten the report by now.
    std::thread::sleep(Duration::from_secs(4));
    assert!(!p.join("escaped-ran").exists());
    assert_eq!(p.read("build/r.xml"), FAILING);
}

#[test]
fn a_double_forked_daemon_is_killed_too() {
    let p = unit_project("[build/*.xml]", "");
    p.write("pass.xml", PASSING_ONE);
    // Fork twice, leave the group and the session: the daemon's parent is gone at once.
    p.write(
        "build.sh",
        r#"cp pass.xml build/r.xml
( setsid sh -c 'sh -c "echo \$\$ > daemon.pid; exec sleep 300" &' </dev/null >/dev/null 2>&1 & )
while [ ! -s daemon.pid ]; do sleep 0.05; done
"#,
    );
    let err = refused(&p);
    has(&err, "process-escaped");
    let pid: u32 = p.read("daemon.pid").trim().parse().expect("pid");
    assert!(!alive(pid), "the daemon {pid} outlived the run");
}

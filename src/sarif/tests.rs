//! Unit tests of the SARIF reader: real reports, rule resolution, and the problems a file
//! states about itself.

use super::*;

fn log(runs: &str) -> Vec<u8> {
    format!(r#"{{"version":"2.1.0","runs":{runs}}}"#).into_bytes()
}

#[test]
fn bandit_report_reads_with_rule_index_and_default_level() {
    let bytes = include_bytes!("../../fixtures/sarif/bandit.sarif");
    let report = parse(bytes).unwrap();
    assert_eq!(report.problems, []);
    let findings = report.findings;
    let ids: Vec<_> = findings
        .iter()
        .filter_map(|f| f.rule_id.as_deref())
        .collect();
    assert_eq!(ids, ["B404", "B403", "B105", "B602", "B301", "B324"]);
    assert!(findings.iter().all(|f| f.tool == "Bandit"));
    let b301 = &findings[4];
    assert_eq!(b301.level, Level::Warning, "no level means warning");
    assert_eq!(b301.rule_name.as_deref(), Some("blacklist"));
    assert_eq!(findings[3].label(), "B602 at app.py:10");
}

#[test]
fn rules_by_index_by_id_and_in_extensions() {
    let bytes = log(
        r#"[{"tool":{"driver":{"name":"t","rules":[{"id":"A","defaultConfiguration":{"level":"note"}},{"id":"B","defaultConfiguration":{"level":"error"}}]},
             "extensions":[{"name":"ext","rules":[{"id":"X","defaultConfiguration":{"level":"error"},"properties":{"security-severity":"9.1"}}]}]},
           "results":[
             {"ruleIndex":1,"message":{"text":"by index"}},
             {"ruleId":"A","message":{"text":"by id"}},
             {"ruleId":"X","message":{"text":"in an extension"}},
             {"rule":{"id":"X","index":0,"toolComponent":{"index":0}},"message":{"text":"by reference"}},
             {"ruleId":"nowhere","message":{"text":"unknown rule"}},
             {"ruleId":"A","kind":"pass","message":{"text":"not a problem"}}
           ]}]"#,
    );
    let r = parse(&bytes).unwrap();
    assert_eq!(r.problems, []);
    let f = r.findings;
    assert_eq!(f.len(), 5);
    assert_eq!(
        (f[0].rule_id.as_deref(), f[0].level),
        (Some("B"), Level::Error)
    );
    assert_eq!(
        (f[1].rule_id.as_deref(), f[1].level),
        (Some("A"), Level::Note)
    );
    assert_eq!(f[2].rule_properties["security-severity"], "9.1");
    assert_eq!(f[3].rule_id.as_deref(), Some("X"));
    assert_eq!(f[3].level, Level::Error);
    assert_eq!(f[4].level, Level::Warning);
    assert!(f[4].rule_properties.is_empty());
}

#[test]
fn several_runs_and_fingerprints() {
    let bytes = log(
        r#"[{"tool":{"driver":{"name":"one"}},"results":[{"ruleId":"R1","guid":"g-1","message":{"text":"a"},
              "fingerprints":{"f/v1":"fp1"},"partialFingerprints":{"primaryLocationLineHash":"pf1"},
              "locations":[{"physicalLocation":{"artifactLocation":{"uri":"src/a.rs"},"region":{"startLine":7}}}]}]},
            {"tool":{"driver":{"name":"two"}},"results":[]},
            {"tool":{"driver":{"name":"three"}},"results":[{"ruleId":"R3","message":{"id":"m"}}]}]"#,
    );
    let r = parse(&bytes).unwrap();
    assert_eq!(r.problems, []);
    let f = r.findings;
    assert_eq!(f.len(), 2);
    assert_eq!((f[0].tool.as_str(), f[1].tool.as_str()), ("one", "three"));
    assert_eq!(f[1].run, 2);
    assert_eq!(f[0].guid.as_deref(), Some("g-1"));
    assert_eq!(
        f[0].fingerprints,
        [
            ("f/v1".into(), "fp1".into()),
            ("primaryLocationLineHash".into(), "pf1".into())
        ]
    );
    assert_eq!(f[0].label(), "R1 at src/a.rs:7");
}

#[test]
fn not_sarif_is_an_error() {
    assert!(matches!(parse(b"hello"), Err(SarifError::NotJson(_))));
    assert!(matches!(parse(b"{}"), Err(SarifError::NotSarif(_))));
    assert!(matches!(
        parse(br#"{"version":"2.0.0","runs":[]}"#),
        Err(SarifError::NotSarif(_))
    ));
    assert!(matches!(
        parse(br#"{"version":"2.1.0"}"#),
        Err(SarifError::NotSarif(_))
    ));
    assert!(matches!(
        parse(br#"{"version":"2.1.0","runs":[{"tool":{}}]}"#),
        Err(SarifError::NotSarif(_))
    ));
    assert!(matches!(
        parse(&log(
            r#"[{"tool":{"driver":{"name":"t"}},"results":[{"ruleId":"A","level":"fatal","message":{"text":""}}]}]"#
        )),
        Err(SarifError::NotSarif(_))
    ));
}

#[test]
fn truncated_file_is_an_error() {
    let bytes = include_bytes!("../../fixtures/sarif/bandit.sarif");
    let cut = &bytes[..bytes.len() / 2];
    assert!(matches!(parse(cut), Err(SarifError::NotJson(_))));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let depth = 100_000;
    let mut text = String::from(
        r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t"}},"results":[],"properties":{"x":"#,
    );
    text.push_str(&"[".repeat(depth));
    text.push_str(&"]".repeat(depth));
    text.push_str("}}]}");
    match parse(text.as_bytes()) {
        Err(SarifError::NotJson(m)) => assert!(m.contains("recursion limit"), "{m}"),
        other => panic!("{other:?}"),
    }
}

fn problems(runs: &str) -> Vec<(&'static str, String)> {
    parse(&log(runs))
        .unwrap()
        .problems
        .into_iter()
        .map(|p| (p.kind.code().as_str(), p.message))
        .collect()
}

#[test]
fn a_tool_that_failed_or_did_not_finish_is_a_problem() {
    let t = r#""tool":{"driver":{"name":"t"}}"#;
    assert_eq!(
        problems("[]"),
        [(
            "scan-incomplete",
            "\"runs\" is empty: the log records no tool run".to_string()
        )]
    );
    for results in [r#","results":null"#, ""] {
        let p = problems(&format!("[{{{t}{results}}}]"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "scan-incomplete");
        assert!(
            p[0].1
                .starts_with("run 0 (t): \"results\" is null or missing")
        );
    }
    let p = problems(&format!(
        r#"[{{{t},"results":[],"invocations":[
            {{"executionSuccessful":false,"exitCode":2}},
            {{"executionSuccessful":true,"toolExecutionNotifications":[{{"level":"error","message":{{"text":"parser crashed"}}}},{{"level":"warning","message":{{"text":"slow"}}}}],
              "toolConfigurationNotifications":[{{"level":"error","message":{{"text":"no such rule set"}}}}]}},
            {{"executionSuccessful":true,"exitSignalName":"SIGKILL"}},
            {{"exitCode":0}}]}}]"#
    ));
    let want = [
        (
            "scan-failed",
            "run 0 (t): invocation 0 says executionSuccessful: false (exit code 2)",
        ),
        (
            "scan-failed",
            "run 0 (t): invocation 1 reports a tool execution error: \"parser crashed\"",
        ),
        (
            "scan-failed",
            "run 0 (t): invocation 1 reports a tool configuration error: \"no such rule set\"",
        ),
        (
            "scan-failed",
            "run 0 (t): invocation 2 ended by a signal (killed by SIGKILL)",
        ),
        (
            "scan-incomplete",
            "run 0 (t): invocation 3 does not say whether it succeeded (executionSuccessful is required)",
        ),
    ];
    assert_eq!(p, want.map(|(c, m)| (c, m.to_string())), "{p:#?}");
    // A successful invocation with an exit code (scanners exit 1 when they find something)
    // is fine.
    assert_eq!(
        problems(&format!(
            r#"[{{{t},"results":[],"invocations":[{{"executionSuccessful":true,"exitCode":1}}]}}]"#
        )),
        []
    );
}

#[test]
fn rule_references_that_disagree_are_a_problem_and_count_both_rules() {
    let rules = r#""rules":[{"id":"CRIT","properties":{"security-severity":"9.9"}},{"id":"LOW","defaultConfiguration":{"level":"note"},"properties":{"security-severity":"1.0"}}]"#;
    let run = |results: &str| {
        format!(
            r#"[{{"tool":{{"driver":{{"name":"t",{rules}}},"extensions":[{{"name":"e"}}]}},"results":[{results}]}}]"#
        )
    };
    let cases = [
        (
            r#"{"ruleId":"CRIT","ruleIndex":1,"message":{"text":""}}"#,
            "ruleId \"CRIT\" does not name the rule its index points at (\"LOW\")",
        ),
        (
            r#"{"ruleId":"CRIT","rule":{"id":"LOW"},"message":{"text":""}}"#,
            "ruleId \"CRIT\" and rule.id \"LOW\" differ",
        ),
        (
            r#"{"ruleIndex":0,"rule":{"index":1},"message":{"text":""}}"#,
            "ruleIndex 0 and rule.index 1 differ",
        ),
        (
            r#"{"ruleId":"CRIT","ruleIndex":7,"message":{"text":""}}"#,
            "rule index 7 is past the 2 rules of \"t\"",
        ),
        (
            r#"{"ruleId":"CRIT","ruleIndex":-2,"message":{"text":""}}"#,
            "ruleIndex -2 is negative",
        ),
        (
            r#"{"rule":{"id":"CRIT","toolComponent":{"index":3}},"message":{"text":""}}"#,
            "rule.toolComponent.index 3 names no extension (the tool has 1)",
        ),
        (
            r#"{"rule":{"id":"CRIT","toolComponent":{"name":"x"}},"message":{"text":""}}"#,
            "rule.toolComponent.name \"x\" names no tool component",
        ),
    ];
    for (result, want) in cases {
        let r = parse(&log(&run(result))).unwrap();
        assert_eq!(r.problems.len(), 1, "{result}: {:?}", r.problems);
        let p = &r.problems[0];
        assert_eq!(p.kind, ProblemKind::RuleMismatch);
        assert_eq!(p.result, Some((0, 0)));
        assert!(p.message.ends_with(want), "{result}: {}", p.message);
        // The finding is still reported.
        assert_eq!(r.findings.len(), 1);
    }
    // Both rules named by a contradiction stay in view, with both default levels.
    let r = parse(&log(&run(cases[0].0))).unwrap();
    let f = &r.findings[0];
    assert_eq!(f.rule_id.as_deref(), Some("CRIT"));
    assert_eq!(f.rule_properties["security-severity"], "9.9");
    assert_eq!(f.other_rule_properties[0]["security-severity"], "1.0");
    assert_eq!(f.stated_levels, [Level::Note]);
    // Agreeing references, -1 for "no index", and a hierarchical rule id are fine.
    for ok in [
        r#"{"ruleId":"LOW","ruleIndex":1,"rule":{"id":"LOW","index":1},"message":{"text":""}}"#,
        r#"{"ruleId":"CRIT","ruleIndex":-1,"message":{"text":""}}"#,
        r#"{"ruleId":"CRIT/sub","ruleIndex":0,"message":{"text":""}}"#,
    ] {
        let r = parse(&log(&run(ok))).unwrap();
        assert_eq!(r.problems, [], "{ok}");
        assert!(r.findings[0].other_rule_properties.is_empty(), "{ok}");
    }
    let r = parse(&log(&run(r#"{"ruleId":"CRIT/sub","message":{"text":""}}"#))).unwrap();
    assert_eq!(r.findings[0].rule_properties["security-severity"], "9.9");
    // A rule declared twice cannot be looked up by id.
    let p = problems(
        r#"[{"tool":{"driver":{"name":"t","rules":[{"id":"R"},{"id":"R"}]}},"results":[]}]"#,
    );
    assert_eq!(
        p,
        [(
            "sarif-rule-mismatch",
            "run 0 (t): rule id \"R\" is declared twice in \"t\"".to_string()
        )]
    );
}

#[test]
fn kind_and_level_must_agree() {
    let run = |results: &str| {
        format!(
            r#"[{{"tool":{{"driver":{{"name":"t","rules":[{{"id":"R","defaultConfiguration":{{"level":"error"}}}}]}}}},"results":[{results}]}}]"#
        )
    };
    // A pass with level error is a finding, and a problem.
    let r = parse(&log(&run(
        r#"{"ruleId":"R","kind":"pass","level":"error","message":{"text":""}}"#,
    )))
    .unwrap();
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].level, Level::Error);
    assert_eq!(r.problems[0].kind, ProblemKind::KindInconsistent);
    assert!(
        r.problems[0].message.ends_with(
            "kind \"pass\" says there is no problem, but level \"error\" says there is one"
        ),
        "{:?}",
        r.problems
    );
    // An unknown kind is a finding, and a problem.
    let r = parse(&log(&run(
        r#"{"ruleId":"R","kind":"PASS","message":{"text":""}}"#,
    )))
    .unwrap();
    assert_eq!(
        (r.findings.len(), r.problems[0].kind),
        (1, ProblemKind::KindInconsistent)
    );
    // A pass without a level (or with none) is not a finding, whatever the rule's default.
    for ok in [
        r#"{"ruleId":"R","kind":"pass","message":{"text":""}}"#,
        r#"{"ruleId":"R","kind":"notApplicable","level":"none","message":{"text":""}}"#,
    ] {
        let r = parse(&log(&run(ok))).unwrap();
        assert_eq!((r.findings.len(), r.problems.len()), (0, 0), "{ok}");
    }
    // open and review are findings; the rule's level counts beside the result's.
    let r = parse(&log(&run(
        r#"{"ruleId":"R","kind":"review","level":"note","message":{"text":""}}"#,
    )))
    .unwrap();
    assert_eq!(r.problems, []);
    assert_eq!(r.findings[0].stated_levels, [Level::Note, Level::Error]);
}

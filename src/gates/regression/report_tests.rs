//! Unit tests of the strict JUnit reader (`report.rs`).

use super::*;

fn err(xml: &str) -> ReportError {
    read(xml.as_bytes()).unwrap_err()
}

fn outcomes(xml: &str) -> Vec<(String, CaseOutcome)> {
    let r = read(xml.as_bytes()).unwrap();
    let mut out = Vec::new();
    fn walk(s: &Suite, out: &mut Vec<(String, CaseOutcome)>) {
        out.extend(s.cases.iter().map(|c| (c.name.clone(), c.outcome)));
        s.suites.iter().for_each(|n| walk(n, out));
    }
    r.suites.iter().for_each(|s| walk(s, &mut out));
    out
}

#[test]
fn the_three_root_forms_read() {
    for xml in [
        r#"<testsuites><testsuite name="s"><testcase name="a"/></testsuite></testsuites>"#,
        r#"<testrun><testsuite name="s"><testcase name="a"/></testsuite></testrun>"#,
        r#"<?xml version="1.0" encoding="UTF-8"?><!-- c --><testsuite name="s"><testcase name="a"/></testsuite>
"#,
    ] {
        assert_eq!(outcomes(xml), [("a".into(), CaseOutcome::Passed)], "{xml}");
    }
}

#[test]
fn a_second_root_is_refused() {
    let e = err(r#"<testsuite name="a"/><testsuite name="b"><testcase name="x"/></testsuite>"#);
    assert_eq!(e.code(), "junit-unparsable");
    assert!(e.to_string().contains("after the root element"), "{e}");
    let e = err("<testsuite name=\"a\"/>\ntrailing");
    assert_eq!(e.to_string(), "line 2: text after the root element");
}

#[test]
fn unknown_elements_are_refused_wherever_they_are() {
    for (xml, what) in [
        (
            r#"<testsuite><group><testcase name="x"/></group></testsuite>"#,
            "unexpected element <group> in <testsuite>",
        ),
        (
            r#"<testsuites><testsuites/></testsuites>"#,
            "unexpected element <testsuites> in <testsuites>",
        ),
        (
            r#"<testsuite><testcase name="x"><x:failure/></testcase></testsuite>"#,
            "unexpected element <x:failure> in <testcase>",
        ),
        (
            r#"<testsuite><testcase name="x"><failure><b/></failure></testcase></testsuite>"#,
            "unexpected element <b> in <failure>",
        ),
        (
            r#"<report><testsuite/></report>"#,
            "the root element is <report>, not <testsuites>, <testsuite> or <testrun>",
        ),
    ] {
        assert_eq!(err(xml).to_string(), format!("line 1: {what}"));
    }
}

#[test]
fn dtds_and_unknown_entities_are_refused() {
    let e = err(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE t [<!ENTITY f \"<failure/>\">]>\n<testsuite><testcase name=\"a\">&f;</testcase></testsuite>",
    );
    assert_eq!(e, ReportError::Doctype { line: 2 });
    assert_eq!(e.code(), "junit-doctype");
    let e = err(r#"<testsuite><testcase name="a"><failure>&f;</failure></testcase></testsuite>"#);
    assert_eq!(
        e,
        ReportError::UnknownEntity {
            line: 1,
            name: "f".into()
        }
    );
    let e = err(r#"<testsuite name="&f;"/>"#);
    assert_eq!(e.code(), "junit-doctype");
    // The predefined ones and character references are fine where text is.
    let xml = r#"<testsuite name="a&amp;b"><testcase name="t"><failure message="&lt;&#65;">&gt;&#x41;&quot;</failure></testcase></testsuite>"#;
    assert_eq!(outcomes(xml), [("t".into(), CaseOutcome::Failed)]);
    // ... but not between structural elements.
    assert_eq!(
        err(r#"<testsuite>&amp;<testcase name="t"/></testsuite>"#).to_string(),
        "line 1: text in <testsuite>"
    );
}

#[test]
fn malformed_xml_and_missing_pieces_are_refused() {
    for xml in [
        "",
        "not xml",
        "<testsuite><testcase name=\"x\">",
        "<testsuite></testcase>",
        "<testsuite a=\"1\" a=\"2\"/>",
        "<testsuite><testcase/></testsuite>",
        "<testsuite failures=\"many\"/>",
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><testsuite/>",
    ] {
        assert_eq!(err(xml).code(), "junit-unparsable", "{xml:?}");
    }
    assert!(
        read(b"\xef\xbb\xbf<testsuite/>").is_ok(),
        "a UTF-8 BOM is fine"
    );
    assert!(read(b"\xef\xbb\xbf<?xml version=\"1.0\"?><testsuite/>").is_ok());
    assert_eq!(err("\u{ff}").code(), "junit-unparsable");
    assert_eq!(
        read(b"<testsuite name=\"\xff\"/>").unwrap_err().code(),
        "junit-unparsable"
    );
}

#[test]
fn outcomes_follow_the_rerun_conventions() {
    let xml = r#"<testsuite>
      <testcase name="pass"/>
      <testcase name="fail"><failure/></testcase>
      <testcase name="err"><error>trace</error></testcase>
      <testcase name="skip"><skipped/></testcase>
      <testcase name="flaky"><flakyFailure><stackTrace>t</stackTrace></flakyFailure></testcase>
      <testcase name="rerun-only"><rerunFailure/></testcase>
      <testcase name="rerun-error-only"><rerunError/></testcase>
      <testcase name="rerun-with-failure"><failure/><rerunFailure/></testcase>
      <testcase name="skip-then-fail"><skipped/><failure/></testcase>
      <testcase name="flaky-and-rerun"><flakyFailure/><rerunError/></testcase>
    </testsuite>"#;
    use CaseOutcome::*;
    let got: Vec<_> = outcomes(xml).into_iter().map(|(_, o)| o).collect();
    assert_eq!(
        got,
        [
            Passed, Failed, Failed, Skipped, Flaky, Failed, Failed, Failed, Failed, Failed
        ]
    );
}

#[test]
fn nesting_is_bounded() {
    let deep = "<testsuite>".repeat(MAX_DEPTH + 1);
    assert!(err(&deep).to_string().contains("nested deeper"));
}

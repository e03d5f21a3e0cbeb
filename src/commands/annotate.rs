//! GitHub Actions workflow commands for configuration problems: `::error file=…,line=…,col=…,
//! title=…::message`, so that each problem shows on the line of the file it concerns.
//!
//! The runner reads workflow commands from a step's output; a value may not hold a newline,
//! and a property value may not hold `:` or `,`, so those are percent-encoded as GitHub's
//! toolkit does (`%25`, `%0D`, `%0A`, and `%3A`, `%2C` in properties).

use std::path::{Path, PathBuf};

use crate::config::Diagnostic;

/// The `::error` line for one problem. `workspace`: `GITHUB_WORKSPACE`, the repository root
/// that annotation paths are relative to.
pub fn error(d: &Diagnostic, workspace: Option<&Path>) -> String {
    let mut props = vec![format!("file={}", property(&file_name(&d.file, workspace)))];
    if d.line > 0 {
        props.push(format!("line={}", d.line));
        if d.column > 0 {
            props.push(format!("col={}", d.column));
        }
    }
    let title = if d.key_path.is_empty() {
        "relgate"
    } else {
        d.key_path.as_str()
    };
    props.push(format!("title={}", property(title)));
    let mut message = String::new();
    if !d.key_path.is_empty() {
        message.push_str(&d.key_path);
        message.push_str(": ");
    }
    message.push_str(&d.message);
    if let Some(help) = &d.help {
        message.push_str(" (");
        message.push_str(help);
        message.push(')');
    }
    format!("::error {}::{}", props.join(","), data(&message))
}

/// The file as GitHub names it: relative to the workspace when it lies inside.
fn file_name(file: &Path, workspace: Option<&Path>) -> String {
    let absolute = if file.is_absolute() {
        file.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(file))
            .unwrap_or_else(|_| file.to_path_buf())
    };
    let relative = workspace
        .and_then(|w| absolute.strip_prefix(w).ok())
        .map(Path::to_path_buf);
    let shown: PathBuf = relative.unwrap_or_else(|| file.to_path_buf());
    // `./pipeline.yaml` and `pipeline.yaml` are one file to GitHub only when written alike.
    let shown = shown
        .strip_prefix(".")
        .map(Path::to_path_buf)
        .unwrap_or(shown);
    shown.display().to_string()
}

fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(file: &str) -> Diagnostic {
        Diagnostic {
            file: PathBuf::from(file),
            line: 12,
            column: 5,
            key_path: "gates.unit-tests.timeout".into(),
            message: "expected a duration like 30m, found \"soon\"\n100%".into(),
            source_line: None,
            help: Some("did you mean `timeout`?".into()),
        }
    }

    #[test]
    fn a_problem_becomes_one_escaped_error_line() {
        assert_eq!(
            error(&diag("/w/ci/pipeline.yaml"), Some(Path::new("/w"))),
            "::error file=ci/pipeline.yaml,line=12,col=5,title=gates.unit-tests.timeout::gates.unit-tests.timeout: expected a duration like 30m, found \"soon\"%0A100%25 (did you mean `timeout`?)"
        );
    }

    #[test]
    fn properties_escape_colons_and_commas_and_files_outside_stay_as_given() {
        let mut d = diag("/elsewhere/a,b:c.yaml");
        d.line = 0;
        assert!(error(&d, Some(Path::new("/w"))).starts_with(
            "::error file=/elsewhere/a%2Cb%3Ac.yaml,title=gates.unit-tests.timeout::"
        ));
    }
}

//! Verdicts and reasons, with stable kebab-case codes (listed in docs/diagnostics.md): what a
//! gate's judge returns and the release log records. Below the gates and the log, which both
//! use them; `crate::gates` re-exports them.

use serde::{Deserialize, Serialize};

pub mod codes;

pub use codes::Code;

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Green,
    Red,
    /// Only sign-offs: nothing is wrong, but approvals are still awaited.
    Pending,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reason {
    /// Stable kebab-case code, e.g. `command-failed`, `virus-found`.
    pub code: String,
    /// One line for humans.
    pub message: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub reasons: Vec<Reason>,
}

impl Verdict {
    pub fn green() -> Self {
        Verdict {
            outcome: Outcome::Green,
            reasons: Vec::new(),
        }
    }

    pub fn red(code: Code, message: impl Into<String>) -> Self {
        Verdict {
            outcome: Outcome::Red,
            reasons: vec![Reason {
                code: code.as_str().to_string(),
                message: message.into(),
            }],
        }
    }

    /// Red when any reason was given, green otherwise.
    pub fn from_reasons(reasons: Vec<Reason>) -> Self {
        let outcome = if reasons.is_empty() {
            Outcome::Green
        } else {
            Outcome::Red
        };
        Verdict { outcome, reasons }
    }

    pub fn is_green(&self) -> bool {
        self.outcome == Outcome::Green
    }
}

impl Reason {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Reason {
            code: code.as_str().to_string(),
            message: message.into(),
        }
    }
}

//! Notifications: the people and systems around a release hear about it without polling — the
//! QA lead that a sign-off is awaited (who may sign, the subject, the exact approve command),
//! the team that it was refused (the red gates and their first reasons), the download site that
//! it was published (where, the subject, the report).
//!
//! A notification reports a decision the log already holds; it never makes one. Whatever
//! happens to it — a dead endpoint, a 500, a missing secret — the verdicts and the exit code
//! stand; the outcome is shown and recorded in the log as a `notification` line
//! (docs/log-format.md). Bodies are relgate's JSON document or Slack's `{"text": …}`
//! ([`Message::json`], [`Message::slack`]); delivery, signing and retries are in [`deliver`].

mod deliver;

use serde::Serialize;

pub use deliver::{Delivery, deliver_all};

use crate::model::NotifyEvent;

/// What a notification says: the same facts in every format.
#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub event: &'static str,
    pub project: String,
    pub version: String,
    pub run: u32,
    /// `sha256:` over `SHA256SUMS`: what was gated.
    pub subject: String,
    /// The run's decision and exit code (a notification never changes either).
    pub decision: String,
    pub exit_code: i32,
    pub operator: Option<String>,
    /// `published`: where the release is, and its report.
    pub location: Option<String>,
    pub report: Option<String>,
    /// `pending`: each sign-off awaited, who may give it and the command that does.
    pub awaiting: Vec<Awaiting>,
    /// `refused`: each gate that is not green and its first reason.
    pub not_green: Vec<NotGreen>,
    /// Why the run ended as it did when no gate says so (a failed publish).
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Awaiting {
    pub gate: String,
    pub may_sign: Vec<String>,
    pub approve: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct NotGreen {
    pub gate: String,
    pub state: String,
    pub code: Option<String>,
    pub reason: Option<String>,
}

/// The facts of one run's outcome, as the engine has them when it decided.
pub struct RunFacts<'a> {
    pub project: &'a str,
    pub version: &'a str,
    pub run: u32,
    pub subject: &'a str,
    pub decision: crate::log::Decision,
    pub exit_code: i32,
    pub operator: Option<&'a str>,
    /// Where the release was put, as the destination names itself.
    pub published: Option<&'a str>,
    pub message: Option<&'a str>,
    /// Every gate of the run, in pipeline order.
    pub gates: &'a [&'a crate::engine::GateSummary],
}

impl Message {
    /// What to tell about `event` for this run.
    pub fn for_run(event: NotifyEvent, r: &RunFacts<'_>) -> Message {
        use crate::engine::GateState;
        let decision = serde_json::to_value(r.decision)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let awaiting = r
            .gates
            .iter()
            .filter(|g| matches!(g.state, GateState::Pending { .. }))
            .filter_map(|g| {
                let who = g.may_still_sign.clone()?;
                Some(Awaiting {
                    approve: format!(
                        "relgate approve {} --gate {} --key KEY --as PRINCIPAL --subject {}",
                        r.version, g.id, r.subject
                    ),
                    gate: g.id.clone(),
                    may_sign: who,
                })
            })
            .collect();
        let not_green = r
            .gates
            .iter()
            .filter(|g| !g.state.satisfies_needs())
            .filter(|g| event != NotifyEvent::Refused || !g.state.awaits_signoff())
            .map(|g| {
                let first = match &g.state {
                    GateState::Red { reasons } | GateState::Pending { reasons } => {
                        reasons.first().map(|x| (x.code.clone(), x.message.clone()))
                    }
                    GateState::Blocked { waiting_on } | GateState::Waiting { waiting_on } => {
                        Some((
                            "needs-not-green".to_string(),
                            format!("waiting on {}", waiting_on.join(", ")),
                        ))
                    }
                    GateState::Aborted => {
                        Some(("interrupted".into(), "the run was stopped".into()))
                    }
                    GateState::Green { .. } | GateState::Skipped { .. } => None,
                };
                NotGreen {
                    gate: g.id.clone(),
                    state: g.state.label().to_string(),
                    code: first.as_ref().map(|f| f.0.clone()),
                    reason: first.map(|f| f.1),
                }
            })
            .collect();
        Message {
            event: event.name(),
            project: r.project.to_string(),
            version: r.version.to_string(),
            run: r.run,
            subject: r.subject.to_string(),
            decision,
            exit_code: r.exit_code,
            operator: r.operator.map(str::to_string),
            location: r.published.map(str::to_string),
            report: r.published.map(|to| {
                format!(
                    "{}/{}/{}",
                    to.trim_end_matches('/'),
                    crate::layout::AUDIT_DIR,
                    crate::audit::REPORT_FILE
                )
            }),
            awaiting,
            not_green,
            message: r.message.map(str::to_string),
        }
    }
}

/// Which event a run's decision is, if any: a dry run and an interrupted run tell nobody.
pub fn event_of(decision: crate::log::Decision, dry_run: bool) -> Option<NotifyEvent> {
    use crate::log::Decision;
    match decision {
        _ if dry_run => None,
        Decision::Pending => Some(NotifyEvent::Pending),
        Decision::Refused => Some(NotifyEvent::Refused),
        Decision::Published => Some(NotifyEvent::Published),
        Decision::DryRun | Decision::Aborted => None,
    }
}

impl Message {
    /// The generic body: this document as JSON, plus when it was sent and a delivery id a
    /// receiver can use to drop a repeat (both covered by the signature).
    pub fn json(&self, sent_at: &str, delivery: &str) -> Vec<u8> {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("sent_at".into(), sent_at.into());
            o.insert("delivery".into(), delivery.into());
            o.insert("relgate".into(), env!("CARGO_PKG_VERSION").into());
        }
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// Slack's incoming-webhook body: `{"text": …}` in mrkdwn.
    pub fn slack(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "text": self.slack_text() })).unwrap_or_default()
    }

    fn slack_text(&self) -> String {
        let name = format!("*{} {}*", slack(&self.project), slack(&self.version));
        let subject = format!("`{}`", slack(&self.subject));
        let mut lines = Vec::new();
        match self.event {
            "pending" => {
                lines.push(format!(
                    ":hourglass: {name} awaits sign-off (run {}, subject {subject})",
                    self.run
                ));
                for a in &self.awaiting {
                    let who = if a.may_sign.is_empty() {
                        "nobody eligible is left".to_string()
                    } else {
                        slack(&a.may_sign.join(", "))
                    };
                    lines.push(format!("• `{}`: may sign: {who}", slack(&a.gate)));
                    lines.push(format!("  `{}`", slack(&a.approve)));
                }
            }
            "refused" => {
                lines.push(format!(
                    ":x: {name} was refused (run {}, subject {subject})",
                    self.run
                ));
                for g in &self.not_green {
                    let why = match (&g.code, &g.reason) {
                        (Some(c), Some(r)) => format!(": {}: {}", slack(c), slack(r)),
                        _ => String::new(),
                    };
                    lines.push(format!("• `{}` {}{why}", slack(&g.gate), slack(&g.state)));
                }
            }
            _ => {
                lines.push(format!(
                    ":white_check_mark: {name} was published{} (run {}, subject {subject})",
                    self.location
                        .as_deref()
                        .map(|l| format!(" to {}", slack(l)))
                        .unwrap_or_default(),
                    self.run
                ));
                if let Some(r) = &self.report {
                    lines.push(format!("report: {}", slack(r)));
                }
            }
        }
        if let Some(m) = &self.message {
            lines.push(slack(m));
        }
        lines.join("\n")
    }
}

/// Text for Slack's mrkdwn: its three control characters escaped as it asks (`&amp;`, `&lt;`,
/// `&gt;`: `<…>` would otherwise make a link or a mention), controls and bidirectional
/// characters shown as escapes, a backtick made harmless (it would end a code span).
fn slack(text: &str) -> String {
    crate::report::printable(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(event: &'static str) -> Message {
        Message {
            event,
            project: "acme".into(),
            version: "1.0.0".into(),
            run: 2,
            subject: "sha256:ab".into(),
            decision: event.into(),
            exit_code: 1,
            operator: None,
            location: None,
            report: None,
            awaiting: Vec::new(),
            not_green: vec![NotGreen {
                gate: "unit-tests".into(),
                state: "red".into(),
                code: Some("command-failed".into()),
                reason: Some("<!channel> `x` \u{202e}".into()),
            }],
            message: None,
        }
    }

    #[test]
    fn slack_text_cannot_mention_link_or_reorder() {
        let body: serde_json::Value =
            serde_json::from_slice(&message("refused").slack()).expect("json");
        let text = body["text"].as_str().expect("text");
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
        assert!(!text.contains('\u{202e}'), "{text}");
        assert!(text.contains("'x'"), "{text}");
    }

    #[test]
    fn json_body_holds_the_facts_and_when() {
        let body: serde_json::Value =
            serde_json::from_slice(&message("refused").json("2026-01-01T00:00:00Z", "d1"))
                .expect("json");
        assert_eq!(body["event"], "refused");
        assert_eq!(body["not_green"][0]["gate"], "unit-tests");
        assert_eq!(body["delivery"], "d1");
    }
}

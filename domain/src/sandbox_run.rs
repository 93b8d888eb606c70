//! Runs of the code sandbox, kept as audit records. The sandbox service reports every run
//! over NATS (`<prefix>.audit.sandbox`, sandbox/src/audit.rs); the control plane records
//! each report once, as the one event of a `SandboxRun` aggregate keyed by the report's id.
//! A repeated report (a re-delivery, a re-publish) changes nothing; a different report under
//! an id already used is refused.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// Outcomes a report may carry (sandbox/src/audit.rs).
pub const OUTCOMES: [&str; 5] = ["ok", "exit_nonzero", "timeout", "oom", "error"];

/// One run as the sandbox reported it. Unknown fields of the report are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRunReport {
    pub id: String,
    /// When the run ended (RFC 3339, from the sandbox's clock).
    pub at: String,
    /// The caller's username and role, from the token the sandbox verified.
    pub who: String,
    pub role: String,
    pub language: String,
    pub code_sha256: String,
    pub code_bytes: u64,
    /// Only when the sandbox is configured to include it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub duration_ms: u64,
    pub exit_code: Option<i64>,
    pub timed_out: bool,
    pub oom_killed: bool,
    pub truncated: bool,
    pub outcome: String,
    pub instance: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum SandboxRunEvent {
    SandboxCodeExecuted(SandboxRunReport),
}

impl DomainEvent for SandboxRunEvent {
    fn event_type(&self) -> String {
        "SandboxCodeExecuted".into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxRunCommand {
    Record(SandboxRunReport),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxRunError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("run {0} is already recorded with different content")]
    Conflict(String),
}

/// Whether the command recorded the run (false: it was recorded before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded(pub bool);

/// A recorded run (none until its report arrives).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRun {
    pub report: Option<SandboxRunReport>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> SandboxRunError {
    SandboxRunError::Invalid {
        field,
        message: message.into(),
    }
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), SandboxRunError> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("must be at most {max} printable characters"),
        ));
    }
    Ok(())
}

/// Checks a report before it becomes an event: a malformed one is refused, not stored.
pub fn validate_report(report: &SandboxRunReport) -> Result<(), SandboxRunError> {
    let id_ok = !report.id.is_empty()
        && report.id.len() <= 64
        && report
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(invalid("id", "must be 1-64 characters of [A-Za-z0-9_-]"));
    }
    if chrono::DateTime::parse_from_rfc3339(&report.at).is_err() {
        return Err(invalid("at", "must be an RFC 3339 time"));
    }
    check_text("who", &report.who, 256)?;
    check_text("role", &report.role, 64)?;
    check_text("language", &report.language, 64)?;
    check_text("instance", &report.instance, 128)?;
    if report.code_sha256.len() != 64 || !report.code_sha256.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(invalid("code_sha256", "must be 64 hexadecimal digits"));
    }
    if !OUTCOMES.contains(&report.outcome.as_str()) {
        return Err(invalid(
            "outcome",
            format!("must be one of {}", OUTCOMES.join(", ")),
        ));
    }
    Ok(())
}

impl SandboxRun {
    /// Records the report once; the same report again records nothing.
    pub fn decide(
        &self,
        command: SandboxRunCommand,
    ) -> Result<(Vec<SandboxRunEvent>, Recorded), SandboxRunError> {
        let SandboxRunCommand::Record(report) = command;
        validate_report(&report)?;
        match &self.report {
            None => Ok((
                vec![SandboxRunEvent::SandboxCodeExecuted(report)],
                Recorded(true),
            )),
            Some(recorded) if *recorded == report => Ok((vec![], Recorded(false))),
            Some(_) => Err(SandboxRunError::Conflict(report.id)),
        }
    }
}

impl Aggregate for SandboxRun {
    const TYPE: &'static str = "SandboxRun";
    type Command = SandboxRunCommand;
    type Event = SandboxRunEvent;
    type Error = SandboxRunError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let (events, _) = self.decide(command)?;
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let SandboxRunEvent::SandboxCodeExecuted(report) = event;
        self.report = Some(report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> SandboxRunReport {
        SandboxRunReport {
            id: "0193a0b2-7c1d-7e55-9a10-1234567890ab".into(),
            at: "2026-11-27T12:00:00+00:00".into(),
            who: "alice".into(),
            role: "developer".into(),
            language: "python".into(),
            code_sha256: "a".repeat(64),
            code_bytes: 14,
            code: None,
            duration_ms: 412,
            exit_code: Some(0),
            timed_out: false,
            oom_killed: false,
            truncated: false,
            outcome: "ok".into(),
            instance: "default".into(),
        }
    }

    #[test]
    fn given_nothing_when_a_report_arrives_then_it_is_recorded() {
        let (events, reply) = SandboxRun::default()
            .decide(SandboxRunCommand::Record(report()))
            .unwrap();
        assert_eq!(events, vec![SandboxRunEvent::SandboxCodeExecuted(report())]);
        assert_eq!(reply, Recorded(true));
    }

    #[test]
    fn given_a_recorded_run_when_the_same_report_arrives_again_then_nothing_changes() {
        let mut run = SandboxRun::default();
        run.apply(SandboxRunEvent::SandboxCodeExecuted(report()));
        let (events, reply) = run.decide(SandboxRunCommand::Record(report())).unwrap();
        assert!(events.is_empty());
        assert_eq!(reply, Recorded(false));
    }

    #[test]
    fn given_a_recorded_run_when_a_different_report_uses_its_id_then_it_is_refused() {
        let mut run = SandboxRun::default();
        run.apply(SandboxRunEvent::SandboxCodeExecuted(report()));
        let mut other = report();
        other.exit_code = Some(1);
        assert!(matches!(
            run.decide(SandboxRunCommand::Record(other)),
            Err(SandboxRunError::Conflict(_))
        ));
    }

    type Spoil = Box<dyn Fn(&mut SandboxRunReport)>;

    #[test]
    fn malformed_reports_are_refused_naming_the_field() {
        let cases: Vec<(&str, Spoil)> = vec![
            ("id", Box::new(|r| r.id = "a b".into())),
            ("at", Box::new(|r| r.at = "yesterday".into())),
            ("who", Box::new(|r| r.who = " ".into())),
            ("code_sha256", Box::new(|r| r.code_sha256 = "xyz".into())),
            ("outcome", Box::new(|r| r.outcome = "fine".into())),
            ("language", Box::new(|r| r.language = "py\u{0}".into())),
        ];
        for (field, spoil) in cases {
            let mut bad = report();
            spoil(&mut bad);
            match SandboxRun::default().decide(SandboxRunCommand::Record(bad)) {
                Err(SandboxRunError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_event_is_stored_flat_with_its_type() {
        let json = serde_json::to_value(SandboxRunEvent::SandboxCodeExecuted(report())).unwrap();
        assert_eq!(json["type"], "SandboxCodeExecuted");
        assert_eq!(json["who"], "alice");
        let back: SandboxRunEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, SandboxRunEvent::SandboxCodeExecuted(report()));
    }

    #[test]
    fn a_report_as_the_sandbox_sends_it_parses() {
        // sandbox/src/audit.rs adds event_type, event_version and may omit `code`.
        let text = r#"{"event_type":"SandboxCodeExecuted","event_version":1,"id":"r1","at":"2026-11-27T12:00:00+00:00","who":"alice","role":"developer","language":"python","code_sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","code_bytes":14,"duration_ms":412,"exit_code":null,"timed_out":true,"oom_killed":false,"truncated":false,"outcome":"timeout","instance":"default"}"#;
        let parsed: SandboxRunReport = serde_json::from_str(text).unwrap();
        assert_eq!(parsed.exit_code, None);
        assert!(validate_report(&parsed).is_ok());
    }
}

//! The JSON Lines approver, for tools (DESIGN.md, "Contracts other tools rely on").
//!
//! Stdout: `{"event":"approval_requested",...}` for each approval and
//! `{"event":"approval_decided","id":...,"decision":"approved"|"denied"|"expired"}` once it ends,
//! whichever channel decided it; `{"event":"error","id":...,"message":...}` for input it refused.
//! Stdin: `{"approve":"ID"}` (optionally `"remember"`, `"scopes"` and, for an action, `"uses"`
//! and `"any_arguments": true`: a remembered MCP tool call covers the tool with any arguments)
//! or `{"deny":"ID"}`, one per line. End of stdin does not stop the server: approvals then wait for another channel or expire.

use gatehouse_core::approvals::{ApprovalView, Broker, Decision, Remember};
use gatehouse_core::clock::rfc3339;
use gatehouse_core::store::approvals::ApprovalStatus;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::watch::{ApprovalWatch, Update};
use crate::output::Output;

/// The channel name recorded in the audit log for decisions made here.
pub const CHANNEL: &str = "jsonl";

/// A decision read from stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub id: String,
    pub decision: Decision,
    /// How many times the token for an approved action may be used (`"uses": N`, N >= 1);
    /// `None` leaves it to the server's default.
    pub uses: Option<u32>,
}

/// A line that is not a decision, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The approval it was about, when that much could be read.
    pub id: Option<String>,
    pub message: String,
}

const SHAPE: &str =
    r#"send {"approve":"ID"} (optionally with "remember", "scopes" and "uses") or {"deny":"ID"}"#;

/// Parses one stdin line. Unknown keys are refused rather than ignored: a misspelt `"scopes"`
/// would otherwise silently grant every requested scope.
pub fn parse_line(line: &str) -> Result<Command, BadLine> {
    let bad = |id: Option<&str>, message: String| BadLine {
        id: id.map(str::to_owned),
        message,
    };
    let value: Value = serde_json::from_str(line)
        .map_err(|e| bad(None, format!("not valid JSON ({e}); {SHAPE}")))?;
    let Value::Object(obj) = value else {
        return Err(bad(None, format!("expected a JSON object; {SHAPE}")));
    };
    let id_of = |key: &str| obj.get(key).and_then(Value::as_str);
    let (approve, deny) = (obj.get("approve"), obj.get("deny"));
    let id = id_of("approve").or(id_of("deny"));
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "approve" | "deny" | "remember" | "scopes" | "uses" | "any_arguments"
        ) {
            return Err(bad(id, format!("unknown key {key:?}; {SHAPE}")));
        }
    }
    match (approve, deny) {
        (Some(_), Some(_)) => Err(bad(id, "a line cannot both approve and deny".into())),
        (None, None) => Err(bad(None, format!("no decision in this line; {SHAPE}"))),
        (None, Some(deny)) => {
            let id = approval_id(deny, "deny")?;
            if ["remember", "scopes", "uses", "any_arguments"]
                .iter()
                .any(|k| obj.contains_key(*k))
            {
                return Err(bad(
                    Some(&id),
                    r#"a denial is never remembered and grants no scopes or uses; send {"deny":"ID"}"#
                        .into(),
                ));
            }
            Ok(Command {
                id,
                decision: Decision::deny(),
                uses: None,
            })
        }
        (Some(approve), None) => {
            let id = approval_id(approve, "approve")?;
            let remember = parse_remember(&obj).map_err(|m| bad(Some(&id), m))?;
            let scopes = parse_scopes(&obj).map_err(|m| bad(Some(&id), m))?;
            let uses = parse_uses(&obj).map_err(|m| bad(Some(&id), m))?;
            let broader = match obj.get("any_arguments") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(bad(
                        Some(&id),
                        "\"any_arguments\" must be true or false".into(),
                    ));
                }
            };
            Ok(Command {
                id,
                decision: Decision {
                    scopes,
                    remember,
                    broader,
                    ..Decision::approve()
                },
                uses,
            })
        }
    }
}

fn approval_id(v: &Value, key: &str) -> Result<String, BadLine> {
    match v.as_str() {
        Some(id) if !id.is_empty() => Ok(id.to_owned()),
        _ => Err(BadLine {
            id: None,
            message: format!("\"{key}\" must be the approval's id, a non-empty string"),
        }),
    }
}

fn parse_remember(obj: &Map<String, Value>) -> Result<Remember, String> {
    let choices = || {
        Remember::ALL
            .iter()
            .map(|r| format!("{:?}", r.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match obj.get("remember") {
        None | Some(Value::Null) => Ok(Remember::Once),
        Some(Value::String(s)) => {
            Remember::parse(s).ok_or_else(|| format!("\"remember\" must be one of {}", choices()))
        }
        Some(_) => Err(format!("\"remember\" must be one of {}", choices())),
    }
}

fn parse_scopes(obj: &Map<String, Value>) -> Result<Option<Vec<String>>, String> {
    let wrong = || "\"scopes\" must be an array of scope strings, e.g. [\"mail.read\"]".to_owned();
    match obj.get("scopes") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(wrong()),
    }
}

/// The most uses a person can allow one action token (it lives at most minutes anyway).
pub const MAX_USES: u32 = 1000;

fn parse_uses(obj: &Map<String, Value>) -> Result<Option<u32>, String> {
    let wrong = || format!("\"uses\" must be a whole number from 1 to {MAX_USES}");
    match obj.get("uses") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n @ 1..) if n <= u64::from(MAX_USES) => Ok(Some(n as u32)),
            _ => Err(wrong()),
        },
        Some(_) => Err(wrong()),
    }
}

/// `approval_requested`, with the contract's fields plus `redirect_host` and `verified`.
/// A struct rather than `json!` so `event` comes first and the field order never changes.
#[derive(Debug, Serialize)]
pub struct Requested<'a> {
    event: &'static str,
    id: &'a str,
    kind: &'a str,
    client_id: &'a str,
    client_name: Option<&'a str>,
    verified: bool,
    redirect_host: Option<&'a str>,
    scopes: &'a [String],
    resources: &'a [String],
    authorization_details: Option<&'a Value>,
    binding_message: Option<&'a str>,
    /// `ciba` or `device` for an action; null for consent.
    via: Option<&'a str>,
    user_code: Option<&'a str>,
    /// Plain-language lines describing what is asked.
    summary: &'a [String],
    warnings: &'a [String],
    expires_at: String,
}

pub fn requested(v: &ApprovalView) -> Requested<'_> {
    Requested {
        event: "approval_requested",
        id: &v.id,
        kind: &v.kind,
        client_id: &v.client_id,
        client_name: v.client_name.as_deref(),
        verified: v.verified,
        redirect_host: v.redirect_host.as_deref(),
        scopes: &v.scopes,
        resources: &v.resources,
        authorization_details: v.authorization_details.as_ref(),
        binding_message: v.binding_message.as_deref(),
        via: v.via.as_deref(),
        user_code: v.user_code.as_deref(),
        summary: &v.summary,
        warnings: &v.warnings,
        expires_at: rfc3339(v.expires_at),
    }
}

/// `approval_decided`. Only built with a final status.
#[derive(Debug, Serialize)]
pub struct Decided<'a> {
    event: &'static str,
    id: &'a str,
    decision: &'static str,
}

pub fn decided(id: &str, status: ApprovalStatus) -> Decided<'_> {
    Decided {
        event: "approval_decided",
        id,
        decision: status.as_str(),
    }
}

/// `error`, for a line that was refused or a decision the broker would not take.
#[derive(Debug, Serialize)]
pub struct Error<'a> {
    event: &'static str,
    id: Option<&'a str>,
    message: &'a str,
}

pub fn error<'a>(id: Option<&'a str>, message: &'a str) -> Error<'a> {
    Error {
        event: "error",
        id,
        message,
    }
}

/// Runs until the broker goes away. Decisions are taken one at a time, in the order they arrive.
pub async fn run(
    mut watch: ApprovalWatch,
    broker: Broker,
    out: Output,
    mut lines: mpsc::Receiver<String>,
) {
    let mut stdin_open = true;
    loop {
        tokio::select! {
            update = watch.next() => match update {
                Some(Update::Requested(view)) => out.json_line(&requested(&view)),
                Some(Update::Decided { id, status }) => out.json_line(&decided(&id, status)),
                None => return,
            },
            line = lines.recv(), if stdin_open => match line {
                Some(line) if line.trim().is_empty() => {}
                Some(line) => handle_line(&broker, &out, &line).await,
                None => {
                    stdin_open = false;
                    tracing::info!("stdin closed; still serving, approvals now wait until they expire");
                }
            },
        }
    }
}

async fn handle_line(broker: &Broker, out: &Output, line: &str) {
    let cmd = match parse_line(line) {
        Ok(cmd) => cmd,
        Err(bad) => {
            out.json_line(&error(bad.id.as_deref(), &bad.message));
            return;
        }
    };
    let decision = Decision {
        uses: cmd.uses,
        ..cmd.decision
    };
    // Success is reported by the watch as `approval_decided`, the same way as any other channel's.
    if let Err(e) = broker.decide(&cmd.id, decision, CHANNEL).await {
        out.json_line(&error(Some(&cmd.id), &e.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approve_defaults_to_once_and_all_scopes() {
        assert_eq!(
            parse_line(r#"{"approve":"apr_1"}"#),
            Ok(Command {
                id: "apr_1".into(),
                decision: Decision::approve(),
                uses: None,
            })
        );
    }

    #[test]
    fn approve_with_remember_and_fewer_scopes() {
        let cmd = parse_line(r#"{"approve":"apr_1","remember":"8h","scopes":["a","b"]}"#).unwrap();
        assert_eq!(cmd.decision.remember, Remember::EightHours);
        assert_eq!(cmd.decision.scopes, Some(vec!["a".into(), "b".into()]));
        let none = parse_line(r#"{"approve":"apr_1","scopes":[]}"#).unwrap();
        assert_eq!(none.decision.scopes, Some(vec![]));
    }

    #[test]
    fn approve_any_arguments() {
        let cmd =
            parse_line(r#"{"approve":"apr_1","remember":"1h","any_arguments":true}"#).unwrap();
        assert!(cmd.decision.broader);
        assert_eq!(cmd.decision.remember, Remember::OneHour);
        for off in [
            r#"{"approve":"apr_1"}"#,
            r#"{"approve":"apr_1","any_arguments":false}"#,
            r#"{"approve":"apr_1","any_arguments":null}"#,
        ] {
            assert!(!parse_line(off).unwrap().decision.broader, "{off}");
        }
        let e = parse_line(r#"{"approve":"apr_1","any_arguments":"yes"}"#).unwrap_err();
        assert!(e.message.contains("any_arguments"), "{}", e.message);
        let e = parse_line(r#"{"deny":"apr_1","any_arguments":true}"#).unwrap_err();
        assert_eq!(e.id.as_deref(), Some("apr_1"));
    }

    #[test]
    fn approve_with_uses() {
        let cmd = parse_line(r#"{"approve":"apr_1","uses":1}"#).unwrap();
        assert_eq!(cmd.uses, Some(1));
        assert_eq!(cmd.decision, Decision::approve());
        let cmd = parse_line(r#"{"approve":"apr_1","uses":null,"remember":"1h"}"#).unwrap();
        assert_eq!(cmd.uses, None);
        assert_eq!(
            parse_line(r#"{"approve":"apr_1","uses":1000}"#)
                .unwrap()
                .uses,
            Some(MAX_USES)
        );
        for bad in [
            r#"{"approve":"apr_1","uses":0}"#,
            r#"{"approve":"apr_1","uses":-1}"#,
            r#"{"approve":"apr_1","uses":1.5}"#,
            r#"{"approve":"apr_1","uses":"1"}"#,
            r#"{"approve":"apr_1","uses":1001}"#,
        ] {
            let e = parse_line(bad).unwrap_err();
            assert_eq!(e.id.as_deref(), Some("apr_1"), "{bad}");
            assert!(
                e.message.contains("\"uses\" must be"),
                "{bad}: {}",
                e.message
            );
        }
        let e = parse_line(r#"{"deny":"apr_1","uses":1}"#).unwrap_err();
        assert!(e.message.contains("denial"), "{}", e.message);
    }

    #[test]
    fn deny() {
        assert_eq!(
            parse_line(r#" {"deny":"apr_2"} "#),
            Ok(Command {
                id: "apr_2".into(),
                decision: Decision::deny(),
                uses: None,
            })
        );
    }

    #[test]
    fn bad_lines_say_why_and_keep_the_id() {
        let e = parse_line("approve apr_1").unwrap_err();
        assert_eq!(e.id, None);
        assert!(e.message.contains("not valid JSON"), "{}", e.message);

        let e = parse_line(r#"["apr_1"]"#).unwrap_err();
        assert!(e.message.contains("JSON object"));

        let e = parse_line(r#"{"approve":"apr_1","remember":"forever"}"#).unwrap_err();
        assert_eq!(e.id.as_deref(), Some("apr_1"));
        assert!(e.message.contains("\"always\""), "{}", e.message);

        let e = parse_line(r#"{"approve":"apr_1","scope":["a"]}"#).unwrap_err();
        assert_eq!(e.id.as_deref(), Some("apr_1"));
        assert!(e.message.contains("unknown key \"scope\""), "{}", e.message);

        let e = parse_line(r#"{"approve":"apr_1","scopes":"a b"}"#).unwrap_err();
        assert!(e.message.contains("array"));

        let e = parse_line(r#"{"approve":"apr_1","deny":"apr_1"}"#).unwrap_err();
        assert!(e.message.contains("both"));

        let e = parse_line(r#"{"deny":"apr_1","remember":"always"}"#).unwrap_err();
        assert_eq!(e.id.as_deref(), Some("apr_1"));

        assert!(parse_line(r#"{"approve":""}"#).is_err());
        assert!(parse_line(r#"{"approve":7}"#).is_err());
        assert!(parse_line(r#"{}"#).is_err());
    }

    #[test]
    fn requested_has_every_contract_field() {
        let v = ApprovalView {
            id: "apr_1".into(),
            kind: "consent".into(),
            client_id: "agt_1".into(),
            client_name: None,
            verified: false,
            redirect_host: Some("127.0.0.1".into()),
            scopes: vec!["read".into()],
            resources: vec!["https://api.example/".into()],
            authorization_details: None,
            binding_message: None,
            via: None,
            user_code: None,
            summary: Vec::new(),
            warnings: Vec::new(),
            created_at: 0,
            expires_at: 1_796_074_800_123,
        };
        let line = serde_json::to_string(&requested(&v)).unwrap();
        assert!(
            line.starts_with(r#"{"event":"approval_requested","id":"apr_1","#),
            "{line}"
        );
        let j: Value = serde_json::from_str(&line).unwrap();
        for key in [
            "id",
            "kind",
            "client_id",
            "client_name",
            "scopes",
            "resources",
            "authorization_details",
            "binding_message",
            "expires_at",
            "redirect_host",
            "verified",
            "via",
            "user_code",
            "summary",
            "warnings",
        ] {
            assert!(j.get(key).is_some(), "missing {key}");
        }
        assert_eq!(j["event"], "approval_requested");
        assert_eq!(j["expires_at"], "2026-11-30T21:40:00.123Z");
        assert_eq!(j["client_name"], Value::Null);
        assert_eq!(j["summary"], serde_json::json!([]));
    }

    #[test]
    fn an_action_line_carries_what_the_person_is_asked() {
        let details =
            serde_json::json!([{"type":"message_send","recipients":["alex@contractor.example"]}]);
        let v = ApprovalView {
            id: "apr_2".into(),
            kind: "action".into(),
            client_id: "agt_1".into(),
            client_name: Some("Demo agent".into()),
            verified: false,
            redirect_host: None,
            scopes: vec![],
            resources: vec![],
            authorization_details: Some(details.clone()),
            binding_message: Some("Send Q3 budget deck to Alex".into()),
            via: Some("ciba".into()),
            user_code: None,
            summary: vec!["Send an email to alex@contractor.example".into()],
            warnings: vec!["alex@contractor.example is outside your domains".into()],
            created_at: 0,
            expires_at: 0,
        };
        let j: Value = serde_json::to_value(requested(&v)).unwrap();
        assert_eq!(j["kind"], "action");
        assert_eq!(j["via"], "ciba");
        assert_eq!(j["user_code"], Value::Null);
        assert_eq!(j["authorization_details"], details);
        assert_eq!(j["binding_message"], "Send Q3 budget deck to Alex");
        assert_eq!(j["summary"][0], "Send an email to alex@contractor.example");
        assert_eq!(
            j["warnings"][0],
            "alex@contractor.example is outside your domains"
        );
    }

    #[test]
    fn decided_and_error_lines() {
        assert_eq!(
            serde_json::to_string(&decided("apr_1", ApprovalStatus::Expired)).unwrap(),
            r#"{"event":"approval_decided","id":"apr_1","decision":"expired"}"#
        );
        assert_eq!(
            serde_json::to_string(&error(None, "nope")).unwrap(),
            r#"{"event":"error","id":null,"message":"nope"}"#
        );
    }
}

//! `gatehouse approvals`: what agents asked the person, newest first, and what became of it.

use std::path::Path;

use anyhow::{Context, Result};
use gatehouse_core::Millis;
use gatehouse_core::admin::{self, ApprovalOverview};
use gatehouse_core::store::approvals::ApprovalStatus;
use gatehouse_core::{Clock, SystemClock};

use super::{open_store, out_line};
use crate::cli::ApprovalsArgs;
use crate::display::{duration, sanitize, short_time, truncate};

/// Cells longer than this are cut in the table (the JSON has them whole).
const NAME_WIDTH: usize = 24;
const WHAT_WIDTH: usize = 48;

pub async fn run(data_dir: &Path, args: &ApprovalsArgs) -> Result<()> {
    let store = open_store(data_dir)?;
    let list = admin::approvals_overview(&store, args.limit, args.pending)
        .await
        .context("cannot read the approvals")?;
    if args.json {
        out_line(&serde_json::to_string_pretty(&list)?)?;
    } else if list.is_empty() {
        out_line(if args.pending {
            "Nothing is waiting for a decision."
        } else {
            "No agent has asked for anything yet."
        })?;
    } else {
        out_line(table(&list, SystemClock.now()).trim_end())?;
    }
    Ok(())
}

/// What was asked, in a few words: the plain-language summary, else the scopes.
pub fn what(o: &ApprovalOverview) -> String {
    let v = &o.view;
    let text = if !v.summary.is_empty() {
        v.summary.join("; ")
    } else if !v.scopes.is_empty() {
        v.scopes.join(" ")
    } else if let Some(msg) = &v.binding_message {
        format!("\"{msg}\"")
    } else {
        "(no scopes)".to_owned()
    };
    let warn = if v.warnings.is_empty() {
        ""
    } else {
        "\u{26a0} "
    };
    format!("{warn}{}", sanitize(&text))
}

fn status(o: &ApprovalOverview, now: Millis) -> String {
    match o.status {
        ApprovalStatus::Pending if now >= o.view.expires_at => "pending (overdue)".into(),
        ApprovalStatus::Pending => format!("pending, {} left", duration(o.view.expires_at - now)),
        other => other.as_str().to_owned(),
    }
}

/// The table, one approval per row, newest first.
pub fn table(list: &[ApprovalOverview], now: Millis) -> String {
    let header = [
        "ID",
        "KIND",
        "AGENT",
        "WHAT",
        "STATUS",
        "CHANNEL",
        "AFTER",
        "CREATED (UTC)",
        "EXPIRES (UTC)",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut rows = vec![header];
    for o in list {
        let v = &o.view;
        let agent = v
            .client_name
            .as_deref()
            .map(|n| truncate(&sanitize(n), NAME_WIDTH).into_owned())
            .unwrap_or_else(|| sanitize(&v.client_id).into_owned());
        let kind = match v.via.as_deref() {
            Some(via) => format!("{} ({})", v.kind, sanitize(via)),
            None => v.kind.clone(),
        };
        rows.push(vec![
            sanitize(&v.id).into_owned(),
            kind,
            agent,
            truncate(&what(o), WHAT_WIDTH).into_owned(),
            status(o, now),
            o.channel.clone().unwrap_or_else(|| "-".into()),
            o.decided_after_ms
                .map(duration)
                .unwrap_or_else(|| "-".into()),
            short_time(v.created_at),
            short_time(v.expires_at),
        ]);
    }
    super::agents::render(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::approvals::ApprovalView;

    fn overview(kind: &str, status: ApprovalStatus) -> ApprovalOverview {
        let action = kind == "action";
        ApprovalOverview {
            view: ApprovalView {
                id: "apr_1".into(),
                kind: kind.into(),
                client_id: "agt_1".into(),
                client_name: Some("Demo\x1b[2J agent".into()),
                verified: false,
                redirect_host: (!action).then(|| "127.0.0.1".into()),
                scopes: if action {
                    vec![]
                } else {
                    vec!["mail:read".into(), "mail:send".into()]
                },
                resources: vec![],
                authorization_details: None,
                binding_message: action.then(|| "Send Q3 budget deck to Alex".into()),
                via: action.then(|| "ciba".into()),
                user_code: None,
                summary: if action {
                    vec!["Send an email to alex@contractor.example".into()]
                } else {
                    vec![]
                },
                warnings: if action {
                    vec!["alex@contractor.example is outside your domains".into()]
                } else {
                    vec![]
                },
                created_at: 1_796_074_800_000,
                expires_at: 1_796_074_920_000,
            },
            status,
            channel: (status != ApprovalStatus::Pending).then(|| "terminal".into()),
            decided_at: (status != ApprovalStatus::Pending).then_some(1_796_074_812_000),
            decided_after_ms: (status != ApprovalStatus::Pending).then_some(12_000),
            granted_scopes: None,
            remember: None,
        }
    }

    #[test]
    fn the_table_says_what_was_asked_and_what_became_of_it() {
        let list = [
            overview("action", ApprovalStatus::Approved),
            overview("consent", ApprovalStatus::Pending),
        ];
        let text = table(&list, 1_796_074_830_000);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("ID     KIND"), "{text}");
        assert!(lines[1].contains("action (ciba)"), "{text}");
        assert!(
            lines[1].contains("\u{26a0} Send an email to alex@contractor.example"),
            "{text}"
        );
        assert!(
            lines[1].contains(" approved ") && lines[1].contains(" terminal  12s "),
            "{text}"
        );
        assert!(lines[1].contains("2026-11-30 21:40:00"), "{text}");
        assert!(lines[2].contains("mail:read mail:send"), "{text}");
        assert!(lines[2].contains("pending, 1m 30s left"), "{text}");
        assert!(!text.contains('\x1b'));
        assert_eq!(
            status(
                &overview("consent", ApprovalStatus::Pending),
                1_796_074_920_000
            ),
            "pending (overdue)"
        );
    }

    #[test]
    fn json_carries_channel_and_timing() {
        let j = serde_json::to_value(overview("action", ApprovalStatus::Denied)).unwrap();
        assert_eq!(j["id"], "apr_1");
        assert_eq!(j["status"], "denied");
        assert_eq!(j["channel"], "terminal");
        assert_eq!(j["decided_after_ms"], 12_000);
        assert_eq!(j["via"], "ciba");
        assert_eq!(j["summary"][0], "Send an email to alex@contractor.example");
    }
}

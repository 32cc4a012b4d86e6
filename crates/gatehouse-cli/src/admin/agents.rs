//! `gatehouse agents`: every registered agent with what it holds, as a table or JSON.

use std::path::Path;

use anyhow::{Context, Result};
use gatehouse_core::admin::{self, AgentOverview};
use gatehouse_core::{Clock, SystemClock};

use super::{open_store, out_line};
use crate::cli::AgentsArgs;
use crate::display::{sanitize, short_time, truncate};

/// Names longer than this are cut in the table (the JSON has them whole).
const NAME_WIDTH: usize = 30;

pub async fn run(data_dir: &Path, args: &AgentsArgs) -> Result<()> {
    let store = open_store(data_dir)?;
    let now = SystemClock.now();
    let agents = admin::agents_overview(&store, now)
        .await
        .context("cannot read the agents")?;
    if args.json {
        out_line(&serde_json::to_string_pretty(&agents)?)?;
    } else if agents.is_empty() {
        out_line("No agents have registered yet.")?;
    } else {
        out_line(table(&agents).trim_end())?;
    }
    Ok(())
}

/// The table, one agent per row, oldest registration first.
pub fn table(agents: &[AgentOverview]) -> String {
    let header = [
        "CLIENT ID",
        "NAME",
        "AUTH",
        "CREATED (UTC)",
        "LAST SEEN (UTC)",
        "TOKENS",
        "GRANTS",
        "STATUS",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut rows = vec![header];
    for o in agents {
        let a = &o.agent;
        let name = a
            .client_name
            .as_deref()
            .map(|n| truncate(&sanitize(n), NAME_WIDTH).into_owned())
            .unwrap_or_else(|| "-".into());
        let status = match a.revoked_at {
            Some(at) => format!("revoked {}", short_time(at)),
            None => "active".into(),
        };
        rows.push(vec![
            sanitize(&a.client_id).into_owned(),
            name,
            a.auth_method.clone(),
            short_time(a.created_at),
            a.last_seen_at.map(short_time).unwrap_or_else(|| "-".into()),
            o.live_tokens.len().to_string(),
            o.grants
                .iter()
                .filter(|g| g.revoked_at.is_none())
                .count()
                .to_string(),
            status,
        ]);
    }
    render(&rows)
}

/// Left-aligned columns two spaces apart.
pub(super) fn render(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::store::agents::Agent;

    fn overview(id: &str, name: Option<&str>, revoked_at: Option<i64>) -> AgentOverview {
        AgentOverview {
            agent: Agent {
                client_id: id.into(),
                client_name: name.map(str::to_owned),
                secret_hash: None,
                auth_method: "none".into(),
                application_type: "native".into(),
                redirect_uris: vec![],
                grant_types: vec![],
                response_types: vec![],
                scope: None,
                metadata: serde_json::json!({}),
                created_at: 1_796_074_800_123,
                last_seen_at: None,
                revoked_at,
                suspended_at: None,
            },
            grants: vec![],
            live_tokens: vec![],
        }
    }

    #[test]
    fn the_table_shows_each_agent() {
        let text = table(&[
            overview("agt_1", Some("Mail\x1b[31m helper"), None),
            overview("agt_2", None, Some(1_796_074_900_000)),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("CLIENT ID  NAME"), "{text}");
        assert!(
            lines[1].contains("Mail\\u{1b}[31m helper")
                && lines[1].contains("2026-11-30 21:40:00")
                && lines[1].ends_with("active"),
            "{text}"
        );
        assert!(lines[2].ends_with("revoked 2026-11-30 21:41:40"), "{text}");
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn columns_line_up() {
        let rows = vec![
            vec!["A".to_owned(), "BB".to_owned()],
            vec!["long cell".to_owned(), "x".to_owned()],
        ];
        assert_eq!(render(&rows), "A          BB\nlong cell  x\n");
    }
}

//! `gatehouse log`: the newest events oldest-first, then (with `--follow`) new ones as they are
//! committed, by this machine's server or anyone else.

use std::path::Path;

use anyhow::{Context, Result};
use gatehouse_core::Store;
use gatehouse_core::admin;
use gatehouse_core::audit::{self, Event, EventFilter};
use gatehouse_core::clock::rfc3339;
use gatehouse_core::store::StoreError;
use tokio::sync::broadcast::error::RecvError;

use super::{open_store, out_line};
use crate::cli::LogArgs;
use crate::display::{compact_detail, sanitize};
use crate::signal;

/// Rows read per query when catching up after the live feed lagged.
const CATCH_UP_BATCH: usize = 1000;

pub async fn run(data_dir: &Path, args: &LogArgs) -> Result<()> {
    let store = open_store(data_dir)?;
    // Subscribe before reading the page, so nothing committed in between is lost; anything seen
    // twice is skipped by id.
    let feed = args.follow.then(|| store.subscribe());

    let newest = admin::events_page(&store, EventFilter::default(), 1)
        .await
        .context("cannot read the audit log")?;
    let filter = EventFilter {
        client_id: args.agent.clone(),
        before_id: None,
    };
    let mut page = admin::events_page(&store, filter, args.limit)
        .await
        .context("cannot read the audit log")?;
    page.reverse();
    for ev in &page {
        out_line(&render(ev, args.json)?)?;
    }

    let Some(mut feed) = feed else {
        return Ok(());
    };
    // Everything up to here has been considered, printed or filtered out.
    let mut cursor = newest
        .first()
        .map(|e| e.id)
        .into_iter()
        .chain(page.last().map(|e| e.id))
        .max()
        .unwrap_or(0);
    let stop = signal::shutdown();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            ev = feed.recv() => match ev {
                Ok(ev) => {
                    if ev.id <= cursor {
                        continue;
                    }
                    cursor = ev.id;
                    if wanted(&ev, args.agent.as_deref()) {
                        out_line(&render(&ev, args.json)?)?;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    cursor = catch_up(&store, cursor, args).await?;
                }
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}

/// Prints what the feed dropped, straight from the database; returns the new cursor.
async fn catch_up(store: &Store, mut cursor: i64, args: &LogArgs) -> Result<i64> {
    loop {
        let after = cursor;
        let batch = store
            .read(move |c| audit::events_after(c, after, CATCH_UP_BATCH).map_err(StoreError::from))
            .await
            .context("cannot read the audit log")?;
        for ev in &batch {
            cursor = ev.id;
            if wanted(ev, args.agent.as_deref()) {
                out_line(&render(ev, args.json)?)?;
            }
        }
        if batch.len() < CATCH_UP_BATCH {
            return Ok(cursor);
        }
    }
}

fn wanted(ev: &Event, agent: Option<&str>) -> bool {
    agent.is_none_or(|a| ev.client_id.as_deref() == Some(a))
}

fn render(ev: &Event, json: bool) -> Result<String> {
    Ok(if json {
        serde_json::to_string(ev)?
    } else {
        human_line(ev)
    })
}

/// `2026-11-29T21:40:00.123Z  token.issued            ok        agt_…  grant_id=3 scopes=[read]`
pub fn human_line(ev: &Event) -> String {
    let client = ev.client_id.as_deref().map_or("-".into(), sanitize);
    let line = format!(
        "{}  {:<22}  {:<8}  {:<36}  {}",
        rfc3339(ev.ts),
        sanitize(&ev.kind),
        sanitize(&ev.outcome),
        client,
        compact_detail(&ev.detail)
    );
    line.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(client_id: Option<&str>, detail: serde_json::Value) -> Event {
        Event {
            id: 7,
            ts: 1_796_074_800_123,
            kind: "token.issued".into(),
            outcome: "ok".into(),
            client_id: client_id.map(str::to_owned),
            detail,
            hash: [0; 32],
        }
    }

    #[test]
    fn human_lines() {
        let ev = event(
            Some("agt_0123456789abcdef0123456789abcdef"),
            json!({"grant_id": 3, "scopes": ["read"]}),
        );
        assert_eq!(
            human_line(&ev),
            "2026-11-30T21:40:00.123Z  token.issued            ok        \
             agt_0123456789abcdef0123456789abcdef  grant_id=3 scopes=[read]"
        );
        let bare = event(None, json!({}));
        assert_eq!(
            human_line(&bare),
            "2026-11-30T21:40:00.123Z  token.issued            ok        -"
        );
    }

    #[test]
    fn agent_filter() {
        let ev = event(Some("agt_1"), json!({}));
        assert!(wanted(&ev, None));
        assert!(wanted(&ev, Some("agt_1")));
        assert!(!wanted(&ev, Some("agt_2")));
        assert!(!wanted(&event(None, json!({})), Some("agt_1")));
    }
}

//! The Activity view's queries on a real SQLite file: every filter against a brute-force reading
//! of the same log, full-text search before, during and after the background indexer fills the
//! FTS5 index (the un-indexed tail is scanned), the indexer's steps, and the JSONL / CSV exports.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::Env;
use gatehouse_core::admin::{self, ExportFormat};
use gatehouse_core::audit::{self, Event, EventKind, EventQuery, NewEvent, Outcome};
use gatehouse_core::store::StoreError;
use gatehouse_core::{Store, StoreOptions};

const KINDS: [EventKind; 5] = [
    EventKind::TokenIssued,
    EventKind::ConsentApproved,
    EventKind::ActionRequested,
    EventKind::GatewayCall,
    EventKind::RequestRejected,
];
const CLIENTS: [&str; 3] = ["agt_alpha", "agt_beta", "agt_gamma"];

/// `n` events, a few per clock tick, with kinds, clients, outcomes and details in fixed cycles.
async fn fill(env: &Env, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let events: Vec<NewEvent> = chunk
            .iter()
            .map(|&i| {
                let kind = KINDS[i % KINDS.len()];
                let outcome = if i % 7 == 0 {
                    Outcome::Denied
                } else {
                    Outcome::Ok
                };
                let client = (i % 11 != 0).then_some(CLIENTS[i % CLIENTS.len()]);
                let detail = match i % 4 {
                    0 => serde_json::json!({ "n": i, "to": "alex@contractor.example" }),
                    1 => serde_json::json!({ "n": i, "url": "https://api.github.com/repos/x" }),
                    2 => serde_json::json!({ "n": i, "note": "said \"hi\", then\nleft" }),
                    _ => serde_json::json!({ "n": i }),
                };
                NewEvent::new(kind, outcome, client, detail)
            })
            .collect();
        env.store
            .write(move |tx| {
                for e in events {
                    tx.append(e)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        env.advance(Duration::from_millis(100));
    }
}

/// Every event, newest first, read without any index but the primary key.
async fn everything(env: &Env) -> Vec<Event> {
    env.store
        .read(|c| audit::events_after(c, 0, 1_000_000).map_err(StoreError::from))
        .await
        .unwrap()
        .into_iter()
        .rev()
        .collect()
}

/// All pages of `q`, following the keyset cursor.
async fn all_pages(env: &Env, mut q: EventQuery) -> Vec<i64> {
    let mut ids = Vec::new();
    loop {
        let page = admin::events_query(&env.store, q.clone()).await.unwrap();
        let ids_here: Vec<i64> = page.iter().map(|e| e.id).collect();
        assert!(
            ids_here.windows(2).all(|w| w[0] > w[1]),
            "newest first: {ids_here:?}"
        );
        ids.extend(&ids_here);
        match page.last() {
            Some(last) if page.len() == q.limit => q.before_id = Some(last.id),
            _ => return ids,
        }
    }
}

/// How far the full-text index reaches.
async fn indexed(env: &Env) -> i64 {
    env.store
        .read(|c| audit::last_indexed_id(c).map_err(StoreError::from))
        .await
        .unwrap()
}

/// Which events a case expects, decided on each event of a full scan.
type Keep = Box<dyn Fn(&Event) -> bool>;

fn expected(all: &[Event], keep: impl Fn(&Event) -> bool) -> Vec<i64> {
    all.iter().filter(|e| keep(e)).map(|e| e.id).collect()
}

#[tokio::test]
async fn every_filter_pages_exactly_what_a_full_scan_finds() {
    let env = Env::new();
    fill(&env, 1234).await;
    let all = everything(&env).await;
    assert_eq!(all.len(), 1234);
    let page = |q: EventQuery| EventQuery { limit: 37, ..q };

    let cases: Vec<(EventQuery, Keep)> = vec![
        (EventQuery::default(), Box::new(|_| true)),
        (
            EventQuery {
                client_id: Some("agt_beta".into()),
                ..Default::default()
            },
            Box::new(|e| e.client_id.as_deref() == Some("agt_beta")),
        ),
        (
            EventQuery {
                kinds: vec!["gateway.call".into()],
                ..Default::default()
            },
            Box::new(|e| e.kind == "gateway.call"),
        ),
        (
            EventQuery {
                kinds: vec![
                    "token.issued".into(),
                    "request.rejected".into(),
                    "token.issued".into(),
                ],
                outcome: Some("denied".into()),
                ..Default::default()
            },
            Box::new(|e| {
                (e.kind == "token.issued" || e.kind == "request.rejected") && e.outcome == "denied"
            }),
        ),
        (
            EventQuery {
                client_id: Some("agt_gamma".into()),
                kinds: vec!["consent.approved".into()],
                since: Some(common::T0 + 2_000),
                until: Some(common::T0 + 9_000),
                ..Default::default()
            },
            Box::new(|e| {
                e.client_id.as_deref() == Some("agt_gamma")
                    && e.kind == "consent.approved"
                    && (common::T0 + 2_000..=common::T0 + 9_000).contains(&e.ts)
            }),
        ),
        (
            EventQuery {
                text: Some("alex@contractor.example".into()),
                ..Default::default()
            },
            Box::new(|e| e.detail["to"] == "alex@contractor.example"),
        ),
        (
            // Chunks in any order, each a phrase; a prefix when it ends in '*'.
            EventQuery {
                text: Some("repos api.github.c*".into()),
                ..Default::default()
            },
            Box::new(|e| e.detail.get("url").is_some()),
        ),
        (
            // Whole tokens unless asked: a part of a word is not a word.
            EventQuery {
                text: Some("contract".into()),
                ..Default::default()
            },
            Box::new(|_| false),
        ),
        (
            EventQuery {
                text: Some("contract*".into()),
                ..Default::default()
            },
            Box::new(|e| e.detail["to"] == "alex@contractor.example"),
        ),
        (
            // A phrase keeps its order.
            EventQuery {
                text: Some("example.contractor".into()),
                ..Default::default()
            },
            Box::new(|_| false),
        ),
        (
            // A client id is one token ('_' joins), found by its prefix.
            EventQuery {
                text: Some("agt_bet*".into()),
                kinds: vec!["token.issued".into(), "gateway.call".into()],
                ..Default::default()
            },
            Box::new(|e| {
                e.client_id.as_deref() == Some("agt_beta")
                    && (e.kind == "token.issued" || e.kind == "gateway.call")
            }),
        ),
        (
            // The kind is searchable too, combined with other filters.
            EventQuery {
                text: Some("rejected".into()),
                client_id: Some("agt_alpha".into()),
                outcome: Some("ok".into()),
                ..Default::default()
            },
            Box::new(|e| {
                e.kind == "request.rejected"
                    && e.client_id.as_deref() == Some("agt_alpha")
                    && e.outcome == "ok"
            }),
        ),
        (
            EventQuery {
                text: Some("nothing-like-this-anywhere".into()),
                ..Default::default()
            },
            Box::new(|_| false),
        ),
    ];
    // Nothing indexed yet (every text match is the tail scan), then the index reaching part of
    // the log (both halves, pages crossing the mark), then all of it (the FTS index alone).
    assert_eq!(indexed(&env).await, 0);
    let mut mark = 0;
    for step in [0, 617, 1234] {
        let n = env.store.index_events(step - mark).await.unwrap();
        assert_eq!(n, step - mark);
        mark = step;
        assert_eq!(indexed(&env).await, step as i64);
        for (q, keep) in &cases {
            let want = expected(&all, keep);
            let none_wanted = matches!(
                q.text.as_deref(),
                Some("nothing-like-this-anywhere" | "contract" | "example.contractor")
            );
            assert_eq!(want.is_empty(), none_wanted, "{q:?} must find some");
            let got = all_pages(&env, page(q.clone())).await;
            assert_eq!(got, want, "{q:?} with {step} events indexed");
        }
    }

    // Starting below a cursor.
    let below = all[100].id;
    let got = all_pages(
        &env,
        page(EventQuery {
            before_id: Some(below),
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(got, expected(&all, |e| e.id < below));

    // What a person types is never FTS syntax: quotes, stars, operators and columns are words or
    // nothing, and never an error.
    for text in [
        "\"",
        "*",
        "**",
        "a\"b*",
        "_",
        "NEAR(a b)",
        "detail:alex",
        "a AND OR NOT",
        "-",
        "  ",
        "é",
    ] {
        let q = EventQuery {
            text: Some(text.into()),
            ..Default::default()
        };
        admin::events_query(&env.store, q).await.unwrap();
    }
    // A limit of 0 is the default page; a huge one is capped.
    let q = EventQuery::default();
    assert_eq!(admin::events_query(&env.store, q).await.unwrap().len(), 50);
    let q = EventQuery {
        limit: 1_000_000,
        ..Default::default()
    };
    assert_eq!(
        admin::events_query(&env.store, q).await.unwrap().len(),
        1000
    );

    // The index lives beside the log: the chain is intact and the log still refuses edits.
    assert!(
        admin::verify_audit(&env.store)
            .await
            .unwrap()
            .first_bad
            .is_none()
    );
    let raw = env.raw();
    assert!(
        raw.execute("UPDATE events SET detail = '{}' WHERE id = 1", [])
            .is_err()
    );
    assert!(raw.execute("DELETE FROM events WHERE id = 1", []).is_err());
}

#[tokio::test]
async fn event_kinds_lists_every_kind_once() {
    let kinds = audit::event_kinds();
    let unique: HashSet<&str> = kinds.iter().copied().collect();
    assert_eq!(unique.len(), kinds.len());
    for k in [
        "agent.suspended",
        "agent.resumed",
        "grant.revoked",
        "kill_switch.pulled",
        "settings.changed",
        "gateway.call",
    ] {
        assert!(unique.contains(k), "{k}");
    }
}

/// Splits RFC 4180 text into records of fields.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CRLF line ends");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(field.is_empty() && record.is_empty(), "ends with CRLF");
    records
}

#[tokio::test]
async fn exports_write_every_matching_event_across_pages() {
    let env = Env::new();
    fill(&env, 2345).await;
    let all = everything(&env).await;
    let dir = tempfile::tempdir().unwrap();

    let path = dir.path().join("all.jsonl");
    let file = std::fs::File::create(&path).unwrap();
    let n = admin::export_events(&env.store, EventQuery::default(), ExportFormat::Jsonl, file)
        .await
        .unwrap();
    assert_eq!(n, 2345);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2345);
    for (line, ev) in lines.iter().zip(&all) {
        assert_eq!(line, &serde_json::to_value(ev).unwrap());
    }

    let q = EventQuery {
        client_id: Some("agt_alpha".into()),
        text: Some("said".into()),
        ..Default::default()
    };
    let path = dir.path().join("said.csv");
    let file = std::fs::File::create(&path).unwrap();
    let n = admin::export_events(&env.store, q, ExportFormat::Csv, file)
        .await
        .unwrap();
    let want: Vec<&Event> = all
        .iter()
        .filter(|e| e.client_id.as_deref() == Some("agt_alpha") && e.detail.get("note").is_some())
        .collect();
    assert_eq!(n as usize, want.len());
    let records = parse_csv(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(
        records[0],
        ["id", "ts", "kind", "outcome", "client_id", "detail", "hash"]
    );
    assert_eq!(records.len(), want.len() + 1);
    for (r, ev) in records[1..].iter().zip(want) {
        assert_eq!(r[0], ev.id.to_string());
        assert_eq!(r[1], ev.ts.to_string());
        assert_eq!(r[2], ev.kind);
        assert_eq!(r[4], "agt_alpha");
        let detail: serde_json::Value = serde_json::from_str(&r[5]).unwrap();
        assert_eq!(detail, ev.detail);
        assert_eq!(detail["note"], "said \"hi\", then\nleft");
        assert_eq!(r[6].len(), 64);
    }
}

#[tokio::test]
async fn time_filters_narrow_by_id_yet_keep_events_stamped_out_of_order() {
    let env = Env::new();
    // Rows as several processes could leave them: one a second, every 97th stamped 20 minutes
    // early (a write that waited for another process, a slower clock), within the allowed skew.
    let raw = env.raw();
    let base = common::T0;
    let ts_of = |i: i64| base + i * 1000 - if i % 97 == 0 { 1_200_000 } else { 0 };
    {
        let mut insert = raw
            .prepare(
                "INSERT INTO events (id, ts, kind, outcome, client_id, detail, prev_hash, hash) \
                 VALUES (?1, ?2, 'token.issued', 'ok', 'agt_x', '{}', x'00', x'00')",
            )
            .unwrap();
        raw.execute_batch("BEGIN").unwrap();
        for i in 1..=20_000i64 {
            insert.execute(rusqlite::params![i, ts_of(i)]).unwrap();
        }
        raw.execute_batch("COMMIT").unwrap();
    }
    let windows = [
        (Some(base + 5_000_000), Some(base + 6_000_000)),
        (Some(base + 19_000_000), None),
        (None, Some(base + 1_500_000)),
        (Some(base + 3_000_000), Some(base + 3_000_500)),
        (Some(base + 30_000_000), None),
        (None, Some(base - 1)),
    ];
    for (since, until) in windows {
        let want: Vec<i64> = (1..=20_000i64)
            .rev()
            .filter(|&i| since.is_none_or(|s| ts_of(i) >= s) && until.is_none_or(|u| ts_of(i) <= u))
            .collect();
        let q = EventQuery {
            since,
            until,
            limit: 1000,
            ..Default::default()
        };
        let got = all_pages(&env, q).await;
        assert_eq!(got, want, "since {since:?} until {until:?}");
    }
    // The bounds do narrow: a one-hour window walks about three hours of ids, not the log.
    let (after, before) = audit::id_bounds(
        &raw,
        Some(base + 5_000_000),
        Some(base + 5_000_000 + 3_600_000),
    )
    .unwrap();
    assert!(after > 0 && before < 20_000, "({after}, {before})");
    assert!(before - after < 4 * 3_600, "({after}, {before})");
}

/// Events with a marker word in their detail, appended through `store` in writes of 500.
async fn append_marked(store: &Store, marker: &str, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for start in (0..n).step_by(500) {
        let marker = marker.to_owned();
        let end = (start + 500).min(n);
        let written = store
            .write(move |tx| {
                (start..end)
                    .map(|i| {
                        tx.append(NewEvent::new(
                            EventKind::GatewayCall,
                            Outcome::Ok,
                            Some("agt_marked"),
                            serde_json::json!({ "n": i, "note": format!("{marker} call {i}") }),
                        ))
                    })
                    .collect::<Result<Vec<i64>, StoreError>>()
            })
            .await
            .unwrap();
        ids.extend(written);
    }
    ids
}

/// How many index entries match `fts`, and for how many distinct events (equal unless an event
/// was indexed twice).
fn index_entries(env: &Env, fts: &str) -> (i64, i64) {
    env.raw()
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT rowid) FROM events_fts WHERE events_fts MATCH ?1",
            [fts],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[tokio::test]
async fn a_search_finds_events_appended_after_the_last_indexing_run() {
    let env = Env::new();
    let old = append_marked(&env.store, "zebra", 300).await;
    assert_eq!(
        env.store.index_events(audit::INDEX_BATCH).await.unwrap(),
        300
    );
    assert_eq!(indexed(&env).await, 300);
    // Appending indexes nothing: the write path no longer touches the index.
    let new = append_marked(&env.store, "zebra", 120).await;
    append_marked(&env.store, "yak", 40).await;
    assert_eq!(indexed(&env).await, 300);
    assert_eq!(index_entries(&env, "zebra"), (300, 300));

    // Newest first across the tail and the index, paged by keyset across the mark.
    let want: Vec<i64> = old.iter().chain(&new).rev().copied().collect();
    let q = EventQuery {
        text: Some("zebra".into()),
        limit: 45,
        ..Default::default()
    };
    assert_eq!(all_pages(&env, q).await, want);
    // Only the tail holds it: a phrase, a prefix and other filters.
    let q = EventQuery {
        text: Some("yak call".into()),
        client_id: Some("agt_marked".into()),
        kinds: vec!["gateway.call".into()],
        limit: 7,
        ..Default::default()
    };
    assert_eq!(all_pages(&env, q).await.len(), 40);
    let q = EventQuery {
        text: Some("ya*".into()),
        limit: 1000,
        ..Default::default()
    };
    assert_eq!(all_pages(&env, q).await.len(), 40);
    let q = EventQuery {
        text: Some("call yak".into()),
        ..Default::default()
    };
    assert_eq!(all_pages(&env, q).await.len(), 40);
    let q = EventQuery {
        text: Some("yak.zebra".into()),
        ..Default::default()
    };
    assert!(all_pages(&env, q).await.is_empty());
}

#[tokio::test]
async fn the_indexer_catches_up_in_batches_including_other_processes_events() {
    let env = Env::new();
    let ours = append_marked(&env.store, "otter", 7_000).await;
    // Another process (the CLI) appending to the same database.
    let other = Store::open(env.dir.path(), StoreOptions::default(), env.clock.clone()).unwrap();
    let theirs = append_marked(&other, "otter", 5_500).await;
    other.close();
    drop(other);
    assert_eq!(theirs[0], ours[ours.len() - 1] + 1);
    assert_eq!(index_entries(&env, "otter"), (0, 0));

    let mut steps = Vec::new();
    loop {
        let n = env.store.index_events(audit::INDEX_BATCH).await.unwrap();
        steps.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(steps, [5_000, 5_000, 2_500, 0]);
    assert_eq!(indexed(&env).await, 12_500);
    assert_eq!(index_entries(&env, "otter"), (12_500, 12_500));
    // Nothing new: no write at all (the database's change counter, seen from another connection,
    // stays).
    let raw = env.raw();
    let version: i64 = raw
        .query_row("PRAGMA data_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(env.store.index_events(audit::INDEX_BATCH).await.unwrap(), 0);
    let after: i64 = raw
        .query_row("PRAGMA data_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, after);
    let q = EventQuery {
        text: Some("otter".into()),
        limit: 1000,
        ..Default::default()
    };
    let got = all_pages(&env, q).await;
    let want: Vec<i64> = ours.iter().chain(&theirs).rev().copied().collect();
    assert_eq!(got, want);
    assert!(
        admin::verify_audit(&env.store)
            .await
            .unwrap()
            .first_bad
            .is_none()
    );
}

#[tokio::test]
async fn after_a_restart_indexing_resumes_from_the_mark() {
    let env = Env::new();
    let ids = append_marked(&env.store, "heron", 900).await;
    assert_eq!(env.store.index_events(350).await.unwrap(), 350);
    env.store.close();
    let Env {
        dir,
        clock,
        store,
        authority,
    } = env;
    drop((store, authority));

    let store = Store::open(dir.path(), StoreOptions::default(), clock.clone()).unwrap();
    let mark = store
        .read(|c| audit::last_indexed_id(c).map_err(StoreError::from))
        .await
        .unwrap();
    assert_eq!(mark, 350);
    assert_eq!(store.index_events(audit::INDEX_BATCH).await.unwrap(), 550);
    let raw = common::raw_connection(dir.path());
    let entries: (i64, i64, i64) = raw
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT rowid), MAX(rowid) FROM events_fts \
             WHERE events_fts MATCH 'heron'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(entries, (900, 900, 900));
    let got = admin::events_query(
        &store,
        EventQuery {
            text: Some("heron".into()),
            limit: 1000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        got.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids.iter().rev().copied().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_search_over_a_long_unindexed_tail_indexes_it_first() {
    let env = Env::new();
    let n = admin::TAIL_SCAN_MAX as usize + 3_000;
    append_marked(&env.store, "ibis", n).await;
    assert_eq!(indexed(&env).await, 0);
    let q = EventQuery {
        text: Some("ibis".into()),
        limit: 10,
        ..Default::default()
    };
    let page = admin::events_query(&env.store, q).await.unwrap();
    assert_eq!(page.len(), 10);
    assert_eq!(page[0].id, n as i64);
    // Indexed down to a tail no longer than the scan allows, in whole batches.
    let mark = indexed(&env).await;
    assert!(
        (n as i64 - mark) <= admin::TAIL_SCAN_MAX && mark > 0,
        "mark {mark}"
    );
}

#[tokio::test]
async fn the_maintenance_loop_runs_the_indexer() {
    let env = Env::new();
    let authority = std::sync::Arc::new(gatehouse_core::Authority::new(
        env.store.clone(),
        env.clock.clone(),
        gatehouse_core::AuthorityConfig::new("http://127.0.0.1:1"),
    ));
    let maintain = tokio::spawn(authority.maintain());
    append_marked(&env.store, "stork", 6_000).await;
    // Polls until the loop has indexed everything (two steps: 5,000 then the rest), or fails.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while indexed(&env).await < 6_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the loop indexed only up to {}",
            indexed(&env).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    maintain.abort();
    assert_eq!(index_entries(&env, "stork"), (6_000, 6_000));
}

//! The audit log end to end on real files: the live feed delivers committed events in id order
//! (never a rolled-back one), including events another process writes to the same data dir, two
//! writers on one file keep a single intact chain, and `audit verify` names an edited row.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Env, marker_event, raw_connection};
use gatehouse_core::audit::Event;
use gatehouse_core::clock::SystemClock;
use gatehouse_core::{Store, StoreError, StoreOptions, admin};
use tokio::sync::broadcast;

/// The feed delivers within a few hundred ms; this bounds a broken feed, not a slow machine.
const FEED_DEADLINE: Duration = Duration::from_secs(5);

async fn next_events(rx: &mut broadcast::Receiver<Event>, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(FEED_DEADLINE, rx.recv()).await {
            Ok(Ok(ev)) => out.push(ev),
            Ok(Err(e)) => panic!("feed failed after {} events: {e}", out.len()),
            Err(_) => panic!(
                "feed delivered {} of {n} events in {FEED_DEADLINE:?}",
                out.len()
            ),
        }
    }
    out
}

fn marker(ev: &Event) -> u64 {
    ev.detail["n"].as_u64().unwrap()
}

async fn append(store: &Store, n: u64) -> i64 {
    store
        .write(move |tx| tx.append(marker_event(n)))
        .await
        .unwrap()
}

#[tokio::test]
async fn subscribers_get_committed_events_in_id_order_and_never_rolled_back_ones() {
    let env = Env::new();
    let mut rx = env.store.subscribe();

    let mut written = Vec::new();
    for n in 0..20u64 {
        if n % 5 == 4 {
            let rolled_back: Result<(), StoreError> = env
                .store
                .write(move |tx| {
                    tx.append(marker_event(n))?;
                    Err(StoreError::Corrupt("changed my mind".into()))
                })
                .await;
            assert!(rolled_back.is_err());
        } else {
            written.push((append(&env.store, n).await, n));
        }
    }
    // One write with several events, as a state change with a rejection would produce.
    let (a, b) = env
        .store
        .write(|tx| {
            Ok::<_, StoreError>((tx.append(marker_event(100))?, tx.append(marker_event(101))?))
        })
        .await
        .unwrap();
    written.push((a, 100));
    written.push((b, 101));

    let got = next_events(&mut rx, written.len()).await;
    let got: Vec<(i64, u64)> = got.iter().map(|e| (e.id, marker(e))).collect();
    assert_eq!(got, written);
    assert!(
        got.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "ids have gaps: {got:?}"
    );
    assert!(
        rx.try_recv().is_err(),
        "the feed delivered more than was committed"
    );
}

#[tokio::test]
async fn the_feed_picks_up_events_written_by_another_process() {
    let env = Env::new();
    let mut rx = env.store.subscribe();
    // A second store on the same data dir stands in for the CLI writing from another process.
    let other = Store::open(
        env.dir.path(),
        StoreOptions::default(),
        std::sync::Arc::new(SystemClock),
    )
    .unwrap();
    let mut other_rx = other.subscribe();

    let mut written = Vec::new();
    for n in 0..10u64 {
        let writer = if n % 2 == 0 { &env.store } else { &other };
        written.push((append(writer, n).await, n));
    }
    // The other process's last event arrives through `PRAGMA data_version` polling alone.
    let started = std::time::Instant::now();
    let got = next_events(&mut rx, written.len()).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    let got: Vec<(i64, u64)> = got.iter().map(|e| (e.id, marker(e))).collect();
    assert_eq!(got, written);
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>(),
        "two writers on one file share one chain"
    );

    // And the other way round: the second process's feed saw both writers too.
    let seen = next_events(&mut other_rx, written.len()).await;
    let seen: Vec<(i64, u64)> = seen.iter().map(|e| (e.id, marker(e))).collect();
    assert_eq!(seen, written);
    let id = append(&env.store, 99).await;
    let seen = next_events(&mut other_rx, 1).await;
    assert_eq!((seen[0].id, marker(&seen[0])), (id, 99));

    let v = admin::verify_audit(&env.store).await.unwrap();
    assert_eq!((v.events, v.first_bad), (11, None));
}

#[tokio::test]
async fn concurrent_writers_in_two_processes_keep_one_intact_chain() {
    let env = Env::new();
    let other = Store::open(
        env.dir.path(),
        StoreOptions::default(),
        std::sync::Arc::new(SystemClock),
    )
    .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200u64 {
        let store = if n % 2 == 0 {
            env.store.clone()
        } else {
            other.clone()
        };
        tasks.spawn(async move { append(&store, n).await });
    }
    let mut ids = Vec::new();
    while let Some(id) = tasks.join_next().await {
        ids.push(id.unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=200).collect::<Vec<_>>());
    let v = admin::verify_audit(&other).await.unwrap();
    assert_eq!((v.events, v.last_id, v.first_bad), (200, 200, None));
}

#[tokio::test]
async fn audit_verify_names_an_edited_row() {
    let env = Env::new();
    for n in 0..12 {
        append(&env.store, n).await;
    }
    assert_eq!(
        admin::verify_audit(&env.store).await.unwrap().first_bad,
        None
    );

    let raw = raw_connection(env.dir.path());
    assert!(
        raw.execute("UPDATE events SET detail = '{\"n\":1000}' WHERE id = 7", [])
            .is_err(),
        "the append-only trigger let an edit through"
    );
    raw.execute_batch(
        "DROP TRIGGER events_are_append_only_u;
         UPDATE events SET detail = '{\"n\":1000}' WHERE id = 7;",
    )
    .unwrap();

    let v = admin::verify_audit(&env.store).await.unwrap();
    let bad = v.first_bad.expect("the edit went unnoticed");
    assert_eq!(bad.id, 7);
    assert!(bad.reason.contains("hash"), "{}", bad.reason);
    assert_eq!(
        v.events, 6,
        "rows before the edited one still count as verified"
    );
}

#[tokio::test]
async fn audit_verify_names_the_row_after_a_deleted_one() {
    let env = Env::new();
    for n in 0..5 {
        append(&env.store, n).await;
    }
    raw_connection(env.dir.path())
        .execute_batch(
            "DROP TRIGGER events_are_append_only_d;
             DELETE FROM events WHERE id = 3;",
        )
        .unwrap();
    let v = admin::verify_audit(&env.store).await.unwrap();
    assert_eq!(v.first_bad.map(|b| b.id), Some(4));
}

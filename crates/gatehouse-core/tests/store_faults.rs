//! Store faults on real SQLite files: a failed job inside a group-commit batch rolls back alone, an
//! audit log that cannot be written blocks the state change (fail closed), a database locked by
//! another connection fails writes as unavailable without changing anything, and the data-dir lock
//! admits one holder at a time.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Env, marker_event, registration};
use gatehouse_core::admin;
use gatehouse_core::clock::ManualClock;
use gatehouse_core::oauth::ErrorCode;
use gatehouse_core::store::DataDirLock;
use gatehouse_core::{StoreError, StoreOptions};
use rusqlite::params;

#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("the job gave up on purpose")]
    GaveUp,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes a settings row and an audit event; jobs where `fail` is set return `Err` afterwards.
async fn settings_job(store: &gatehouse_core::Store, n: u64, fail: bool) -> Result<i64, JobError> {
    stamped_settings_job(store, n, fail, None)
        .await
        .map(|(id, _)| id)
}

/// Like [`settings_job`], returning the event id and the batch's timestamp. With `clock`, each job
/// moves the clock on by 1 ms, so jobs in a later batch see a later stamp than jobs in this one.
async fn stamped_settings_job(
    store: &gatehouse_core::Store,
    n: u64,
    fail: bool,
    clock: Option<Arc<ManualClock>>,
) -> Result<(i64, i64), JobError> {
    store
        .write(move |tx| {
            if let Some(c) = &clock {
                c.advance(Duration::from_millis(1));
            }
            tx.conn()
                .execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)",
                    params![format!("k{n}"), "v"],
                )
                .map_err(StoreError::from)?;
            let id = tx.append(marker_event(n))?;
            if fail {
                Err(JobError::GaveUp)
            } else {
                Ok((id, tx.now()))
            }
        })
        .await
}

#[tokio::test]
async fn a_failed_job_rolls_back_alone_while_its_batch_commits() {
    let env = Env::new();
    const JOBS: u64 = 90;

    // Hold the writer thread so every job below queues up and runs in one group-commit batch.
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let (entered, gate_entered) = tokio::sync::oneshot::channel::<()>();
    let store = env.store.clone();
    let gate_job = tokio::spawn(async move {
        store
            .write(move |_tx| {
                entered.send(()).ok();
                gate.recv().ok();
                Ok::<_, StoreError>(())
            })
            .await
    });

    gate_entered.await.unwrap();

    let queued = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..JOBS {
        let (store, queued, clock) = (env.store.clone(), queued.clone(), env.clock.clone());
        tasks.spawn(async move {
            // Store::write queues its job before its first await, and this test runs on a
            // current-thread runtime, so once `queued` counts this task its job is in the queue.
            queued.fetch_add(1, Ordering::SeqCst);
            (
                n,
                stamped_settings_job(&store, n, n % 3 == 0, Some(clock)).await,
            )
        });
    }
    while queued.load(Ordering::SeqCst) < JOBS as usize {
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    gate_job.await.unwrap().unwrap();

    let mut committed_ids = Vec::new();
    let mut stamps = std::collections::BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        let (n, result) = joined.unwrap();
        match (n % 3 == 0, result) {
            (true, Err(JobError::GaveUp)) => {}
            (false, Ok((id, stamp))) => {
                committed_ids.push(id);
                stamps.insert(stamp);
            }
            (fails, other) => panic!("job {n} (fails: {fails}) ended with {other:?}"),
        }
    }
    assert_eq!(
        stamps.len(),
        1,
        "the jobs ran in more than one batch: {stamps:?}"
    );
    committed_ids.sort_unstable();
    let ok_jobs = (0..JOBS).filter(|n| n % 3 != 0).count();
    assert_eq!(committed_ids.len(), ok_jobs);
    // The failed jobs' events were rolled back and their ids reused: no gaps in the chain.
    assert_eq!(committed_ids, (1..=ok_jobs as i64).collect::<Vec<_>>());

    let raw = env.raw();
    let keys: Vec<String> = raw
        .prepare("SELECT key FROM settings ORDER BY key")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut expected: Vec<String> = (0..JOBS)
        .filter(|n| n % 3 != 0)
        .map(|n| format!("k{n}"))
        .collect();
    expected.sort();
    assert_eq!(keys, expected, "only the successful jobs' rows are stored");
    let logged: Vec<u64> = raw
        .prepare("SELECT detail FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|d| {
            serde_json::from_str::<serde_json::Value>(&d.unwrap()).unwrap()["n"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(
        logged.iter().all(|n| n % 3 != 0),
        "a failed job's event survived: {logged:?}"
    );
    assert_eq!(logged.len(), ok_jobs);

    let v = admin::verify_audit(&env.store).await.unwrap();
    assert_eq!(v.first_bad, None);
    assert_eq!(v.events, ok_jobs as u64);
}

#[tokio::test]
async fn a_panicking_job_rolls_back_and_the_writer_keeps_going() {
    let env = Env::new();
    settings_job(&env.store, 1, false).await.unwrap();
    let panicked: Result<(), StoreError> = env
        .store
        .write(|tx| {
            tx.conn()
                .execute("INSERT INTO settings (key, value) VALUES ('boom', 'v')", [])
                .map_err(StoreError::from)?;
            tx.append(marker_event(2))?;
            panic!("a bug in a write job");
        })
        .await;
    assert!(panicked.is_err());
    assert_eq!(settings_job(&env.store, 3, false).await.unwrap(), 2);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM settings WHERE key = 'boom'"),
        0
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM events"), 2);
    assert_eq!(
        admin::verify_audit(&env.store).await.unwrap().first_bad,
        None
    );
}

#[tokio::test]
async fn when_the_audit_log_cannot_be_written_nothing_changes() {
    let env = Env::new();
    let raw = env.raw();
    raw.execute_batch(
        "CREATE TRIGGER audit_down BEFORE INSERT ON events
         BEGIN SELECT RAISE(FAIL, 'disk full'); END;",
    )
    .unwrap();

    let err = env
        .authority
        .register(registration("refused"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TemporarilyUnavailable, "{err:?}");
    assert_eq!(
        env.count("SELECT COUNT(*) FROM agents"),
        0,
        "the agent row was kept"
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM events"), 0);

    let direct = settings_job(&env.store, 1, false).await.unwrap_err();
    assert!(
        matches!(direct, JobError::Store(StoreError::Unavailable(_))),
        "{direct:?}"
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM settings"), 0);

    raw.execute_batch("DROP TRIGGER audit_down;").unwrap();
    let ok = env
        .authority
        .register(registration("accepted"))
        .await
        .unwrap();
    assert_eq!(
        env.count("SELECT COUNT(*) FROM agents"),
        1,
        "registration works again once the log is writable"
    );
    let events = admin::events_page(&env.store, Default::default(), 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "agent.registered");
    assert_eq!(events[0].client_id.as_deref(), Some(ok.client_id.as_str()));
}

#[tokio::test]
async fn a_database_locked_by_another_connection_fails_writes_as_unavailable() {
    let busy_timeout = Duration::from_millis(150);
    let env = Env::with_options(StoreOptions { busy_timeout });
    env.authority
        .register(registration("before"))
        .await
        .unwrap();

    let locker = env.raw();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let started = Instant::now();
    let err = env
        .authority
        .register(registration("while locked"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TemporarilyUnavailable, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the write waited {:?}, far past its busy timeout",
        started.elapsed()
    );
    let direct = settings_job(&env.store, 1, false).await.unwrap_err();
    assert!(
        matches!(direct, JobError::Store(StoreError::Unavailable(_))),
        "{direct:?}"
    );
    // Reads keep working while a writer holds the lock (WAL).
    let agents = admin::agents_overview(&env.store, common::T0)
        .await
        .unwrap();
    assert_eq!(agents.len(), 1);

    locker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        env.count("SELECT COUNT(*) FROM agents"),
        1,
        "nothing changed"
    );
    assert_eq!(env.count("SELECT COUNT(*) FROM events"), 1);
    assert_eq!(env.count("SELECT COUNT(*) FROM settings"), 0);

    env.authority.register(registration("after")).await.unwrap();
    settings_job(&env.store, 2, false).await.unwrap();
    assert_eq!(env.count("SELECT COUNT(*) FROM agents"), 2);
    assert_eq!(
        admin::verify_audit(&env.store).await.unwrap().first_bad,
        None
    );
}

#[test]
fn the_data_dir_lock_admits_one_holder_at_a_time() {
    let dir = tempfile::TempDir::new().unwrap();
    let first = DataDirLock::acquire(dir.path()).unwrap();
    match DataDirLock::acquire(dir.path()) {
        Err(StoreError::Locked(p)) => assert_eq!(p, dir.path()),
        other => panic!("a second holder got {other:?}"),
    }
    let message = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    drop(first);
    let again = DataDirLock::acquire(dir.path()).unwrap();
    assert!(again.path().starts_with(dir.path()));
}

//! The SQLite store: one writer thread that commits state changes together with their audit
//! events, a pool of readers, numbered migrations, the data-dir lock, and the live event feed.
//!
//! Every write runs as a closure on the writer thread inside a transaction. Jobs that arrive
//! together share one transaction (group commit), each inside its own savepoint, so one failed job
//! never leaves half its rows behind and never takes the others down with it. The audit chain head
//! is read inside the write lock, so writers in other processes (the CLI) keep the chain intact.

pub mod agents;
pub mod approvals;
pub mod backchannel;
pub mod connections;
pub mod consents;
pub mod grants;
pub mod mcp;
pub mod rules;
pub mod tokens;

use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::{broadcast, oneshot};

use crate::audit::{self, ChainHead, Event, NewEvent};
use crate::clock::Clock;

/// The migrations, in order. Each file is applied once and never edited after it lands.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../../migrations/0001_init.sql")),
    (
        "0002_actions_rules_backchannel",
        include_str!("../../migrations/0002_actions_rules_backchannel.sql"),
    ),
    (
        "0003_approval_uses",
        include_str!("../../migrations/0003_approval_uses.sql"),
    ),
    (
        "0004_connections",
        include_str!("../../migrations/0004_connections.sql"),
    ),
    (
        "0005_oauth_connections",
        include_str!("../../migrations/0005_oauth_connections.sql"),
    ),
    (
        "0006_desktop",
        include_str!("../../migrations/0006_desktop.sql"),
    ),
    (
        "0007_fts_async",
        include_str!("../../migrations/0007_fts_async.sql"),
    ),
    ("0008_mcp", include_str!("../../migrations/0008_mcp.sql")),
];

/// How many queued write jobs may share one transaction.
const MAX_BATCH: usize = 256;

/// The database file inside a data dir.
pub const DB_FILE: &str = "gatehouse.db";
const LOCK_FILE: &str = "gatehouse.lock";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot take the write now (locked by another process, read-only, disk full).
    /// Nothing was changed.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
    #[error("cannot open the data dir {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another Gatehouse server is already using {0}; stop it first or pass a different --data-dir"
    )]
    Locked(PathBuf),
}

impl StoreError {
    /// Maps SQLite's "cannot write now" codes to [`StoreError::Unavailable`].
    pub(crate) fn classify(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(
                C::DatabaseBusy
                | C::DatabaseLocked
                | C::ReadOnly
                | C::DiskFull
                | C::SystemIoFailure
                | C::CannotOpen,
            ) => StoreError::Unavailable(e.to_string()),
            Some(C::ConstraintViolation) if e.to_string().contains("audit") => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Sqlite(e),
        }
    }
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long a write waits for another process's lock before failing as unavailable.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Holds the data dir for one server process. Released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock or explains who holds it.
    pub fn acquire(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.into(),
            source,
        })?;
        let path = data_dir.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(StoreError::Locked(data_dir.to_path_buf()))
            }
            Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Io { path, source }),
        }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A queued write. Given the transaction it runs and returns whether to keep its changes, plus
/// what to do once the commit is known; given an error (the database is unavailable) it reports it.
type Job =
    Box<dyn FnOnce(Result<&mut WriteTx<'_>, StoreError>) -> Option<(bool, Completion)> + Send>;

/// A write in progress: the connection inside the transaction, and the audit chain.
pub struct WriteTx<'a> {
    conn: &'a Connection,
    head: &'a mut ChainHead,
    appended: &'a mut Vec<Event>,
    now: crate::clock::Millis,
}

impl std::fmt::Debug for WriteTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl WriteTx<'_> {
    pub fn conn(&self) -> &Connection {
        self.conn
    }
    /// The time this transaction is written at.
    pub fn now(&self) -> crate::clock::Millis {
        self.now
    }
    /// Appends an audit event in this transaction. If it fails, the caller must fail too, and the
    /// whole job rolls back. Any failure to write the event is [`StoreError::Unavailable`]: a
    /// request whose audit record cannot be written fails closed as temporarily unavailable.
    pub fn append(&mut self, event: NewEvent) -> Result<i64, StoreError> {
        let ev = audit::append(self.conn, self.head, self.now, event).map_err(|e| {
            match StoreError::classify(e) {
                StoreError::Sqlite(e) => {
                    StoreError::Unavailable(format!("the audit log cannot be written: {e}"))
                }
                other => other,
            }
        })?;
        let id = ev.id;
        self.appended.push(ev);
        Ok(id)
    }
}

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

struct Inner {
    path: PathBuf,
    options: StoreOptions,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    readers: Mutex<Vec<Connection>>,
    feed: broadcast::Sender<Event>,
    wake_tailer: mpsc::SyncSender<()>,
    /// Dropping it stops the checkpoint thread.
    _stop_checkpointer: mpsc::Sender<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
    }
}

impl Store {
    /// Opens (creating and migrating if needed) the database in `data_dir`.
    pub fn open(
        data_dir: &Path,
        options: StoreOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.into(),
            source,
        })?;
        restrict_permissions(data_dir);
        let path = data_dir.join(DB_FILE);
        let mut conn = open_connection(&path, &options)?;
        migrate(&mut conn)?;
        // Checkpoints run on their own thread (see `checkpointer_loop`), never inside a commit.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(StoreError::classify)?;
        let reset_wanted = Arc::new(AtomicBool::new(false));
        let last_event_id: i64 =
            conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))?;

        let (feed, _) = broadcast::channel(4096);
        let cursor: FeedCursor = Arc::new(Mutex::new(last_event_id));
        let (wake_tx, wake_rx) = mpsc::sync_channel::<()>(1);
        let (job_tx, job_rx) = mpsc::channel::<Job>();

        std::thread::Builder::new()
            .name("gatehouse-writer".into())
            .spawn({
                let wake = wake_tx.clone();
                let reset_wanted = reset_wanted.clone();
                let (feed, cursor) = (feed.clone(), cursor.clone());
                move || writer_loop(conn, job_rx, clock, wake, reset_wanted, feed, cursor)
            })
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;

        let tail_conn = open_connection(&path, &options)?;
        std::thread::Builder::new()
            .name("gatehouse-feed".into())
            .spawn({
                let feed = feed.clone();
                let cursor = cursor.clone();
                move || tailer_loop(tail_conn, wake_rx, feed, cursor)
            })
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;

        let checkpoint_conn = open_connection(&path, &options)?;
        let (stop_checkpointer, stop_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("gatehouse-checkpoint".into())
            .spawn(move || checkpointer_loop(checkpoint_conn, stop_rx, reset_wanted))
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;

        Ok(Store {
            inner: Arc::new(Inner {
                _stop_checkpointer: stop_checkpointer,
                path,
                options,
                writer: Mutex::new(Some(job_tx)),
                readers: Mutex::new(Vec::new()),
                feed,
                wake_tailer: wake_tx,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the writer thread inside a transaction and commits it. `Err` from `f` rolls back
    /// everything `f` wrote, including its audit events. The result is returned only after commit.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |w| {
            let w = match w {
                Ok(w) => w,
                Err(e) => {
                    let _ = tx.send(Err(E::from(e)));
                    return None;
                }
            };
            let result = f(w);
            let ok = result.is_ok();
            let done: Completion = Box::new(move |commit| {
                let out = match (commit, result) {
                    (Ok(()), r) => r,
                    (Err(e), Ok(_)) => Err(E::from(e)),
                    (Err(_), Err(e)) => Err(e),
                };
                let _ = tx.send(out);
            });
            Some((ok, done))
        });
        {
            let guard = self.inner.writer.lock().map_err(|_| StoreError::Closed)?;
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender.send(job).map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Runs `f` with a reader connection on the blocking pool.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .map_err(|_| E::from(StoreError::Closed))?
    }

    /// Like [`Store::read`], on the calling thread. For threads that may block.
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E>,
        E: From<StoreError>,
    {
        let conn = self.inner.readers.lock().ok().and_then(|mut r| r.pop());
        let conn = match conn {
            Some(c) => c,
            None => open_connection(&self.inner.path, &self.inner.options).map_err(E::from)?,
        };
        let out = f(&conn);
        if let Ok(mut r) = self.inner.readers.lock()
            && r.len() < 16
        {
            r.push(conn);
        }
        out
    }

    /// Live audit events, in id order, including those written by other processes.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.feed.subscribe()
    }

    /// Asks the feed to look for new events now.
    pub fn poke_feed(&self) {
        let _ = self.inner.wake_tailer.try_send(());
    }

    /// One step of the background full-text indexer: adds up to `max` events the index has not
    /// reached to it, in one write transaction through the writer (so it shares group commits
    /// instead of competing for the write lock), moving the index's mark in the same transaction.
    /// Looks first on a reader and writes nothing when there is nothing new. Returns how many
    /// events it indexed; indexes every event by id, whichever process appended it.
    pub async fn index_events(&self, max: usize) -> Result<usize, StoreError> {
        let backlog = self
            .read(|c| audit::index_backlog(c).map_err(StoreError::from))
            .await?;
        if backlog == 0 {
            return Ok(0);
        }
        self.write(move |tx| audit::index_step(tx.conn(), max).map_err(StoreError::classify))
            .await
    }

    /// Runs [`Store::index_events`] steps until at most `backlog` events are left un-indexed.
    /// Returns how many events it indexed.
    pub async fn index_events_until(&self, backlog: i64) -> Result<u64, StoreError> {
        let mut total = 0u64;
        loop {
            let left = self
                .read(|c| audit::index_backlog(c).map_err(StoreError::from))
                .await?;
            if left <= backlog {
                return Ok(total);
            }
            let n = self
                .write(|tx| {
                    audit::index_step(tx.conn(), audit::INDEX_BATCH).map_err(StoreError::classify)
                })
                .await?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    }

    /// Reads a setting.
    pub async fn setting(&self, key: &'static str) -> Result<Option<String>, StoreError> {
        self.read(move |c| {
            c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(StoreError::from)
        })
        .await
    }

    /// Stops accepting writes; queued writes still finish.
    pub fn close(&self) {
        if let Ok(mut w) = self.inner.writer.lock() {
            w.take();
        }
    }
}

#[cfg(unix)]
fn restrict_permissions(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}
#[cfg(not(unix))]
fn restrict_permissions(_dir: &Path) {}

fn open_connection(path: &Path, options: &StoreOptions) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(StoreError::classify)?;
    conn.busy_timeout(options.busy_timeout)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32768;
         PRAGMA mmap_size = 268435456;
         PRAGMA journal_size_limit = 67108864;",
    )
    .map_err(StoreError::classify)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::Corrupt(format!(
            "the database is at schema version {version}, newer than this Gatehouse ({known}); upgrade Gatehouse"
        )));
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::classify)?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Corrupt(format!("migration {name} failed: {e}")))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit().map_err(StoreError::classify)?;
        tracing::info!(migration = name, "applied migration");
    }
    Ok(())
}

fn writer_loop(
    conn: Connection,
    jobs: mpsc::Receiver<Job>,
    clock: Arc<dyn Clock>,
    wake: mpsc::SyncSender<()>,
    reset_wanted: Arc<AtomicBool>,
    feed: broadcast::Sender<Event>,
    cursor: FeedCursor,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let committed = run_batch(&conn, batch, clock.now());
        publish(&cursor, &feed, committed, &wake);
        if reset_wanted.swap(false, Ordering::Relaxed) {
            let _ = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);");
        }
    }
    // Fold the WAL back into the database on a clean shutdown.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);");
}

/// Runs one fixed statement through the statement cache: the writer runs these for every job.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// How one job's writes are kept apart from the rest of its batch: a savepoint, or, when the job
/// is alone in its batch, the transaction itself (two statements fewer on the common path).
#[derive(Clone, Copy)]
struct JobScope {
    alone: bool,
}

impl JobScope {
    fn begin(self, conn: &Connection) -> rusqlite::Result<()> {
        if self.alone {
            Ok(())
        } else {
            exec(conn, "SAVEPOINT job")
        }
    }
    fn keep(self, conn: &Connection) -> rusqlite::Result<()> {
        if self.alone {
            Ok(())
        } else {
            exec(conn, "RELEASE job")
        }
    }
    fn undo(self, conn: &Connection) -> rusqlite::Result<()> {
        if self.alone {
            // Leaves an empty transaction open, so the batch's COMMIT still has one to end.
            exec(conn, "ROLLBACK")?;
            exec(conn, "BEGIN IMMEDIATE")
        } else {
            exec(conn, "ROLLBACK TO job")?;
            exec(conn, "RELEASE job")
        }
    }
}

/// WAL size (in pages) past which the writer folds the rest of the WAL into the database itself,
/// so the next write starts the WAL over instead of growing it without bound.
const WAL_RESET_PAGES: i64 = 32_768;

/// Copies committed pages from the WAL into the database off the writer thread, so commits never
/// wait for a checkpoint's fsyncs. Under constant writes a checkpoint running beside the writer
/// never catches up completely, so when the WAL passes [`WAL_RESET_PAGES`] it asks the writer to
/// finish the (by then small) remainder between two batches; the WAL then restarts from its start.
fn checkpointer_loop(conn: Connection, stop: mpsc::Receiver<()>, reset_wanted: Arc<AtomicBool>) {
    loop {
        match stop.recv_timeout(Duration::from_millis(100)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let checkpoint =
            || conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
        match checkpoint() {
            Ok(wal_pages) if wal_pages >= WAL_RESET_PAGES => {
                // Catch up with what was written meanwhile, so the writer's share is small.
                let _ = checkpoint();
                reset_wanted.store(true, Ordering::Relaxed)
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "background checkpoint skipped"),
        }
    }
}

/// The id of the newest event given to subscribers, shared by the writer (which publishes its own
/// events straight after commit) and the tailer (which reads other processes' events from disk).
/// Whoever publishes holds the lock, so every event goes out once and in id order.
type FeedCursor = Arc<Mutex<i64>>;

/// Publishes events the writer just committed, unless another process wrote events in between
/// (a gap in the ids): then the tailer reads everything from disk, in order.
fn publish(
    cursor: &FeedCursor,
    feed: &broadcast::Sender<Event>,
    events: Vec<Event>,
    wake: &mpsc::SyncSender<()>,
) {
    let Some(first) = events.first() else { return };
    let Ok(mut last) = cursor.lock() else { return };
    if first.id != *last + 1 {
        drop(last);
        let _ = wake.try_send(());
        return;
    }
    for ev in events {
        *last = ev.id;
        let _ = feed.send(ev);
    }
}

/// Runs a batch in one transaction; returns the events it committed.
fn run_batch(conn: &Connection, batch: Vec<Job>, now: crate::clock::Millis) -> Vec<Event> {
    let fail_all = |batch: Vec<Job>, why: &StoreError| {
        tracing::warn!(error = %why, "write batch failed; nothing was changed");
        for job in batch {
            job(Err(StoreError::Unavailable(why.to_string())));
        }
    };
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let err = StoreError::classify(e);
        fail_all(batch, &err);
        return Vec::new();
    }
    let mut head = match audit::chain_head(conn) {
        Ok(h) => h,
        Err(e) => {
            let _ = exec(conn, "ROLLBACK");
            fail_all(batch, &StoreError::classify(e));
            return Vec::new();
        }
    };
    let mut appended = Vec::new();
    let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
    let scope = JobScope {
        alone: batch.len() == 1,
    };
    let mut broken: Option<StoreError> = None;
    for job in batch {
        if let Some(e) = &broken {
            job(Err(StoreError::Unavailable(e.to_string())));
            continue;
        }
        if let Err(e) = scope.begin(conn) {
            let e = StoreError::classify(e);
            job(Err(StoreError::Unavailable(e.to_string())));
            broken = Some(e);
            continue;
        }
        let saved_head = head.clone();
        let saved_len = appended.len();
        let mut w = WriteTx {
            conn,
            head: &mut head,
            appended: &mut appended,
            now,
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| job(Ok(&mut w))));
        let (ok, done) = match outcome {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => {
                tracing::error!("a write job panicked; rolling it back");
                if let Err(e) = scope.undo(conn) {
                    broken = Some(StoreError::classify(e));
                }
                head = saved_head;
                appended.truncate(saved_len);
                continue;
            }
        };
        let step = if ok {
            scope.keep(conn)
        } else {
            scope.undo(conn)
        };
        if !ok {
            head = saved_head;
            appended.truncate(saved_len);
        }
        if let Err(e) = step {
            broken = Some(StoreError::classify(e));
        }
        completions.push(done);
    }
    let result = match broken {
        Some(e) => Err(e),
        None => exec(conn, "COMMIT").map_err(StoreError::classify),
    };
    match result {
        Ok(()) => {
            for done in completions {
                done(Ok(()));
            }
            appended
        }
        Err(e) => {
            let _ = exec(conn, "ROLLBACK");
            tracing::warn!(error = %e, "write transaction failed; nothing was changed");
            for done in completions {
                done(Err(StoreError::Unavailable(e.to_string())));
            }
            Vec::new()
        }
    }
}

fn tailer_loop(
    conn: Connection,
    wake: mpsc::Receiver<()>,
    feed: broadcast::Sender<Event>,
    cursor: FeedCursor,
) {
    let mut last_version: i64 = -1;
    loop {
        match wake.recv_timeout(Duration::from_millis(200)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        // data_version changes whenever another connection (in this process or another) commits.
        let version: i64 = match conn.query_row("PRAGMA data_version", [], |r| r.get(0)) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if version == last_version {
            continue;
        }
        last_version = version;
        let Ok(mut last_id) = cursor.lock() else {
            return;
        };
        loop {
            let events = match audit::events_after(&conn, *last_id, 1000) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "feed could not read new events");
                    break;
                }
            };
            let n = events.len();
            for ev in events {
                *last_id = ev.id;
                let _ = feed.send(ev);
            }
            if n < 1000 {
                break;
            }
        }
    }
}

/// Helpers for (de)serialising list columns.
pub(crate) fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}
pub(crate) fn parse_json_list(s: &str) -> Result<Vec<String>, rusqlite::Error> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}
pub(crate) fn space_list(items: &[String]) -> String {
    items.join(" ")
}
pub(crate) fn parse_space_list(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

//! Store benchmarks on real SQLite files (`cargo bench -p gatehouse-core --bench store`): audit
//! appends with the hash chain (one awaited write at a time, and 16 concurrent writers sharing
//! group commits), the newest page of 50 events for one agent over 1,000,000 events, `audit verify`
//! over 1,000,000 events, the Activity view's first page (no filter, an agent, a kind, full-text
//! search) over 1,000,000 events, and token introspection through the core. After the criterion
//! groups it prints a plain summary (p50/p99 latencies, events/s, seconds) that release notes can
//! quote; it also times the background full-text indexer's steps, and text searches while the
//! newest events are not indexed yet.
//!
//! The 1M-event database is built once and cached in `target/bench-fixtures/`, keyed by a version
//! and a fingerprint of the row-hash format, so reruns start measuring at once. Under
//! `cargo test --benches` every benchmark runs once against a small fixture.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use gatehouse_core::approvals::Decision;
use gatehouse_core::audit::{self, EventFilter, EventKind, EventQuery, NewEvent, Outcome};
use gatehouse_core::authority::{AuthorizeOutcome, AuthorizeParams, ConsentProgress, TokenParams};
use gatehouse_core::clock::SystemClock;
use gatehouse_core::oauth::ClientCredentials;
use gatehouse_core::oauth::registration::RegistrationRequest;
use gatehouse_core::{Authority, AuthorityConfig, Store, StoreError, StoreOptions, admin};
use sha2::{Digest, Sha256};
use tokio::runtime::Runtime;

/// Bump when the fixture's contents change; the row-hash fingerprint is added automatically.
const FIXTURE_VERSION: &str = "v1";
const FULL_EVENTS: u64 = 1_000_000;
const QUICK_EVENTS: u64 = 20_000;
const AGENTS: u64 = 100;
const EVENTS_PER_WRITE: u64 = 10_000;
const WRITERS: u64 = 16;
const PAGE: usize = 50;
/// The agent whose pages are read: a typical one, with ~1% of all events.
const PAGED_AGENT: u64 = 42;

fn agent_id(n: u64) -> String {
    format!("agt_{n:032x}")
}

/// SplitMix64: spreads events over agents without a dependency on `rand`'s sequence.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A realistic event: mostly token traffic, some consent and rejections; 5% carry no agent
/// (requests refused before a client was known).
fn fixture_event(i: u64) -> NewEvent {
    let r = mix(i);
    let client = (!r.is_multiple_of(20)).then(|| agent_id((r >> 8) % AGENTS));
    let (kind, outcome) = match (r >> 16) % 10 {
        0..=4 => (EventKind::TokenRefreshed, Outcome::Ok),
        5 | 6 => (EventKind::TokenIssued, Outcome::Ok),
        7 => (EventKind::ConsentApproved, Outcome::Ok),
        8 => (EventKind::TokenRevoked, Outcome::Ok),
        _ => (EventKind::RequestRejected, Outcome::Rejected),
    };
    let detail = serde_json::json!({
        "grant_id": i / 7,
        "access_token_id": format!("{:016x}", mix(i ^ 1)),
        "refresh_token_id": format!("{:016x}", mix(i ^ 2)),
        "scopes": ["repo:read", "issues:write"],
        "audience": ["https://api.github.com"],
        "expires_at": 1_767_225_600_000i64 + i as i64 * 10,
    });
    NewEvent {
        kind,
        outcome,
        client_id: client,
        detail,
    }
}

fn open_store(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default(), Arc::new(SystemClock)).expect("open the store")
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn target_dir() -> PathBuf {
    // target/<profile>/deps/store-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .filter(|t| t.join("CACHEDIR.TAG").exists())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// The cached data dir holding `events` audit events, building it first if needed.
fn fixture(rt: &Runtime, events: u64) -> (PathBuf, Option<Duration>) {
    let fingerprint = audit::row_hash(&[0; 32], 1, 0, "fingerprint", "ok", Some("a"), "{}");
    let name = format!(
        "audit-{events}-{AGENTS}agents-{FIXTURE_VERSION}-{}",
        hex::encode(&fingerprint[..4])
    );
    let root = target_dir().join("bench-fixtures");
    let dir = root.join(&name);
    if dir.join(gatehouse_core::store::DB_FILE).exists() {
        return (dir, None);
    }
    eprintln!("building the {events}-event fixture in {}", dir.display());
    let started = Instant::now();
    let building = root.join(format!("{name}.building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    {
        let store = open_store(&building);
        rt.block_on(async {
            for start in (0..events).step_by(EVENTS_PER_WRITE as usize) {
                let end = (start + EVENTS_PER_WRITE).min(events);
                store
                    .write(move |tx| {
                        for i in start..end {
                            tx.append(fixture_event(i))?;
                        }
                        Ok::<_, StoreError>(())
                    })
                    .await
                    .expect("write fixture events");
            }
            // As the server's background indexer would have by now.
            store
                .index_events_until(0)
                .await
                .expect("index the fixture for search");
        });
        store.close();
    }
    let conn = rusqlite::Connection::open(building.join(gatehouse_core::store::DB_FILE))
        .expect("open the fixture");
    conn.busy_timeout(Duration::from_secs(10)).ok();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint the fixture");
    drop(conn);
    std::fs::rename(&building, &dir).expect("move the fixture into place");
    (dir, Some(started.elapsed()))
}

/// A confidential client holding a live access token, via the real consent flow.
struct Introspector {
    authority: Arc<Authority>,
    creds: ClientCredentials,
    token: String,
}

fn introspector(rt: &Runtime, dir: &Path) -> Introspector {
    let store = open_store(dir);
    let authority = Arc::new(Authority::new(
        store,
        Arc::new(SystemClock),
        AuthorityConfig::new("http://127.0.0.1:1"),
    ));
    let redirect = "http://127.0.0.1:8765/callback";
    rt.block_on(async {
        let reg = authority
            .register(RegistrationRequest {
                redirect_uris: Some(vec![redirect.into()]),
                token_endpoint_auth_method: Some("client_secret_basic".into()),
                grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
                client_name: Some("bench".into()),
                ..Default::default()
            })
            .await
            .expect("register");
        let creds = ClientCredentials::Basic {
            client_id: reg.client_id.clone(),
            secret: reg.client_secret.expect("a secret").expose().to_owned(),
        };
        let verifier = "bench-verifier-0123456789abcdefghijklmnopqrstuvwxyz";
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let outcome = authority
            .authorize(AuthorizeParams {
                client_id: Some(reg.client_id.clone()),
                redirect_uri: Some(redirect.into()),
                response_type: Some("code".into()),
                scope: Some("read".into()),
                code_challenge: Some(challenge),
                code_challenge_method: Some("S256".into()),
                ..Default::default()
            })
            .await;
        let AuthorizeOutcome::AwaitConsent { approval_id } = outcome else {
            panic!("expected a consent prompt, got {outcome:?}")
        };
        authority
            .broker()
            .decide(&approval_id, Decision::approve(), "bench")
            .await
            .expect("approve");
        let ConsentProgress::Redirect(url) = authority.consent_progress(&approval_id).await else {
            panic!("no redirect after approval")
        };
        let code = url::Url::parse(&url)
            .expect("redirect url")
            .query_pairs()
            .find(|(k, _)| k == "code")
            .expect("a code")
            .1
            .into_owned();
        let tokens = authority
            .token(
                TokenParams {
                    grant_type: Some("authorization_code".into()),
                    code: Some(code),
                    redirect_uri: Some(redirect.into()),
                    code_verifier: Some(verifier.into()),
                    ..Default::default()
                },
                creds.clone(),
            )
            .await
            .expect("exchange the code");
        Introspector {
            authority: authority.clone(),
            creds,
            token: tokens.access_token.expose().to_owned(),
        }
    })
}

async fn sequential_appends(store: &Store, from: u64, n: u64) {
    for i in from..from + n {
        store
            .write(move |tx| tx.append(fixture_event(i)))
            .await
            .expect("append");
    }
}

async fn concurrent_appends(store: &Store, from: u64, n: u64) {
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let share = n / WRITERS + u64::from(w < n % WRITERS);
        let store = store.clone();
        tasks.spawn(async move {
            sequential_appends(&store, from + w * 1_000_000_000, share).await;
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("writer task");
    }
}

fn page_filter(before_id: Option<i64>) -> EventFilter {
    EventFilter {
        client_id: Some(agent_id(PAGED_AGENT)),
        before_id,
    }
}

fn read_page(store: &Store, filter: &EventFilter) -> usize {
    store
        .read_blocking(|c| audit::page(c, filter, PAGE).map_err(StoreError::from))
        .expect("page")
        .len()
}

fn bench_appends(c: &mut Criterion, rt: &Runtime, dir: &Path) {
    let store = open_store(dir);
    let mut group = c.benchmark_group("audit_append");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(8));
    let mut next = 0u64;
    group.bench_function("one_event_per_write_sequential", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            rt.block_on(sequential_appends(&store, next, iters));
            next += iters;
            started.elapsed()
        })
    });
    group.bench_function(
        BenchmarkId::new("one_event_per_write_concurrent", WRITERS),
        |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                rt.block_on(concurrent_appends(&store, next, iters));
                next += iters;
                started.elapsed()
            })
        },
    );
    group.finish();
}

/// The Activity view's first pages: what each filter costs over the whole log.
fn activity_queries() -> Vec<(&'static str, EventQuery)> {
    let q = |f: fn(&mut EventQuery)| {
        let mut q = EventQuery {
            limit: PAGE,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    vec![
        ("no_filter", q(|_| {})),
        (
            "one_agent",
            q(|q| q.client_id = Some(agent_id(PAGED_AGENT))),
        ),
        // ~10% of events.
        ("one_kind", q(|q| q.kinds = vec!["consent.approved".into()])),
        (
            "two_kinds",
            q(|q| q.kinds = vec!["token.revoked".into(), "request.rejected".into()]),
        ),
        // A word in every event's detail.
        ("text_common_word", q(|q| q.text = Some("github".into()))),
        // One event's token id: found through the index, not a scan.
        (
            "text_rare_token_id",
            q(|q| q.text = Some(format!("{:016x}", mix(777 ^ 1)))),
        ),
        // An agent's client id, pasted into the search box.
        ("text_agent_id", q(|q| q.text = Some(agent_id(PAGED_AGENT)))),
        // A phrase of common words.
        ("text_phrase", q(|q| q.text = Some("api.github.com".into()))),
        // Prefixes (opt-in with '*'): one common token, and one covering all 100 agents' ids.
        ("text_prefix_common", q(|q| q.text = Some("githu*".into()))),
        (
            "text_prefix_100_agents",
            q(|q| q.text = Some("agt_00000*".into())),
        ),
        (
            "text_and_kind",
            q(|q| {
                q.text = Some("issues".into());
                q.kinds = vec!["token.revoked".into()];
            }),
        ),
    ]
}

fn read_activity(store: &Store, q: &EventQuery) -> usize {
    let q = q.clone();
    store
        .read_blocking(move |c| audit::query(c, &q).map_err(StoreError::from))
        .expect("activity page")
        .len()
}

fn bench_activity(c: &mut Criterion, store: &Store, events: u64) {
    let mut group = c.benchmark_group(format!("activity_first_page_{events}_events"));
    group.measurement_time(Duration::from_secs(3));
    for (name, q) in activity_queries() {
        group.bench_function(name, |b| b.iter(|| read_activity(store, &q)));
    }
    group.finish();
}

fn bench_pages(c: &mut Criterion, store: &Store, events: u64) {
    let mut group = c.benchmark_group(format!("audit_page_{events}_events"));
    group.measurement_time(Duration::from_secs(4));
    let newest = page_filter(None);
    group.bench_function("newest_50_one_agent", |b| {
        b.iter(|| read_page(store, &newest))
    });
    let deep = page_filter(Some(events as i64 / 2));
    group.bench_function("50_one_agent_by_keyset_mid_log", |b| {
        b.iter(|| read_page(store, &deep))
    });
    let all = EventFilter::default();
    group.bench_function("newest_50_all_agents", |b| {
        b.iter(|| read_page(store, &all))
    });
    group.finish();
}

fn bench_verify(c: &mut Criterion, store: &Store, events: u64) {
    let mut group = c.benchmark_group("audit_verify");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(events));
    group.bench_function(BenchmarkId::new("whole_chain", events), |b| {
        b.iter(|| {
            let v = store
                .read_blocking(|c| audit::verify(c).map_err(StoreError::from))
                .expect("verify");
            assert!(
                v.first_bad.is_none(),
                "the fixture's chain is broken: {v:?}"
            );
            v.events
        })
    });
    group.finish();
}

fn bench_introspection(c: &mut Criterion, rt: &Runtime, who: &Introspector) {
    let mut group = c.benchmark_group("introspect");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("sequential", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    introspect_once(who).await;
                }
                started.elapsed()
            })
        })
    });
    group.finish();
}

async fn introspect_once(who: &Introspector) {
    let r = who
        .authority
        .introspect(Some(who.token.clone()), who.creds.clone())
        .await
        .expect("introspect");
    assert!(r.active);
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn latencies(n: usize, mut f: impl FnMut()) -> (Duration, Duration, Duration) {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        f();
        samples.push(started.elapsed());
    }
    samples.sort_unstable();
    (pct(&samples, 50.0), pct(&samples, 99.0), samples[n - 1])
}

struct Summary {
    quick: bool,
    events: u64,
    built_in: Option<Duration>,
}

fn print_summary(rt: &Runtime, s: &Summary, fixture_store: &Store, who: &Introspector) {
    let scale = if s.quick { 100 } else { 1 };
    println!();
    println!("== gatehouse-core store summary ==");
    match s.built_in {
        Some(d) => println!(
            "fixture: {} events over {AGENTS} agents, built in {:.1} s",
            s.events,
            d.as_secs_f64()
        ),
        None => println!(
            "fixture: {} events over {AGENTS} agents ({})",
            s.events,
            if s.quick { "quick run" } else { "cached" }
        ),
    }

    // Audit appends, on a fresh database.
    let dir = tempfile::TempDir::new().expect("temp dir");
    let store = open_store(dir.path());
    let n = 100_000 / scale;
    let mut samples = Vec::with_capacity(n as usize);
    let started = Instant::now();
    rt.block_on(async {
        for i in 0..n {
            let t = Instant::now();
            store
                .write(move |tx| tx.append(fixture_event(i)))
                .await
                .expect("append");
            samples.push(t.elapsed());
        }
    });
    let elapsed = started.elapsed();
    samples.sort_unstable();
    println!(
        "audit appends, 1 event per awaited write: {n} in {:.2} s = {:.0} events/s (write p50 {}, p99 {})",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        micros(pct(&samples, 50.0)),
        micros(pct(&samples, 99.0)),
    );
    let started = Instant::now();
    rt.block_on(concurrent_appends(&store, n, n));
    let elapsed = started.elapsed();
    println!(
        "audit appends, {WRITERS} concurrent writers:   {n} in {:.2} s = {:.0} events/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
    );
    let v = rt
        .block_on(admin::verify_audit(&store))
        .expect("verify appends");
    assert!(v.first_bad.is_none() && v.events == 2 * n, "{v:?}");

    // The same appends with 0006's insert trigger put back on a fresh database: what indexing
    // on the write path cost, measured under the same load as the figures above.
    let with_trigger = tempfile::TempDir::new().expect("temp dir");
    let trigger_store = open_store(with_trigger.path());
    rusqlite::Connection::open(with_trigger.path().join(gatehouse_core::store::DB_FILE))
        .and_then(|c| {
            c.execute_batch(
                "CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN \
                 INSERT INTO events_fts (rowid, kind, client_id, detail) \
                 VALUES (new.id, new.kind, new.client_id, new.detail); END;",
            )
        })
        .expect("restore the insert trigger");
    let started = Instant::now();
    rt.block_on(sequential_appends(&trigger_store, 0, n));
    let sequential = n as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    rt.block_on(concurrent_appends(&trigger_store, n, n));
    let concurrent = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "  for comparison, with 0006's FTS insert trigger restored: {sequential:.0} events/s one at a time, {concurrent:.0} events/s with {WRITERS} writers"
    );
    drop(trigger_store);

    // The full-text indexing those appends no longer did: the background indexer's steps, each
    // one write transaction through the writer (how long it holds other writes back).
    let mut steps = Vec::new();
    let started = Instant::now();
    rt.block_on(async {
        loop {
            let t = Instant::now();
            let indexed = store
                .index_events(audit::INDEX_BATCH)
                .await
                .expect("index step");
            if indexed == 0 {
                break;
            }
            steps.push(t.elapsed());
        }
    });
    let elapsed = started.elapsed();
    steps.sort_unstable();
    println!(
        "full-text indexing of those {} events, {} per step: {:.2} s = {:.0} events/s, {} steps, step p50 {}, max {}",
        2 * n,
        audit::INDEX_BATCH,
        elapsed.as_secs_f64(),
        (2 * n) as f64 / elapsed.as_secs_f64(),
        steps.len(),
        micros(pct(&steps, 50.0)),
        micros(steps[steps.len() - 1]),
    );

    // Searches while the indexer lags: a tail of un-indexed events (about what 16 writers append
    // in a quarter second) scanned before the index is walked.
    let tail = 2_500 / scale;
    rt.block_on(concurrent_appends(&store, 2 * n, tail));
    for (name, q) in activity_queries()
        .into_iter()
        .filter(|(_, q)| q.text.is_some())
    {
        let runs = 200 / scale as usize;
        let mut found = 0;
        let (p50, p99, max) = latencies(runs, || found = read_activity(&store, &q));
        println!(
            "activity first page ({name}) over {} events with the newest {tail} not indexed, {runs} queries: {found} events, p50 {}, p99 {}, max {}",
            2 * n + tail,
            micros(p50),
            micros(p99),
            micros(max)
        );
    }
    drop(store);

    // Pages over the fixture.
    let queries = 10_000 / scale as usize;
    let newest = page_filter(None);
    let (p50, p99, max) = latencies(queries, || {
        assert_eq!(read_page(fixture_store, &newest), PAGE);
    });
    println!(
        "newest {PAGE} events of one agent over {} events, {queries} queries (Store::read_blocking): p50 {}, p99 {}, max {}",
        s.events,
        micros(p50),
        micros(p99),
        micros(max)
    );
    for (name, q) in activity_queries() {
        let n = (queries / 10).max(10);
        let mut found = 0;
        let (p50, p99, max) = latencies(n, || found = read_activity(fixture_store, &q));
        println!(
            "activity first page ({name}) over {} events, {n} queries: {found} events, p50 {}, p99 {}, max {}",
            s.events,
            micros(p50),
            micros(p99),
            micros(max)
        );
    }
    let mut samples = Vec::with_capacity(queries);
    rt.block_on(async {
        for _ in 0..queries {
            let t = Instant::now();
            let page = admin::events_page(fixture_store, newest.clone(), PAGE)
                .await
                .expect("page");
            samples.push(t.elapsed());
            assert_eq!(page.len(), PAGE);
        }
    });
    samples.sort_unstable();
    println!(
        "  same through admin::events_page (async, blocking pool):                        p50 {}, p99 {}",
        micros(pct(&samples, 50.0)),
        micros(pct(&samples, 99.0)),
    );

    // Verify.
    let started = Instant::now();
    let v = fixture_store
        .read_blocking(|c| audit::verify(c).map_err(StoreError::from))
        .expect("verify");
    let took = started.elapsed();
    assert!(v.first_bad.is_none(), "{v:?}");
    println!(
        "audit verify over {} events: {:.2} s ({:.0} events/s)",
        v.events,
        took.as_secs_f64(),
        v.events as f64 / took.as_secs_f64()
    );

    // Introspection through the core (no HTTP).
    let n = 20_000 / scale as usize;
    let mut samples = Vec::with_capacity(n);
    let started = Instant::now();
    rt.block_on(async {
        for _ in 0..n {
            let t = Instant::now();
            introspect_once(who).await;
            samples.push(t.elapsed());
        }
    });
    let elapsed = started.elapsed();
    samples.sort_unstable();
    println!(
        "introspection (core, sequential): {:.0} req/s, p50 {}, p99 {}",
        n as f64 / elapsed.as_secs_f64(),
        micros(pct(&samples, 50.0)),
        micros(pct(&samples, 99.0)),
    );
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let who = Introspector {
                authority: who.authority.clone(),
                creds: who.creds.clone(),
                token: who.token.clone(),
            };
            let per = n / 16;
            tasks.spawn(async move {
                for _ in 0..per {
                    introspect_once(&who).await;
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("introspection task");
        }
    });
    let elapsed = started.elapsed();
    println!(
        "introspection (core, 16 concurrent): {:.0} req/s",
        (n / 16 * 16) as f64 / elapsed.as_secs_f64(),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let quick = !has("--bench") || has("--test") || has("--list");
    let mut c = Criterion::default().configure_from_args();
    let rt = runtime();

    let events = if quick { QUICK_EVENTS } else { FULL_EVENTS };
    let (fixture_dir, built_in) = if quick {
        // Tests only check that every benchmark runs; keep that fast and out of the cache.
        let tmp = std::env::temp_dir().join(format!("gatehouse-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).expect("temp dir");
        let store = open_store(&tmp);
        rt.block_on(async {
            for start in (0..events).step_by(EVENTS_PER_WRITE as usize) {
                store
                    .write(move |tx| {
                        for i in start..(start + EVENTS_PER_WRITE).min(events) {
                            tx.append(fixture_event(i))?;
                        }
                        Ok::<_, StoreError>(())
                    })
                    .await
                    .expect("write fixture events");
            }
            store
                .index_events_until(0)
                .await
                .expect("index the fixture for search");
        });
        (tmp, None)
    } else {
        fixture(&rt, events)
    };
    let fixture_store = open_store(&fixture_dir);

    let scratch = tempfile::TempDir::new().expect("temp dir");
    let who = introspector(&rt, scratch.path());

    bench_appends(&mut c, &rt, &scratch.path().join("appends"));
    bench_pages(&mut c, &fixture_store, events);
    bench_activity(&mut c, &fixture_store, events);
    bench_verify(&mut c, &fixture_store, events);
    bench_introspection(&mut c, &rt, &who);
    c.final_summary();

    let profiling = args.iter().any(|a| a.starts_with("--profile-time"));
    if !has("--list") && !profiling {
        let summary = Summary {
            quick,
            events,
            built_in,
        };
        print_summary(&rt, &summary, &fixture_store, &who);
    }
    if quick {
        drop(fixture_store);
        let _ = std::fs::remove_dir_all(&fixture_dir);
    }
}

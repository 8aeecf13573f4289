//! Throughput of the store's HTTP API over loopback: durable FHIR PUTs per second with 1 and 8
//! connections and Atom feed pages (100 entries) served per second, each printed next to a
//! baseline (`GET /healthz`) measured in the same run with the same client; and the token
//! check of a request with 1, 1,000 and 10,000 clients configured, next to the sha256 of one
//! token that every check makes; and 1,000 long-polls woken by one write (wake-up p50/p99,
//! the write's own answer time, renders made), next to a `GET /healthz` round trip.
//!
//! Run with `cargo bench -p sync-host-store --bench api`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sync_host_store::api::feed::{LongPolls, RenderedPages, entries};
use sync_host_store::api::{ApiState, router, serve};
use sync_host_store::auth::{Client, Clients, Scope, Secret};
use sync_host_store::config::ApiConfig;
use sync_host_store::store::{Precondition, ResourceKey, Store, StoreConfig, WriteRequest};

const TOKEN: &str = "bench-token-0123456789";
/// Request numbers, unique across measurements so every PUT writes a new resource.
static NEXT_REQUEST: AtomicUsize = AtomicUsize::new(0);
/// Long-polls woken by one write in the wake-up measurement.
const WAITERS: usize = 1000;
/// How long each measurement runs.
const WINDOW: Duration = Duration::from_secs(3);

struct Server {
    base: String,
    store: Store,
    long_polls: Arc<LongPolls>,
    pages: Arc<RenderedPages>,
    _dir: tempfile::TempDir,
}

async fn start() -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(
        &dir.path().join("store"),
        StoreConfig {
            node_id: "bench".into(),
            history_retention: 0,
            ..StoreConfig::default()
        },
    )?;
    let clients = Clients::new(vec![Client {
        name: "bench".into(),
        token: Secret::new(TOKEN),
        scopes: [Scope::Read, Scope::Write].into(),
        is_child_node: false,
        data_scope: None,
    }])?;
    let long_polls = Arc::new(LongPolls::default());
    let pages = Arc::new(RenderedPages::default());
    let state = ApiState {
        store: store.clone(),
        // One bench client stands for every child, so it may hold every long-poll.
        config: ApiConfig {
            long_poll_max_per_client: WAITERS,
            ..ApiConfig::default()
        },
        clients: Arc::new(clients),
        long_polls: Arc::clone(&long_polls),
        pages: Arc::clone(&pages),
        refusals: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(listener, router(state), std::future::pending()));
    Ok(Server {
        base,
        store,
        long_polls,
        pages,
        _dir: dir,
    })
}

/// What one request of a measurement does; `n` is a unique request number.
#[derive(Clone, Copy)]
enum Work {
    Health,
    PutPatient,
    FeedPage,
}

async fn one_request(
    client: &reqwest::Client,
    base: &str,
    work: Work,
    n: usize,
) -> anyhow::Result<()> {
    let response = match work {
        Work::Health => client.get(format!("{base}/healthz")).send().await?,
        Work::PutPatient => {
            let id = format!("bench-{n}");
            let body = format!(
                r#"{{"resourceType":"Patient","id":"{id}","name":[{{"family":"Bench","given":["N{n}"]}}],"birthDate":"1990-01-01"}}"#
            );
            client
                .put(format!("{base}/ws/fhir2/R4/Patient/{id}"))
                .bearer_auth(TOKEN)
                .header("content-type", "application/fhir+json")
                .body(body)
                .send()
                .await?
        }
        Work::FeedPage => {
            let page = n % 10 + 1;
            client
                .get(format!("{base}/ws/atomfeed/all/{page}"))
                .bearer_auth(TOKEN)
                .send()
                .await?
        }
    };
    anyhow::ensure!(
        response.status().is_success(),
        "status {}",
        response.status()
    );
    response.bytes().await?;
    Ok(())
}

/// Pages per second built without HTTP: the change-log read alone, and read plus Atom render.
fn measure_in_process(store: &Store) -> anyhow::Result<(f64, f64)> {
    let rounds = 200;
    let started = Instant::now();
    for round in 0..rounds {
        let start = (round % 10) * 100;
        store.changes_by_position(None, start, 100)?;
    }
    let reads = rounds as f64 / started.elapsed().as_secs_f64();
    let config = ApiConfig::default();
    let started = Instant::now();
    for round in 0..rounds {
        let start = (round % 10) * 100;
        let changes = store.changes_by_position(None, start, 100)?;
        let entries = changes
            .iter()
            .map(|change| entries::feed_entry(change, "bench", &config))
            .collect();
        let page = entries::feed_page("bench", "all", round + 1, Default::default(), entries);
        sync_host_feed::render_page(&page);
    }
    let built = rounds as f64 / started.elapsed().as_secs_f64();
    Ok((reads, built))
}

/// Requests per second of `work` over `connections` concurrent connections.
async fn measure(base: &str, work: Work, connections: usize) -> anyhow::Result<f64> {
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        let base = base.to_owned();
        let counter = Arc::clone(&counter);
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < WINDOW {
                let n = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
                one_request(&client, &base, work, n).await?;
                counter.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(counter.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

async fn fill_feed(store: &Store) -> anyhow::Result<()> {
    for batch in 0..10 {
        let requests = (0..100)
            .map(|index| {
                let id = format!("feed-{batch}-{index}");
                let body = format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#);
                WriteRequest {
                    key: ResourceKey::fhir("Patient", &id),
                    body: Some(body),
                    precondition: Precondition::Any,
                    origin: None,
                }
            })
            .collect();
        store.write_all(requests).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = start().await?;
    fill_feed(&server.store).await?;
    for connections in [1, 8] {
        let baseline = measure(&server.base, Work::Health, connections).await?;
        let puts = measure(&server.base, Work::PutPatient, connections).await?;
        println!(
            "{connections} connection(s): FHIR PUT {puts:>8.0}/s   baseline GET /healthz {baseline:>8.0}/s"
        );
    }
    let (reads, built) = measure_in_process(&server.store)?;
    println!(
        "in process: change-log reads of 100 {reads:>8.0}/s   read + Atom render {built:>8.0}/s"
    );
    for connections in [1, 8] {
        let baseline = measure(&server.base, Work::Health, connections).await?;
        let pages = measure(&server.base, Work::FeedPage, connections).await?;
        println!(
            "{connections} connection(s): feed pages (100 entries) {pages:>8.0}/s   baseline GET /healthz {baseline:>8.0}/s"
        );
    }
    measure_token_checks()?;
    measure_wake_up(&server).await?;
    Ok(())
}

/// One write with `WAITERS` long-polls of `recent` waiting: when each got its page, how long
/// the write itself took to be answered, and how many renders served them all.
async fn measure_wake_up(server: &Server) -> anyhow::Result<()> {
    // Each long-poll holds a socket at both ends, in this one process.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let http = reqwest::Client::new();
    let recent = format!("{}/ws/atomfeed/all/recent", server.base);
    let tag = http.get(&recent).bearer_auth(TOKEN).send().await?.headers()["etag"]
        .to_str()?
        .to_owned();
    let waiters: Vec<_> = (0..WAITERS)
        .map(|_| {
            let (http, url, tag) = (http.clone(), format!("{recent}?wait=30"), tag.clone());
            tokio::spawn(async move {
                let response = http
                    .get(url)
                    .bearer_auth(TOKEN)
                    .header("if-none-match", tag)
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "status {}",
                    response.status()
                );
                response.bytes().await?;
                Ok(Instant::now())
            })
        })
        .collect();
    let started = Instant::now();
    while server.long_polls.held() < WAITERS {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "only {} long-polls held",
            server.long_polls.held()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let baseline = {
        let started = Instant::now();
        http.get(format!("{}/healthz", server.base))
            .send()
            .await?
            .bytes()
            .await?;
        started.elapsed()
    };
    let renders = server.pages.renders();
    let written_at = Instant::now();
    one_request(
        &http,
        &server.base,
        Work::PutPatient,
        NEXT_REQUEST.fetch_add(1, Ordering::Relaxed),
    )
    .await?;
    let write = written_at.elapsed();
    let mut woken = Vec::with_capacity(WAITERS);
    for waiter in waiters {
        woken.push(waiter.await?? - written_at);
    }
    woken.sort();
    let at = |q: f64| woken[((woken.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "{WAITERS} long-polls, one write: woken p50 {:.1} ms, p99 {:.1} ms; the write answered in {:.1} ms; {} render(s)   baseline GET /healthz {:.2} ms",
        at(0.5),
        at(0.99),
        write.as_secs_f64() * 1e3,
        server.pages.renders() - renders,
        baseline.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Nanoseconds per token check (a found client) with `sizes` clients, and the baseline.
fn measure_token_checks() -> anyhow::Result<()> {
    use sha2::Digest;
    const CHECKS: usize = 200_000;
    let started = Instant::now();
    let mut sink = 0u8;
    for i in 0..CHECKS {
        sink ^= sha2::Sha256::digest(format!("token-{}", i % 1000).as_bytes())[0];
    }
    let baseline = started.elapsed().as_nanos() as f64 / CHECKS as f64;
    for size in [1usize, 1_000, 10_000] {
        let clients = (0..size)
            .map(|i| Client {
                name: format!("clinic-{i}"),
                token: Secret::new(format!("token-{i}")),
                scopes: [Scope::Read].into(),
                is_child_node: true,
                data_scope: None,
            })
            .collect();
        let clients = Clients::new(clients)?;
        let started = Instant::now();
        for i in 0..CHECKS {
            let found = clients.authenticate(&format!("token-{}", i % size));
            sink ^= u8::from(found.is_some());
        }
        let per_check = started.elapsed().as_nanos() as f64 / CHECKS as f64;
        println!(
            "token check, {size:>6} clients: {per_check:>6.0} ns   baseline sha256 of one token {baseline:>6.0} ns"
        );
    }
    std::hint::black_box(sink);
    Ok(())
}

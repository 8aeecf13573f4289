//! A parent serving a fleet of children, measured black-box: a separate `sync-host serve`
//! process with 10,000 child clients configured and 10,000 resources, and the children as
//! real HTTP clients on loopback (this process, on the same cores). Every figure is printed
//! next to a baseline from the same run: the idle parent, a `/healthz` round trip, a write
//! nobody waits for, a cold render of every page.
//!
//! Run: `cargo bench -p sync-host --bench fleet`. Sizes: `BENCH_FLEET_CLIENTS` (10,000),
//! `BENCH_FLEET_RESOURCES` (10,000), `BENCH_FLEET_POLLERS` (1,000), `BENCH_FLEET_HELD`
//! (5,000), `BENCH_FLEET_READERS` (100), `BENCH_FLEET_SECS` (10);
//! `BENCH_FLEET_LEAST_INTERVAL_MS` sets the parent's `long_poll_least_interval_ms` (its
//! default otherwise).

#[path = "fleet/load.rs"]
mod load;
#[path = "fleet/many.rs"]
mod many;
#[path = "fleet/parent.rs"]
mod parent;
// Shared with the catch-up bench, which uses more of them than this one.
#[allow(dead_code)]
#[path = "catchup/child.rs"]
mod child;
#[allow(dead_code)]
#[path = "catchup/proc_stats.rs"]
mod proc_stats;

use std::time::Duration;

use load::{CpuWindow, Latencies};
use parent::Parent;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

struct Sizes {
    clients: usize,
    resources: usize,
    pollers: usize,
    held: usize,
    readers: usize,
    secs: u64,
}

fn main() -> anyhow::Result<()> {
    // This process is 5,000 children: it needs their descriptors as the parent does.
    sync_host::node::limits::raise_open_files();
    let sizes = Sizes {
        clients: setting("BENCH_FLEET_CLIENTS", 10_000),
        resources: setting("BENCH_FLEET_RESOURCES", 10_000),
        pollers: setting("BENCH_FLEET_POLLERS", 1_000),
        held: setting("BENCH_FLEET_HELD", 5_000),
        readers: setting("BENCH_FLEET_READERS", 100),
        secs: setting("BENCH_FLEET_SECS", 10) as u64,
    };
    anyhow::ensure!(
        sizes.pollers.max(sizes.held).max(sizes.readers) <= sizes.clients,
        "BENCH_FLEET_CLIENTS must cover the pollers, the held long-polls and the readers"
    );
    tokio::runtime::Runtime::new()?.block_on(run(sizes))
}

async fn run(sizes: Sizes) -> anyhow::Result<()> {
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_sync-host"));
    let started = std::time::Instant::now();
    let least_interval = std::env::var("BENCH_FLEET_LEAST_INTERVAL_MS").ok();
    let api_toml = least_interval
        .as_ref()
        .map(|ms| format!("long_poll_least_interval_ms = {ms}\n"))
        .unwrap_or_default();
    let parent = Parent::start(program, sizes.resources, sizes.clients, &api_toml).await?;
    println!(
        "parent: `sync-host serve`, {} child clients configured, {} resources, ready in {:.1} s; \
         long_poll_least_interval_ms = {}",
        sizes.clients,
        sizes.resources,
        started.elapsed().as_secs_f64(),
        least_interval.as_deref().unwrap_or("default")
    );
    let http = load::http()?;
    let idle = idle(&http, &parent).await?;
    polling(&http, &parent, &sizes, &idle).await?;
    waking(&http, &parent, &sizes).await?;
    sustained(&http, &parent, &sizes).await?;
    holding(&http, &parent, &sizes, &idle).await?;
    storm(&http, &parent, &sizes).await?;
    parent.stop().await
}

/// The idle baseline: the parent's cores doing nothing, and a `/healthz` round trip.
struct Idle {
    healthz_p99_ms: f64,
}

async fn idle(http: &reqwest::Client, parent: &Parent) -> anyhow::Result<Idle> {
    let cpu = CpuWindow::start(parent.pid);
    let mut healthz = load::healthz(http, parent, 500).await?;
    let (_, cores) = cpu.finish();
    println!(
        "baseline, idle parent: /healthz {} over {} requests; parent {cores:.3} core",
        healthz.summary(),
        healthz.len()
    );
    Ok(Idle {
        healthz_p99_ms: healthz.p99_ms(),
    })
}

async fn polling(
    http: &reqwest::Client,
    parent: &Parent,
    sizes: &Sizes,
    idle: &Idle,
) -> anyhow::Result<()> {
    let cpu = CpuWindow::start(parent.pid);
    let (mut latencies, other) =
        load::poll_every_second(http, parent, sizes.pollers, sizes.secs).await?;
    let (_, cores) = cpu.finish();
    println!(
        "{} of {} clients polling recent every second with If-None-Match: {} over {} polls \
         ({other} not 304; baseline /healthz p99 {:.2} ms); parent {cores:.3} core \
         [target p99 < 5 ms, < 0.2 core]",
        sizes.pollers,
        sizes.clients,
        latencies.summary(),
        latencies.len(),
        idle.healthz_p99_ms,
    );
    Ok(())
}

async fn waking(http: &reqwest::Client, parent: &Parent, sizes: &Sizes) -> anyhow::Result<()> {
    const ROUNDS: usize = 5;
    let mut alone = Latencies::default();
    for round in 0..ROUNDS {
        alone.record(load::write(http, parent, &format!("alone-{round}")).await?);
    }
    let (mut writes, mut wake) = (Latencies::default(), Latencies::default());
    let (mut woken, mut failed, mut cpu) = (0, 0, 0.0);
    for round in 0..ROUNDS {
        // One write into a quiet tree: every child was answered long enough ago that the
        // parent's least interval between two answers to it does not hold it back.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let result =
            load::wake_round(http, parent, sizes.pollers, &format!("wake-{round}")).await?;
        writes.record(result.write);
        wake.extend(result.wake);
        woken += result.woken;
        failed += result.failed;
        cpu += result.parent_cpu;
    }
    println!(
        "baseline, a write nobody waits for: answered {}",
        alone.summary()
    );
    println!(
        "{} long-polls, one write ({ROUNDS} rounds): write answered {}; woken {woken} of {} \
         ({failed} failed), wake-up {}; parent {:.1} ms CPU per write \
         [target wake-up p99 < 50 ms, write < 5 ms]",
        sizes.pollers,
        writes.summary(),
        sizes.pollers * ROUNDS,
        wake.summary(),
        cpu / ROUNDS as f64 * 1000.0
    );
    Ok(())
}

async fn sustained(http: &reqwest::Client, parent: &Parent, sizes: &Sizes) -> anyhow::Result<()> {
    let (alone, _) = load::sustained_writes(http, parent, 0, sizes.secs, "steady-alone").await?;
    let (cores, answers) =
        load::sustained_writes(http, parent, sizes.pollers, sizes.secs, "steady").await?;
    println!(
        "10 writes/s for {} s with {} long-polls asking again after each answer: parent \
         {cores:.3} core, {answers} answers (baseline, the same writes with nobody waiting: \
         {alone:.3} core) [target < 0.5 core]",
        sizes.secs, sizes.pollers
    );
    Ok(())
}

async fn holding(
    http: &reqwest::Client,
    parent: &Parent,
    sizes: &Sizes,
    idle: &Idle,
) -> anyhow::Result<()> {
    let mut held = many::hold(http, parent, sizes.held, "held-wake").await?;
    println!(
        "{} long-polls opened at once (node bound {}): {} held, {} woken by one write \
         (wake-up {}), {} failed{}; /healthz meanwhile {} over {} requests, {} failed \
         (baseline idle p99 {:.2} ms) [target: no refused connection, /healthz answers]",
        sizes.held,
        parent::LONG_POLL_MAX_WAITERS,
        held.held,
        held.woken,
        held.wake.summary(),
        held.failed,
        held.first_failure
            .map(|failure| format!(" (first: {failure})"))
            .unwrap_or_default(),
        held.healthz.summary(),
        held.healthz.len(),
        held.healthz_failed,
        idle.healthz_p99_ms,
    );
    Ok(())
}

async fn storm(http: &reqwest::Client, parent: &Parent, sizes: &Sizes) -> anyhow::Result<()> {
    let pages = many::archive_pages(http, parent).await?;
    // The baseline: one reader, plain pages, each rendered for it (nothing cached yet).
    let plain = reqwest::Client::builder()
        .no_gzip()
        .no_zstd()
        .timeout(Duration::from_secs(60))
        .build()?;
    let (cold, _) = many::storm(&plain, parent, 1, pages).await?;
    let (warm, rate) = many::storm(http, parent, sizes.readers, pages).await?;
    println!(
        "catch-up storm, {} children reading all {pages} archive pages at once (gzip): \
         parent {:.3} ms CPU per page served, {rate:.0} pages/s (baseline, each page rendered \
         for one reader: {:.3} ms per page) = {:.3}x [target <= 0.1x]",
        sizes.readers,
        warm * 1000.0,
        cold * 1000.0,
        warm / cold
    );
    Ok(())
}

//! Sync engine figures, each next to a baseline measured in the same run:
//! catch-up throughput of a fresh child (a separate `sync-host run` process) pulling N FHIR
//! resources with plugins, audit and durable markers, against a plain loop copying the same
//! resources over the same HTTP stack; HTTP requests per event; the child's resident memory;
//! the propagation latency of one change from the root to a grandchild with long-poll; and
//! the catch-up of a clinic whose parent scopes it to one managing organisation (a tenth of
//! the documents: the harness's five organisations are each split in two before the parent is
//! filled, and the bench's own documents name ten), next to the unscoped one. PouchDB
//! replicates the harness's documents as generated.
//!
//! When `node` and the PouchDB harness (`../shared/peers/pouchdb`, or `BENCH_POUCHDB`) are
//! there, both systems replicate the harness's documents and PouchDB's figure is printed next
//! to ours; otherwise the bench uses its own documents and says so.
//!
//! Run: `cargo bench -p sync-host --bench catchup` (`BENCH_N=20000` for a shorter run;
//! `BENCH_SKIP_POUCHDB=1` leaves PouchDB out; `BENCH_CATCH_UP_PAGE_MAX=100` turns the parent's
//! spans of archive pages off). A last run catches up over an emulated clinic link (network
//! namespaces and `tc netem`, needing root; `BENCH_SLOW_N` resources, 10,000 by default;
//! `BENCH_SKIP_SLOW_LINK=1` leaves it out; `BENCH_SKIP_SCOPED=1` leaves the scoped clinic out).

#[path = "catchup/bootstrap.rs"]
mod bootstrap;
#[path = "catchup/child.rs"]
mod child;
#[path = "catchup/peer.rs"]
mod peer;
#[path = "catchup/proc_stats.rs"]
mod proc_stats;
#[path = "catchup/scoped.rs"]
mod scoped;
#[path = "catchup/slow_link.rs"]
mod slow_link;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sync_host::network::{Network, NodeSpec, sample};
use sync_host_store::store::{Precondition, ResourceKey, Store, WriteRequest};

fn resources() -> usize {
    std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn body(i: usize) -> (String, String, String) {
    let id = format!("r-{i}");
    let note = "clinical note ".repeat(80);
    match i % 3 {
        0 => (
            "Patient".into(),
            id.clone(),
            sample::managed_patient(
                &id,
                &note[..700],
                "Otieno",
                "1984-03-02",
                &format!("org-{}", (i / 3) % 10),
            ),
        ),
        1 => (
            "Encounter".into(),
            id.clone(),
            sample::encounter(&id, &format!("r-{}", i - i % 3), "2026-11-01").replace(
                "\"status\"",
                &format!("\"text\":{{\"div\":\"{}\"}},\"status\"", &note[..900]),
            ),
        ),
        _ => (
            "Observation".into(),
            id.clone(),
            sample::weight(&id, &format!("r-{}", i - i % 3), "72.50").replace(
                "\"status\"",
                &format!("\"note\":[{{\"text\":\"{}\"}}],\"status\"", &note[..800]),
            ),
        ),
    }
}

/// Writes one FHIR resource on its own task, so many writes share the store's group commits.
fn spawn_put(
    store: &Store,
    resource_type: &str,
    id: String,
    body: String,
) -> tokio::task::JoinHandle<
    Result<sync_host_store::store::WriteOutcome, sync_host_store::store::StoreError>,
> {
    let store = store.clone();
    let key = ResourceKey::fhir(resource_type, id);
    tokio::spawn(async move {
        store
            .write(WriteRequest {
                key,
                body: Some(body),
                precondition: Precondition::Any,
                origin: None,
            })
            .await
    })
}

/// Fills the parent with the harness's NDJSON when there is one, else with the bench's own
/// documents; returns the bytes of JSON loaded and the NDJSON file, if any.
/// Fills the parent with the harness's documents (`generated`: their size and NDJSON file)
/// or, without them, the bench's own; returns the bytes of JSON written.
async fn fill_parent(
    store: &Store,
    n: usize,
    generated: Option<(u64, &Path)>,
) -> anyhow::Result<usize> {
    let Some((bytes, ndjson)) = generated else {
        return fill(store, n).await;
    };
    let started = Instant::now();
    let totals = sync_host_store::store::import::import_path(store, ndjson, |_| {}).await?;
    println!(
        "store import of the parent: {} resources in {:.1} s = {:.0}/s",
        totals.resources,
        started.elapsed().as_secs_f64(),
        totals.resources as f64 / started.elapsed().as_secs_f64()
    );
    Ok(bytes as usize)
}

async fn fill(store: &Store, n: usize) -> anyhow::Result<usize> {
    let mut bytes = 0;
    let mut pending = Vec::new();
    for i in 0..n {
        let (ty, id, body) = body(i);
        bytes += body.len();
        pending.push(spawn_put(store, &ty, id, body));
        if pending.len() == 1000 {
            for p in pending.drain(..) {
                p.await??;
            }
        }
    }
    for p in pending {
        p.await??;
    }
    Ok(bytes)
}

/// Bytes on the wire per resource for a feed page and a FHIR search page of the parent, plain
/// and with each compression a client may ask for.
async fn wire_bytes(base: &str, token: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().no_gzip().no_zstd().build()?;
    let pages = [
        ("feed page", format!("{base}/ws/atomfeed/all/1"), 100.0),
        (
            "FHIR search",
            format!("{base}/ws/fhir2/R4/Observation?_count=100"),
            100.0,
        ),
    ];
    println!("bytes on the wire per resource (compression as the client asks):");
    for (what, url, resources) in pages {
        let mut figures = Vec::new();
        for encoding in ["identity", "gzip", "zstd"] {
            let response = client
                .get(&url)
                .bearer_auth(token)
                .header("accept-encoding", encoding)
                .send()
                .await?;
            figures.push(response.bytes().await?.len() as f64 / resources);
        }
        println!(
            "  {what:<12} plain {:>7.0}   gzip {:>7.0} ({:.1}x)   zstd {:>7.0} ({:.1}x)",
            figures[0],
            figures[1],
            figures[0] / figures[1],
            figures[2],
            figures[0] / figures[2]
        );
    }
    Ok(())
}

async fn parent_requests(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .bearer_auth(token)
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("sync_host_http_requests_total{") && !l.contains("api=\"metrics\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// The baseline: page through the parent's FHIR search and write every resource into a fresh
/// store, with no feed, no plugins and no audit.
const RESOURCE_TYPES: [&str; 3] = ["Patient", "Encounter", "Observation"];

async fn plain_copy(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    target: &Store,
) -> anyhow::Result<usize> {
    let mut copied = 0;
    for ty in RESOURCE_TYPES {
        let mut url = Some(format!("{base}/ws/fhir2/R4/{ty}?_count=100"));
        while let Some(next) = url.take() {
            let bundle: serde_json::Value = http
                .get(&next)
                .bearer_auth(token)
                .send()
                .await?
                .json()
                .await?;
            let mut writes = Vec::new();
            for entry in bundle["entry"].as_array().cloned().unwrap_or_default() {
                let id = entry["resource"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let body = entry["resource"].to_string();
                writes.push(spawn_put(target, ty, id, body));
            }
            for w in writes {
                w.await??;
                copied += 1;
            }
            url = bundle["link"].as_array().and_then(|links| {
                links
                    .iter()
                    .find(|l| l["relation"] == "next")
                    .and_then(|l| l["url"].as_str())
                    .map(|u| {
                        if u.starts_with("http") {
                            u.to_string()
                        } else {
                            format!("{base}{u}")
                        }
                    })
            });
        }
    }
    Ok(copied)
}

async fn catch_up() -> anyhow::Result<()> {
    let n = resources();
    let dir = tempfile::tempdir()?;
    let mut parent_spec = NodeSpec::new("national", None);
    parent_spec.history_retention = 1;
    parent_spec.page_size = std::env::var("BENCH_PAGE_SIZE")
        .ok()
        .and_then(|v| v.parse().ok());
    // `BENCH_CATCH_UP_PAGE_MAX=100` (the page size) serves no spans, for comparing.
    parent_spec.catch_up_page_max = std::env::var("BENCH_CATCH_UP_PAGE_MAX")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut child_spec = NodeSpec::new("clinic", Some("national"));
    child_spec.push = false;
    let harness = match peer::harness() {
        Ok(path) => Some(path),
        Err(why) => {
            println!("PouchDB peer not available ({why}); using the bench's own documents");
            None
        }
    };
    let ndjson = dir.path().join("resources.ndjson");
    let generated = match &harness {
        Some(harness) => {
            peer::generate(harness, n, &ndjson).map_err(anyhow::Error::msg)?;
            Some(scoped::split_organizations(&ndjson)?)
        }
        None => None,
    };
    let scope_key = match generated {
        Some(_) => scoped::first_organization(&ndjson)?,
        None => "Organization/org-0".to_owned(),
    };
    let mut scoped_spec = NodeSpec::new("clinic-scoped", Some("national"));
    scoped_spec.push = false;
    scoped_spec.data_scope = Some(vec![scope_key.clone()]);
    let network = Network::start(
        dir.path(),
        vec![parent_spec, child_spec.clone(), scoped_spec],
    )
    .await?;
    // The in-process child (driven by hand, so idle) only provides a config and a client at the
    // parent; the measured child is a separate process with its own data directory.
    let parent = &network.nodes[0];
    let store = parent
        .running
        .handle
        .store
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no store"))?;
    let started = Instant::now();
    let bytes = fill_parent(&store, n, generated.map(|bytes| (bytes, ndjson.as_path()))).await?;
    println!(
        "parent filled with {n} resources ({:.1} MB of JSON) in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let http = reqwest::Client::new();
    let base = parent.running.base_url().to_string();
    wire_bytes(&base, &parent.admin_token).await?;

    let baseline_store = Store::open(
        &dir.path().join("baseline"),
        sync_host_store::store::StoreConfig {
            node_id: "baseline".into(),
            history_retention: 1,
            ..sync_host_store::store::StoreConfig::default()
        },
    )?;
    let started = Instant::now();
    let copied = plain_copy(&http, &base, &parent.admin_token, &baseline_store).await?;
    let plain = copied as f64 / started.elapsed().as_secs_f64();

    let child_config = network.nodes[1].config_path.clone();
    let child_dir = network.nodes[1].dir.clone();
    let child_token = network.nodes[1].admin_token.clone();
    let text = std::fs::read_to_string(&child_config)?
        .replace(
            &child_dir.join("data").display().to_string(),
            &child_dir.join("data-process").display().to_string(),
        )
        .replace("interval_secs = 0", "interval_secs = 1");
    let process_config = child_dir.join("process.toml");
    std::fs::write(&process_config, text)?;
    let before = parent_requests(&http, &base, &parent.admin_token).await?;
    let started = Instant::now();
    // The child logs as a user's node does, unless `BENCH_CHILD_LOG` asks for its debug log.
    let log_level = match std::env::var_os("BENCH_CHILD_LOG") {
        Some(_) => "sync_host=debug,sync_host_runtime=info",
        None => "info",
    };
    let child_bin = child_program();
    let stderr = match std::env::var_os("BENCH_CHILD_LOG") {
        Some(path) => Stdio::from(std::fs::File::create(path)?),
        None => Stdio::null(),
    };
    let (mut child, child_url) =
        child::start(child_bin, log_level, &process_config, stderr).await?;
    let pid = child.id().unwrap_or(0);
    // `BENCH_PERF=perf.data` records a CPU profile of the child during the catch-up.
    let profiler = match std::env::var_os("BENCH_PERF") {
        Some(out) => Some(
            std::process::Command::new("perf")
                .args(["record", "-F", "99", "--call-graph", "dwarf,16384", "-p"])
                .arg(pid.to_string())
                .arg("-o")
                .arg(out)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        ),
        None => None,
    };
    // Plugins are compiled before the node announces itself: CPU from here on is catch-up.
    let cpu_at_start = proc_stats::cpu_seconds(pid);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(status) = child::status(&http, &child_url, &child_token).await? else {
            continue;
        };
        let done = status["counts"]["audit_records"].as_u64().unwrap_or(0) as usize;
        if done >= n {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            anyhow::bail!("catch-up did not finish within an hour ({done} of {n})");
        }
    }
    let elapsed = started.elapsed();
    let status = child::status(&http, &child_url, &child_token).await?;
    let steady = status.and_then(|s| s["pull"]["progress"]["per_second"].as_f64());
    let requests = parent_requests(&http, &base, &parent.admin_token).await? - before;
    if let Some(mut profiler) = profiler {
        std::process::Command::new("kill")
            .args(["-INT", &profiler.id().to_string()])
            .status()?;
        profiler.wait()?;
    }
    let rss = proc_stats::rss_kib(pid);
    let rss_anon = proc_stats::rss_anon_kib(pid);
    let cpu = proc_stats::cpu_seconds(pid);
    let written = proc_stats::disk_bytes_written(pid);
    child.kill().await.ok();
    let _ = child.wait().await;
    let data_bytes = proc_stats::dir_bytes(&child_dir.join("data-process"));
    let store_bytes = proc_stats::dir_bytes(&child_dir.join("data-process").join("store"));
    let rate = n as f64 / elapsed.as_secs_f64();
    println!(
        "catch-up of {n} FHIR resources by a fresh child process (plugins, audit, durable markers):"
    );
    println!(
        "  sync-host pull, end to end {rate:>10.0} resources/s   (process start, plugin compile, catch-up)"
    );
    if let Some(steady) = steady {
        println!(
            "  sync-host pull, catch-up   {steady:>10.0} resources/s   (target >= 10,000/s; the child's own progress figure)"
        );
    }
    println!("  plain copy, same HTTP      {plain:>10.0} resources/s");
    println!(
        "  ratio                      {:>10.2}x           (target >= 0.5x)",
        rate / plain
    );
    println!(
        "  requests to the parent     {:>10.4} per event   ({requests:.0} in all; OpenMRS Sync 2.0: ~6 + 2/5)",
        requests / n as f64
    );
    if let (Some(cpu), Some(at_start)) = (cpu, cpu_at_start) {
        println!(
            "  child CPU per resource     {:>10.1} us          (target <= 40 us; {:.1} CPU s after start-up, {cpu:.1} in all)",
            (cpu - at_start) * 1e6 / n as f64,
            cpu - at_start
        );
    }
    if let Some(kib) = rss {
        println!(
            "  child resident memory      {:>10.1} MiB after the catch-up (target < 150 MiB; {:.1} MiB of it anonymous)",
            kib as f64 / 1024.0,
            rss_anon.unwrap_or(0) as f64 / 1024.0
        );
    }
    let json = bytes as f64;
    println!(
        "  child data directory       {:>10.2}x the JSON  ({:.1} MB; target <= 1.5x; store {:.2}x, sync state and audit {:.2}x)",
        data_bytes as f64 / json,
        data_bytes as f64 / 1e6,
        store_bytes as f64 / json,
        data_bytes.saturating_sub(store_bytes) as f64 / json
    );
    if let Some(written) = written {
        println!(
            "  child disk bytes written   {:>10.2}x the JSON  ({:.1} MB; target <= 3x)",
            written as f64 / json,
            written as f64 / 1e6
        );
    }
    if std::env::var_os("BENCH_SKIP_SCOPED").is_none() {
        let unscoped = scoped::Unscoped {
            resources: n,
            elapsed,
            cpu_seconds: cpu.zip(cpu_at_start).map(|(cpu, start)| cpu - start),
            requests,
        };
        let clinic = scoped::Clinic {
            parent_store: &store,
            parent_base: &base,
            parent_token: &parent.admin_token,
            config: &network.nodes[2].config_path,
            dir: &network.nodes[2].dir,
            admin_token: &network.nodes[2].admin_token,
            scope: &scope_key,
        };
        scoped::run(clinic, &unscoped, child_program()).await?;
    }
    if std::env::var_os("BENCH_SKIP_SNAPSHOT").is_none() {
        let tree = bootstrap::Tree {
            parent_store: &store,
            parent_base: &base,
            parent_token: &parent.admin_token,
            child_config_text: &std::fs::read_to_string(&process_config)?,
            child_dir: &child_dir,
            child_token: &child_token,
        };
        bootstrap::run(tree, n, &http).await?;
    }
    network.shutdown().await;
    if let Some(harness) = harness.filter(|_| std::env::var_os("BENCH_SKIP_POUCHDB").is_none()) {
        match peer::replicate(&harness, n) {
            Ok(pouch) => {
                for line in &pouch.summary {
                    println!("  {line}");
                }
                println!(
                    "  sync-host / PouchDB        {:>10.2}x           (target >= 5x; PouchDB's best setup, same documents)",
                    rate / pouch.docs_per_second
                );
            }
            Err(why) => println!("  PouchDB replication failed: {why}"),
        }
    }
    Ok(())
}

async fn latency() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut specs = vec![
        NodeSpec::new("root", None),
        NodeSpec::new("district", Some("root")),
        NodeSpec::new("clinic", Some("district")),
    ];
    for spec in specs.iter_mut().skip(1) {
        spec.push = false;
        spec.follow = true;
        spec.interval_secs = 30;
    }
    let network = Network::start(dir.path(), specs).await?;
    let root = network.nodes[0]
        .running
        .handle
        .store
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no store"))?;
    let clinic = network.nodes[2]
        .running
        .handle
        .store
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no store"))?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let changes = if std::env::var_os("BENCH_QUICK").is_some() {
        30
    } else {
        200
    };
    let mut samples = Vec::with_capacity(changes);
    for i in 0..changes {
        let id = format!("lat-{i}");
        let started = Instant::now();
        sample::put_fhir(
            &root,
            "Patient",
            &id,
            sample::patient(&id, "Amina", "Otieno", "1984-03-02"),
        )
        .await?;
        let key = ResourceKey::fhir("Patient", id.as_str());
        loop {
            if clinic.read(&key)?.is_some() {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                anyhow::bail!("change {id} did not reach the grandchild within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    let pct =
        |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    let http = reqwest::Client::new();
    let health = format!("{}/healthz", network.nodes[0].running.base_url());
    http.get(&health).send().await?;
    let started = Instant::now();
    for _ in 0..100 {
        http.get(&health).send().await?;
    }
    let rtt = started.elapsed().as_secs_f64() * 1e3 / 100.0;
    println!("propagation root -> district -> clinic with long-poll ({changes} changes):");
    println!("  p50 {:>8.1} ms   (target < 100 ms)", pct(0.5));
    println!("  p99 {:>8.1} ms", pct(0.99));
    println!("  baseline: one loopback HTTP round trip {rtt:.2} ms");
    network.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        if std::env::var_os("BENCH_SKIP_LATENCY").is_none() {
            latency().await?;
        }
        catch_up().await?;
        if std::env::var_os("BENCH_SKIP_SLOW_LINK").is_none() {
            let n = std::env::var("BENCH_SLOW_N")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(10_000);
            slow_link::run(n, child_program()).await?;
        }
        Ok(())
    })
}

/// The `sync-host` binary the child processes run: this build's, or `BENCH_CHILD_BIN` to
/// compare two builds.
fn child_program() -> std::ffi::OsString {
    std::env::var_os("BENCH_CHILD_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_sync-host").into())
}

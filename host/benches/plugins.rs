//! Plugin platform figures, each next to a native Rust baseline measured in the same run:
//! event-filter call overhead (one call per event, and batches of 100), a 100-resource FHIR
//! fetch through the wasm `fhir` plugin against a loopback node, plugin start-up (compile,
//! cache, instantiation), and classification through the `classifier-paths` plugin against
//! the built-in classifier.
//!
//! Run: `cargo bench -p sync-host --bench plugins` (set `BENCH_QUICK=1` for a short run).

#[path = "plugins/classify.rs"]
mod classify;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use sync_host::default_plugins::default_plugins;
use sync_host::network::{Network, NodeSpec, sample};
use sync_host_runtime::{
    Action, AllowedEndpoint, Credentials, Direction, Endpoint, Event, EventFilter, HttpAccess,
    Link, PluginRuntime, ResourceClient, Role, RuntimeConfig,
};

fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
}

fn event(i: usize) -> Event {
    Event {
        id: format!("tag:bench:{i}"),
        sequence: Some(i as u64),
        category: if i.is_multiple_of(3) {
            "obs"
        } else {
            "patient"
        }
        .into(),
        action: Action::Updated,
        resource_type: "Patient".into(),
        resource_id: format!("p-{i}"),
        links: vec![Link {
            client: "fhir".into(),
            href: format!("/ws/fhir2/R4/Patient/p-{i}"),
        }],
        tags: vec![],
        origin: Some("clinic-7".into()),
        version: Some("3".into()),
        content_hash: Some("0".repeat(64)),
        raw: "x".repeat(800),
    }
}

/// The native equivalent of `filter-category` with `{"deny":["obs"]}`.
fn native_accept(deny: &BTreeSet<String>, events: &[Event]) -> Vec<bool> {
    events
        .iter()
        .map(|e| {
            !deny.contains(&e.category.to_ascii_lowercase())
                && !deny.contains(&e.resource_type.to_ascii_lowercase())
        })
        .collect()
}

fn per_event(elapsed: Duration, events: usize) -> f64 {
    elapsed.as_secs_f64() * 1e6 / events as f64
}

async fn filter_overhead(runtime: &PluginRuntime) -> anyhow::Result<()> {
    let bytes = default_plugins()
        .iter()
        .find(|(n, _)| *n == "filter-category")
        .map(|(_, b)| *b)
        .unwrap_or_default();
    let plugin = runtime.load_bytes("filter-category", bytes).await?;
    let filter = plugin.event_filter(r#"{"deny":["obs"]}"#).await?;
    let events: Vec<Event> = (0..100).map(event).collect();
    let rounds = if quick() { 20 } else { 200 };
    filter.accept(Direction::Pull, &events).await?;
    let started = Instant::now();
    for _ in 0..rounds {
        for e in &events {
            filter
                .accept(Direction::Pull, std::slice::from_ref(e))
                .await?;
        }
    }
    let single = per_event(started.elapsed(), rounds * events.len());
    let started = Instant::now();
    for _ in 0..rounds {
        filter.accept(Direction::Pull, &events).await?;
    }
    let batched = per_event(started.elapsed(), rounds * events.len());
    let deny = BTreeSet::from(["obs".to_string()]);
    let started = Instant::now();
    let mut kept = 0;
    for _ in 0..rounds {
        kept += native_accept(&deny, std::hint::black_box(&events))
            .iter()
            .filter(|k| **k)
            .count();
    }
    let native = per_event(started.elapsed(), rounds * events.len());
    println!(
        "event filter, ~1 KB events ({} events per figure, {kept} kept natively):",
        rounds * events.len()
    );
    println!("  wasm, one call per event   {single:>9.2} µs/event");
    println!("  wasm, batches of 100       {batched:>9.2} µs/event   (target < 2 µs)");
    println!("  native Rust, same rule     {native:>9.3} µs/event");
    println!(
        "  batched wasm - native      {:>9.2} µs/event overhead",
        batched - native
    );
    Ok(())
}

async fn fetch_vs_native(runtime: &PluginRuntime) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let network = Network::start(dir.path(), vec![NodeSpec::new("bench", None)]).await?;
    let node = &network.nodes[0];
    let store = node
        .running
        .handle
        .store
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no store"))?;
    let padding = "n".repeat(1100);
    for i in 0..100 {
        let body = sample::patient(&format!("p-{i}"), &padding, "Otieno", "1984-03-02");
        sample::put_fhir(&store, "Patient", &format!("p-{i}"), body).await?;
    }
    let base = node.running.base_url().to_string();
    let bytes = default_plugins()
        .iter()
        .find(|(n, _)| *n == "fhir")
        .map(|(_, b)| *b)
        .unwrap_or_default();
    let plugin = runtime.load_bytes("fhir", bytes).await?;
    let access = HttpAccess {
        endpoints: vec![AllowedEndpoint {
            base_url: url::Url::parse(&base)?,
            credentials: Some(Credentials::Bearer(node.admin_token.clone())),
            in_process: false,
        }],
        local_service: None,
    };
    let client = plugin.resource_client(access)?;
    let endpoint = Endpoint {
        role: Role::Parent,
        base_url: base.clone(),
    };
    let events: Vec<Event> = (0..100).map(event).collect();
    let http = reqwest::Client::new();
    let ids: Vec<String> = (0..100).map(|i| format!("p-{i}")).collect();
    let url = format!(
        "{base}/ws/fhir2/R4/Patient?_id={}&_count=100",
        ids.join(",")
    );
    let rounds = if quick() { 10 } else { 60 };
    let first = client.fetch(&endpoint, &events).await?;
    let ok = first.iter().filter(|r| r.is_ok()).count();
    let size = first.iter().flatten().map(|r| r.body.len()).sum::<usize>() / ok.max(1);
    native_fetch(&http, &url, &node.admin_token).await?;
    let (mut wasm, mut native) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let started = Instant::now();
        client.fetch(&endpoint, &events).await?;
        wasm += started.elapsed();
        let started = Instant::now();
        native_fetch(&http, &url, &node.admin_token).await?;
        native += started.elapsed();
    }
    let wasm_ms = wasm.as_secs_f64() * 1e3 / rounds as f64;
    let native_ms = native.as_secs_f64() * 1e3 / rounds as f64;
    println!("fetch of 100 FHIR resources (~{size} bytes each, {ok} found) from a loopback node:");
    println!("  wasm fhir plugin           {wasm_ms:>9.2} ms per batch");
    println!("  native reqwest + serde     {native_ms:>9.2} ms per batch");
    println!(
        "  ratio wasm / native        {:>9.2}x   (target <= 1.3x)",
        wasm_ms / native_ms
    );
    network.shutdown().await;
    Ok(())
}

/// What the plugin does, natively: one `_id` search, then each entry's raw resource.
async fn native_fetch(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<usize> {
    #[derive(serde::Deserialize)]
    struct Bundle<'a> {
        #[serde(borrow, default)]
        entry: Vec<Entry<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Entry<'a> {
        #[serde(borrow)]
        resource: &'a RawValue,
    }
    let body = http
        .get(url)
        .bearer_auth(token)
        .header("accept", "application/fhir+json")
        .send()
        .await?
        .text()
        .await?;
    let bundle: Bundle<'_> = serde_json::from_str(&body)?;
    // The plugin hands each resource over as its own string; so does the baseline.
    let resources: Vec<String> = bundle
        .entry
        .iter()
        .map(|e| e.resource.get().to_string())
        .collect();
    Ok(std::hint::black_box(resources).len())
}

async fn startup() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let config = || RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let cold_runtime = PluginRuntime::new(config())?;
    let started = Instant::now();
    for (name, bytes) in default_plugins() {
        cold_runtime.load_bytes(name, bytes).await?;
    }
    let cold = started.elapsed();
    let warm_runtime = PluginRuntime::new(config())?;
    let started = Instant::now();
    let mut cached = 0;
    let mut filter_plugin = None;
    for (name, bytes) in default_plugins() {
        let plugin = warm_runtime.load_bytes(name, bytes).await?;
        cached += usize::from(plugin.from_cache());
        if *name == "filter-category" {
            filter_plugin = Some(plugin);
        }
    }
    let warm = started.elapsed();
    let plugin = filter_plugin.ok_or_else(|| anyhow::anyhow!("filter-category missing"))?;
    let rounds = if quick() { 20 } else { 200 };
    let started = Instant::now();
    for _ in 0..rounds {
        let filter = plugin.event_filter(r#"{"deny":["obs"]}"#).await?;
        filter.accept(Direction::Pull, &[event(1)]).await?;
    }
    let fresh = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    let filter = plugin.event_filter(r#"{"deny":["obs"]}"#).await?;
    filter.accept(Direction::Pull, &[event(1)]).await?;
    let started = Instant::now();
    for _ in 0..rounds {
        filter.accept(Direction::Pull, &[event(1)]).await?;
    }
    let reused = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    println!(
        "start-up of the {} default plugins:",
        default_plugins().len()
    );
    println!(
        "  cold (compile)             {:>9.1} ms",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "  warm (disk cache, {cached} hits)  {:>9.1} ms   ({:.0}x faster)",
        warm.as_secs_f64() * 1e3,
        cold.as_secs_f64() / warm.as_secs_f64()
    );
    println!("  fresh instance + configure + 1 call {fresh:>7.1} µs");
    println!(
        "  reused instance, 1 call    {reused:>9.1} µs   (instantiation ≈ {:.1} µs)",
        fresh - reused
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        startup().await?;
        let runtime = PluginRuntime::new(RuntimeConfig::default())?;
        filter_overhead(&runtime).await?;
        classify::classifier_cost(&runtime, quick()).await?;
        fetch_vs_native(&runtime).await
    })
}

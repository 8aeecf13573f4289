//! What `status`, the network view and `/metrics` cost as the audit grows: a real node on
//! loopback is asked for each over HTTP while its audit is empty, and again after a million
//! records (and some retries, dead letters and conflicts) were committed. Printed next to a
//! `/healthz` round trip and a walk of the audit tree (what counting by scanning would cost),
//! both from the same run.
//!
//! Run: `cargo bench -p sync-host --bench status`. `BENCH_STATUS_RECORDS` sets the audit size
//! (1,000,000), `BENCH_STATUS_REQUESTS` the requests per figure (300).

use std::time::Instant;

use sync_host::audit::{AuditRecord, Outcome, Timestamp};
use sync_host::network::{NetNode, Network, NodeSpec};
use sync_host::sync::conflict::Direction;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn record(n: usize) -> AuditRecord {
    AuditRecord {
        time: Timestamp::now(),
        node: "root".into(),
        direction: if n.is_multiple_of(2) {
            Direction::Pull
        } else {
            Direction::Push
        },
        action: "updated".into(),
        category: "patient".into(),
        resource_type: "Patient".into(),
        resource_id: format!("p-{n}"),
        event_id: Some(format!("urn:uuid:{n}")),
        source_url: None,
        target_url: None,
        plugin: None,
        outcome: Outcome::Applied,
        duration_ms: 1,
    }
}

/// p50 and p99 of `requests` GETs of `path`, in milliseconds.
async fn latency(node: &NetNode, path: &str, requests: usize) -> anyhow::Result<(f64, f64)> {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", node.running.base_url());
    let mut times = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        http.get(&url)
            .bearer_auth(&node.admin_token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        times.push(started.elapsed());
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    Ok((at(0.5), at(0.99)))
}

async fn figures(node: &NetNode, requests: usize) -> anyhow::Result<Vec<(&'static str, f64, f64)>> {
    let mut out = Vec::new();
    for (name, path) in [
        ("/healthz (baseline)", "/healthz"),
        ("/admin/status", "/admin/status"),
        ("/admin/network", "/admin/network"),
        ("/metrics", "/metrics"),
    ] {
        let (p50, p99) = latency(node, path, requests).await?;
        out.push((name, p50, p99));
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let records = setting("BENCH_STATUS_RECORDS", 1_000_000);
    let requests = setting("BENCH_STATUS_REQUESTS", 300);
    let dir = tempfile::tempdir()?;
    let network = Network::start(dir.path(), vec![NodeSpec::new("root", None)]).await?;
    let node = network.node("root").expect("started");
    // One round to warm connections and caches, then the figures of the empty audit.
    figures(node, requests).await?;
    let empty = figures(node, requests).await?;

    let audit = node.running.handle.state.audit();
    let started = Instant::now();
    for chunk in (0..records).collect::<Vec<_>>().chunks(10_000) {
        let batch: Vec<AuditRecord> = chunk.iter().map(|n| record(*n)).collect();
        audit.append_batch(&batch)?;
    }
    node.running.handle.state.flush().await?;
    let filled = started.elapsed();
    let scan_started = Instant::now();
    let walked = audit.tree().len();
    let scan = scan_started.elapsed();
    // sled writes its log out in the background for a while after a large fill; the figures
    // are of a node at rest, as `status` is usually asked.
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    figures(node, requests).await?;
    let full = figures(node, requests).await?;

    println!("status cost against the audit size ({requests} requests each, one node on loopback)");
    println!(
        "  audit records: 0, then {walked} (committed in {:.1} s)",
        filled.as_secs_f64()
    );
    let full_label = format!("{walked} records p50/p99 ms");
    println!(
        "  {:<22} {:>19} {:>24} {:>8}",
        "request", "empty p50/p99 ms", full_label, "ratio"
    );
    for ((name, p50, p99), (_, full50, full99)) in empty.iter().zip(&full) {
        println!(
            "  {name:<22} {p50:>8.3} / {p99:<8.3} {full50:>10.3} / {full99:<10.3} {:>7.2}x",
            full50 / p50
        );
    }
    println!(
        "  baseline: one walk of the audit tree (counting by scanning) takes {:.1} ms",
        scan.as_secs_f64() * 1000.0
    );
    network.shutdown().await;
    Ok(())
}

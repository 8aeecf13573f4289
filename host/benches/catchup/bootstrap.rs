//! Snapshot bootstrap of a new child, as a user runs it: the parent's snapshot, `sync-host
//! store import --snapshot` on a fresh child, then a run that must fetch only later changes.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sync_host::network::sample;
use sync_host_store::store::Store;

/// Changes made at the parent after the snapshot.
const LATER: usize = 1000;

/// What the bench needs of the tree it runs in.
pub struct Tree<'a> {
    pub parent_store: &'a Store,
    pub parent_base: &'a str,
    pub parent_token: &'a str,
    /// The child's process configuration, whose data directory is `data-process`.
    pub child_config_text: &'a str,
    pub child_dir: &'a Path,
    pub child_token: &'a str,
}

/// Exports, imports and catches up; prints the figures.
pub async fn run(tree: Tree<'_>, n: usize, http: &reqwest::Client) -> anyhow::Result<()> {
    let out = tree.child_dir.join("snapshot");
    let started = Instant::now();
    let manifest = sync_host_store::snapshot::export(tree.parent_store, &out, 100, |_| {})?;
    let export_secs = started.elapsed().as_secs_f64();
    let config = tree.child_dir.join("snapshot.toml");
    std::fs::write(
        &config,
        tree.child_config_text
            .replace("data-process", "data-snapshot"),
    )?;
    let started = Instant::now();
    // `BENCH_PERF_IMPORT=perf.data` records a CPU profile of the import.
    let mut import = match std::env::var_os("BENCH_PERF_IMPORT") {
        Some(out) => {
            let mut perf = tokio::process::Command::new("perf");
            perf.args(["record", "-F", "499", "--call-graph", "dwarf,16384", "-o"])
                .arg(out)
                .arg("--")
                .arg(env!("CARGO_BIN_EXE_sync-host"));
            perf
        }
        None => tokio::process::Command::new(env!("CARGO_BIN_EXE_sync-host")),
    };
    let import = import
        .args(["store", "import", "--config"])
        .arg(&config)
        .arg("--snapshot")
        .arg(&out)
        .stderr(Stdio::null())
        .output()
        .await?;
    let import_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(import.status.success(), "store import --snapshot failed");
    for i in 0..LATER {
        let id = format!("later-{i}");
        let body = sample::patient(&id, "Later", "Change", "2001-01-01");
        sample::put_fhir(tree.parent_store, "Patient", &id, body).await?;
    }
    let before = super::parent_requests(http, tree.parent_base, tree.parent_token).await?;
    let started = Instant::now();
    let program = env!("CARGO_BIN_EXE_sync-host").into();
    let (mut child, url) = super::child::start(program, "warn", &config, Stdio::null()).await?;
    let audited = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Some(status) = super::child::status(http, &url, tree.child_token).await? else {
            continue;
        };
        let audited = status["counts"]["audit_records"].as_u64().unwrap_or(0) as usize;
        if audited >= LATER && status["pull"]["running"] == false {
            break audited;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "{status}");
    };
    let later_secs = started.elapsed().as_secs_f64();
    let requests =
        super::parent_requests(http, tree.parent_base, tree.parent_token).await? - before;
    child.kill().await.ok();
    println!("snapshot bootstrap of {n} resources by a fresh child:");
    println!(
        "  export (parent store)      {:>10.0} resources/s   ({:.1} MB compressed, {:.1} s)",
        manifest.resources as f64 / export_secs,
        manifest.bytes as f64 / 1e6,
        export_secs
    );
    println!(
        "  store import --snapshot    {:>10.0} resources/s   (target >= 50,000/s; process start, verify, load, seed: {import_secs:.1} s)",
        manifest.resources as f64 / import_secs
    );
    println!(
        "  then {LATER} later changes   {:>10.1} s          ({audited} audit records, {requests:.0} requests to the parent, process start included)",
        later_secs
    );
    Ok(())
}

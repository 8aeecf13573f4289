//! `sync-host run|serve|init|store import`: running a node from its config file.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use sync_host::config::NodeConfig;
use sync_host::node::RunningNode;
use sync_host_store::store::{Store, StoreConfig};

/// Runs the node of `config_path` until Ctrl-C or SIGTERM; `sync` false runs it store-only.
pub async fn run(config_path: &Path, sync: bool) -> anyhow::Result<ExitCode> {
    let mut config = NodeConfig::load(config_path)?;
    if !sync {
        config.parent = None;
    }
    let node_id = config.node.id.clone();
    let span = tracing::info_span!("node", node = %node_id);
    let _entered = span.enter();
    let running = RunningNode::start(config)
        .await
        .with_context(|| format!("node {node_id} could not start"))?;
    println!("node {node_id} listening on {}", running.base_url());
    wait_for_stop_signal().await?;
    println!("stopping node {node_id}...");
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Writes the example configuration to `path`.
pub fn init(path: &Path, force: bool) -> anyhow::Result<ExitCode> {
    if path.exists() && !force {
        bail!("{} exists; pass --force to overwrite it", path.display());
    }
    NodeConfig::parse(EXAMPLE, path).context("the built-in example config does not parse")?;
    std::fs::write(path, EXAMPLE).with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "wrote {}; set the secrets it names, then: sync-host run --config {}",
        path.display(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Imports FHIR files into the store of a stopped node.
pub async fn import(config_path: &Path, path: &Path) -> anyhow::Result<ExitCode> {
    let config = NodeConfig::load(config_path)?;
    let history_retention = config.server.as_ref().map_or(10, |s| s.history_retention);
    let store = Store::open(
        &config.node.data_dir.join("store"),
        StoreConfig {
            node_id: config.node.id.clone(),
            history_retention,
        },
    )
    .context("cannot open the store (is the node still running?)")?;
    let started = std::time::Instant::now();
    let totals = sync_host_store::store::import::import_path(&store, path, |p| {
        let rate = p.resources as f64 / started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r{} files, {} resources ({} new, {} updated, {} unchanged), {rate:.0}/s   ",
            p.files_done, p.resources, p.created, p.updated, p.unchanged
        );
        let _ = std::io::stderr().flush();
    })
    .await?;
    store.flush().await?;
    eprintln!();
    println!(
        "imported {} resources from {} files",
        totals.resources, totals.files_done
    );
    Ok(ExitCode::SUCCESS)
}

/// The commented example written by `sync-host init`.
pub const EXAMPLE: &str = r#"# sync-host node configuration. Unknown keys are rejected; secrets are never written
# here, only the environment variable or file that holds them.

[node]
# A stable, unique name. It is recorded as the origin of every change made here.
id = "clinic-7"
# Store, sync state and audit log live here.
data_dir = "/var/lib/sync-host"

[server]
listen = "127.0.0.1:8080"
# Old versions kept per resource besides the current one (0 keeps all).
history_retention = 10

# [server.api]
# page_size = 100            # feed entries per page
# max_body_bytes = 4194304

# Every caller has its own token and scopes (read, write, admin). No defaults exist.
[[server.clients]]
name = "operator"
token = { env = "SYNC_HOST_OPERATOR_TOKEN" }
scopes = ["admin"]

# A child node of this one:
# [[server.clients]]
# name = "clinic-9"
# token = { file = "/etc/sync-host/clinic-9.token" }
# scopes = ["read", "write"]
# child_node = true

[parent]
node_id = "district-1"
base_url = "https://district-1.example.org"
credentials = { kind = "bearer", token = { env = "SYNC_HOST_PARENT_TOKEN" } }
# An OpenMRS parent: Basic auth and one feed per category.
# credentials = { kind = "basic", username = "sync", password = { env = "OPENMRS_PASSWORD" } }
# feeds = ["patient", "encounter", "observation"]
feeds = ["all"]

[sync]
# parent-wins, child-wins, newest-wins or manual. manual parks a conflict for an operator:
# silently overwriting a clinical record is the worst outcome.
conflict_policy = "manual"
# category_policies = { location = "parent-wins" }
# Feed pages larger than this (MiB) are refused.
# max_feed_page_mib = 16

[sync.pull]
interval_secs = 60
follow = true            # long-poll the parent between runs for near-real-time sync

[sync.push]
interval_secs = 60

[sync.retry]
base_secs = 30
max_delay_secs = 3600
max_attempts = 10

# Which resource client handles what; `fhir` is the fallback and `rest` takes events that
# carry only a REST link.
# [[routes]]
# match = ["location", "provider"]
# client = "rest"

# Event filters run in order.
# [[filters]]
# plugin = "filter-catchment"
# direction = "pull"
# config = { patterns = ["Kenya%Nairobi%*%*%*"] }

[audit]
retention_days = 365
"#;

//! `sync-host run|serve|init|store import`: running a node from its config file.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use sync_host::config::NodeConfig;
use sync_host::node::RunningNode;
use sync_host_store::store::Store;

use super::example;

/// Runs the node of `config_path` until Ctrl-C or SIGTERM; `sync` false runs it store-only.
pub async fn run(config_path: &Path, sync: bool) -> anyhow::Result<ExitCode> {
    let mut config = NodeConfig::load(config_path)?;
    if !sync {
        config.parent = None;
    }
    let node_id = config.node.id.clone();
    let span = tracing::info_span!("node", node = %node_id);
    let _entered = span.enter();
    sync_host::node::limits::raise_open_files();
    let running = RunningNode::start(config)
        .await
        .with_context(|| format!("node {node_id} could not start"))?;
    announce(&format!(
        "node {node_id} listening on {}",
        running.base_url()
    ));
    wait_for_stop_signal().await?;
    announce(&format!("stopping node {node_id}..."));
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Prints a line for whoever started the node. A supervisor may have closed stdout; the node
/// must still run and shut down gracefully (its audit flushed), so a failed print is ignored.
fn announce(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
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

/// Writes the example configuration to `path` (a root node's with `root`) and prints a fresh
/// operator token for it.
pub fn init(path: &Path, force: bool, root: bool) -> anyhow::Result<ExitCode> {
    if path.exists() && !force {
        bail!("{} exists; pass --force to overwrite it", path.display());
    }
    let text = example::config(root);
    NodeConfig::parse(&text, path).context("the built-in example config does not parse")?;
    std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    let role = if root {
        "a root node: no parent"
    } else {
        "a child node; `--root` writes a node without a parent"
    };
    println!("wrote {} ({role})", path.display());
    println!(
        "a fresh operator token (keep it secret):\n  export {}={}",
        example::OPERATOR_TOKEN_ENV,
        sync_host::config::token::generate()
    );
    if !root {
        println!(
            "and the token the parent issued to this node:\n  export {}=...",
            example::PARENT_TOKEN_ENV
        );
    }
    println!("then: sync-host run --config {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Imports FHIR files into the store of a stopped node.
pub async fn import(config_path: &Path, path: &Path) -> anyhow::Result<ExitCode> {
    let config = NodeConfig::load(config_path)?;
    let store = open_store(&config).await?;
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

/// Opens the store of a stopped node, with its classification rules (loading its classifier
/// plugin when `[classifier]` names one).
pub async fn open_store(config: &NodeConfig) -> anyhow::Result<Store> {
    use sync_host::node::classifier;
    // Loading the plugins compiles them (or reads the cache): only a classifier plugin
    // needs them here.
    let rules = match &config.classifier {
        None => classifier::path_rules(config),
        Some(_) => {
            let runtime =
                sync_host::plugins::runtime_config(&config.plugins, Some(&config.node.data_dir));
            let runtime = sync_host_runtime::PluginRuntime::new(runtime)?;
            let registry =
                sync_host::plugins::PluginRegistry::load(runtime, config.plugins.dir.as_deref())
                    .await?;
            classifier::store_rules(config, &registry).await
        }
    }
    .with_context(|| config.path.display().to_string())?;
    Store::open(
        &config.node.data_dir.join("store"),
        config.store_config(rules),
    )
    .context("cannot open the store (is the node still running?)")
}

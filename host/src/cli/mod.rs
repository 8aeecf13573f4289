//! Command-line definitions and dispatch. Handlers live in one module per command group.

mod admin;
mod demo;
mod demo_network;
mod example;
mod node;
mod plugins;
mod show;
mod show_network;
mod snapshot;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Keeps health records in sync across a tree of sites.
#[derive(Debug, Parser)]
#[command(name = "sync-host", version, about)]
pub struct Cli {
    /// Log filter (`info`, `sync_host=debug`, ...).
    #[arg(long, global = true, env = "SYNC_HOST_LOG", default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

/// Where a running node's admin API is, for the operator commands.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminTarget {
    /// The node's base URL, e.g. `http://127.0.0.1:8080`.
    #[arg(long, env = "SYNC_HOST_URL")]
    pub url: String,
    /// A token with the `admin` scope at that node.
    #[arg(long, env = "SYNC_HOST_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a full node: store, publish, pull and push.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a node that only stores and publishes (no sync with a parent).
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Write a commented example configuration.
    Init {
        /// Where to write it.
        #[arg(default_value = "node.toml")]
        path: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// A root node: no parent, nothing to pull or push.
        #[arg(long)]
        root: bool,
    },
    /// Print a fresh random token for a `[[server.clients]]` entry.
    Token,
    /// Start a demo network of four nodes on loopback, sync it and report.
    Demo {
        /// Keep the nodes running and print their URLs and tokens.
        #[arg(long)]
        keep_running: bool,
        /// Keep the nodes' files here instead of a temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Identity, parent, lag, last success and failure per direction, queues and conflicts.
    Status {
        #[command(flatten)]
        target: AdminTarget,
        /// Print the node's JSON answer instead of a summary.
        #[arg(long)]
        json: bool,
        /// Show this node and every node below it, from their status reports.
        #[arg(long)]
        tree: bool,
    },
    /// Run a sync now.
    SyncNow {
        #[command(flatten)]
        target: AdminTarget,
        /// `pull`, `push`, or both when omitted.
        direction: Option<String>,
        /// Return when the runs have ended and print what they did; exit non-zero when a
        /// run failed or an event failed.
        #[arg(long)]
        wait: bool,
    },
    /// Query, show and export the audit log.
    Audit {
        #[command(flatten)]
        target: AdminTarget,
        #[command(subcommand)]
        command: admin::AuditCommand,
    },
    /// Retry one dead letter, or all of them.
    Retry {
        #[command(flatten)]
        target: AdminTarget,
        /// The dead letter's id.
        id: Option<u64>,
        /// Retry every dead letter.
        #[arg(long)]
        dead: bool,
    },
    /// List, show and resolve conflicts.
    Conflicts {
        #[command(flatten)]
        target: AdminTarget,
        #[command(subcommand)]
        command: admin::ConflictsCommand,
    },
    /// Work with a stopped node's store.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// List and check WebAssembly plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

/// `sync-host store ...`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Load FHIR JSON files, Bundles or NDJSON (a file or a directory) into the store, or, with
    /// `--snapshot`, bootstrap a new node from a snapshot of its parent.
    Import {
        #[arg(long)]
        config: PathBuf,
        /// A file or directory of FHIR JSON, Bundles or NDJSON.
        #[arg(required_unless_present = "snapshot", conflicts_with = "snapshot")]
        path: Option<PathBuf>,
        /// A snapshot directory written by `store export` on this node's parent: the node must
        /// be new (empty store, never synced); its sync resumes after the snapshot.
        #[arg(long)]
        snapshot: Option<PathBuf>,
    },
    /// Write a snapshot of a stopped node's store (current versions, compressed, with a
    /// manifest and checksum) into a new directory, for bootstrapping its children.
    Export {
        #[arg(long)]
        config: PathBuf,
        /// The directory to write; it must not exist yet or be empty.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `sync-host plugins ...`
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Show every plugin: the built-in ones and those in a directory.
    List {
        /// A plugins directory to scan besides the built-in plugins.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Say which world a `.wasm` file implements, or exactly why it implements none.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

/// Sets up `tracing` output on stderr with the given filter.
pub fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour codes only help a person at a terminal; in a log file or a pipe they are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

/// Runs one command to completion.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config } => node::run(&config, true).await,
        Command::Serve { config } => node::run(&config, false).await,
        Command::Init { path, force, root } => node::init(&path, force, root),
        Command::Token => {
            println!("{}", sync_host::config::token::generate());
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { keep_running, dir } => demo::run(dir, keep_running).await,
        Command::Status { target, json, tree } => admin::status(&target, json, tree).await,
        Command::SyncNow {
            target,
            direction,
            wait,
        } => admin::sync_now(&target, direction, wait).await,
        Command::Audit { target, command } => admin::audit(&target, command).await,
        Command::Retry { target, id, dead } => admin::retry(&target, id, dead).await,
        Command::Conflicts { target, command } => admin::conflicts(&target, command).await,
        Command::Store { command } => match command {
            StoreCommand::Import {
                config,
                snapshot: Some(dir),
                ..
            } => snapshot::import(&config, &dir).await,
            StoreCommand::Import {
                config,
                path: Some(path),
                ..
            } => node::import(&config, &path).await,
            StoreCommand::Import { .. } => {
                anyhow::bail!("store import needs a PATH or --snapshot DIR")
            }
            StoreCommand::Export { config, out } => snapshot::export(&config, &out).await,
        },
        Command::Plugins { command } => plugins::run(command).await,
    }
}

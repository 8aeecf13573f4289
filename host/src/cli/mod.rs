//! Command-line definitions and dispatch. Handlers live in one module per command group.

mod plugins;

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

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List and check WebAssembly plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Runs one command to completion.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Plugins { command } => plugins::run(command).await,
    }
}

//! `sync-host plugins list|check`: what plugins a node would load, and why a file is refused.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use sync_host::config::PluginsSection;
use sync_host::error_chain::Chain;
use sync_host::plugins::{PluginOrigin, PluginRegistry, runtime_config};
use sync_host_runtime::{PluginRuntime, World, inspect};

use super::PluginsCommand;

pub async fn run(command: PluginsCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginsCommand::List { dir } => list(dir.as_deref()).await,
        PluginsCommand::Check { file } => check(&file).await,
    }
}

fn interactive_runtime() -> anyhow::Result<PluginRuntime> {
    let config = runtime_config(&PluginsSection::default(), None);
    PluginRuntime::new(config).context("cannot start the plugin runtime")
}

async fn list(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let registry = PluginRegistry::load(interactive_runtime()?, dir).await?;
    println!(
        "{:<18} {:<30} {:<9} {:<16} {:<6} SOURCE",
        "NAME", "COMPONENT", "VERSION", "WORLD", "WIT"
    );
    for entry in registry.iter() {
        let info = entry.plugin.info();
        let source = match &entry.origin {
            PluginOrigin::BuiltIn => "built-in".to_string(),
            PluginOrigin::File(path) => path.display().to_string(),
        };
        println!(
            "{:<18} {:<30} {:<9} {:<16} {:<6} {}",
            entry.name,
            info.name,
            info.version,
            world_name(entry.plugin.world()),
            entry.plugin.wit_version(),
            source
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let runtime = interactive_runtime()?;
    match inspect(&runtime, &bytes) {
        Ok(info) => {
            println!(
                "{}: implements world `{}` of sync:plugin@{}",
                file.display(),
                world_name(info.world),
                info.wit_version
            );
            match runtime
                .load_bytes(&file.display().to_string(), &bytes)
                .await
            {
                Ok(plugin) => {
                    let info = plugin.info();
                    println!(
                        "plugin {} {}: {}",
                        info.name, info.version, info.description
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("{}: refused: {}", file.display(), Chain(&e));
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Err(e) => {
            println!(
                "{}: implements no sync-host plugin world: {e}",
                file.display()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn world_name(world: World) -> &'static str {
    match world {
        World::ResourceClient => "resource-client",
        World::EventFilter => "event-filter",
        World::Classifier => "resource-classifier",
    }
}

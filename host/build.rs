//! Compiles the default plugins to wasm and embeds them in the `sync-host` binary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// (name the configuration uses, cargo package) of every default plugin.
const DEFAULT_PLUGINS: &[(&str, &str)] = &[
    ("fhir", "sync-plugin-fhir"),
    ("rest", "sync-plugin-rest"),
    ("filter-category", "sync-plugin-filter-category"),
    ("filter-catchment", "sync-plugin-filter-catchment"),
    ("filter-origin", "sync-plugin-filter-origin"),
    ("classifier-paths", "sync-plugin-classifier-paths"),
];

fn main() {
    if let Err(message) = run() {
        // A build script reports failure by exiting non-zero; cargo shows stderr.
        eprintln!("{message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = env_path("CARGO_MANIFEST_DIR")?;
    let out_dir = env_path("OUT_DIR")?;
    let workspace_root = manifest_dir
        .parent()
        .ok_or("the host crate has no parent directory")?;
    let packages: Vec<&str> = DEFAULT_PLUGINS
        .iter()
        .map(|(_, package)| *package)
        .collect();
    let wasm_dir = sync_plugin_build::build_plugins(workspace_root, &packages)?;
    let source = embedding_source(&wasm_dir);
    let target = out_dir.join("default_plugins.rs");
    std::fs::write(&target, source).map_err(|e| format!("cannot write {}: {e}", target.display()))
}

fn env_path(name: &str) -> Result<PathBuf, String> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .ok_or_else(|| format!("cargo did not set {name}"))
}

fn embedding_source(wasm_dir: &Path) -> String {
    let mut source = String::from(
        "/// The default plugins, by the name the configuration uses, as component bytes.\n\
         pub static DEFAULT_PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    for (name, package) in DEFAULT_PLUGINS {
        let path = wasm_dir.join(sync_plugin_build::wasm_file_name(package));
        // `{:?}` of a path string yields a valid Rust string literal with escapes.
        let _ = writeln!(
            source,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    source.push_str("];\n");
    source
}

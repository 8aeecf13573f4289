//! Compiles the default plugins and the hostile test plugins to wasm for the
//! end-to-end suites, and tells them where the files are.

use std::path::PathBuf;

const PLUGINS: &[&str] = &[
    "sync-plugin-fhir",
    "sync-plugin-rest",
    "sync-plugin-filter-category",
    "sync-plugin-filter-catchment",
    "sync-plugin-filter-origin",
    "sync-plugin-classifier-paths",
    "sync-test-plugin-hostile",
    "sync-test-plugin-hostile-fs",
    "sync-test-plugin-legacy-filter",
];

fn main() {
    let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else {
        eprintln!("cargo did not set CARGO_MANIFEST_DIR");
        std::process::exit(1);
    };
    let Some(workspace_root) = manifest_dir.parent() else {
        eprintln!("the tests crate has no parent directory");
        std::process::exit(1);
    };
    match sync_plugin_build::build_plugins(workspace_root, PLUGINS) {
        Ok(dir) => println!("cargo:rustc-env=SYNC_TEST_PLUGIN_DIR={}", dir.display()),
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(1);
        }
    }
}

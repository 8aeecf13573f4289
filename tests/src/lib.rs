//! Helpers shared by the end-to-end suites: where the compiled plugins and
//! the fixtures are, and a small loopback HTTP server that records requests.

mod plugins;
mod server;

use std::path::PathBuf;

pub use plugins::{
    event, load_classifier, load_client, load_filter, parent, test_runtime_config, write,
};
pub use server::{RecordedRequest, TestResponse, TestServer};

/// The directory the build script compiled the plugins into.
pub const PLUGIN_DIR: &str = env!("SYNC_TEST_PLUGIN_DIR");

/// The compiled component of a default or test plugin, by short name:
/// `fhir`, `rest`, `filter-category`, `filter-catchment`, `filter-origin`,
/// `hostile`, `hostile-fs`.
pub fn plugin_path(name: &str) -> PathBuf {
    let package = if name.starts_with("hostile") || name.starts_with("legacy") {
        format!("sync_test_plugin_{}", name.replace('-', "_"))
    } else {
        format!("sync_plugin_{}", name.replace('-', "_"))
    };
    PathBuf::from(PLUGIN_DIR).join(format!("{package}.wasm"))
}

/// The shared fixtures directory (`<repo>/../shared/fixtures`).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// Reads a fixture file as text, e.g. `openmrs/fhir2/patient-example.json`.
pub fn fixture(relative: &str) -> String {
    let path = fixtures_dir().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_paths_follow_cargo_crate_names() {
        assert!(plugin_path("fhir").ends_with("sync_plugin_fhir.wasm"));
        assert!(plugin_path("filter-origin").ends_with("sync_plugin_filter_origin.wasm"));
        assert!(plugin_path("hostile-fs").ends_with("sync_test_plugin_hostile_fs.wasm"));
        assert!(
            plugin_path("hostile").is_file(),
            "{}",
            plugin_path("hostile").display()
        );
    }

    #[test]
    fn fixtures_are_reachable() {
        assert!(fixture("openmrs/fhir2/patient-example.json").contains("\"resourceType\""));
    }
}

//! Loading plugins through the real runtime, and building the inputs
//! they take, for the plugin suites.

use std::time::Duration;

use sync_host_runtime::{
    Action, AllowedEndpoint, Endpoint, Event, HttpAccess, HttpLimits, Link, PluginRuntime,
    Resource, Role, RuntimeConfig, WasmClassifier, WasmEventFilter, WasmResourceClient, Write,
};

use crate::plugin_path;

/// Runtime limits for tests: a short HTTP timeout so timeout tests are quick.
pub fn test_runtime_config(request_timeout: Duration) -> RuntimeConfig {
    RuntimeConfig {
        call_timeout: Duration::from_secs(30),
        http: HttpLimits {
            request_timeout,
            ..HttpLimits::default()
        },
        ..RuntimeConfig::default()
    }
}

/// Loads the resource client `name` (`fhir`, `rest`, `hostile`) allowed to
/// reach `base_url` only, without credentials.
pub async fn load_client(
    name: &str,
    base_url: &str,
    request_timeout: Duration,
) -> WasmResourceClient {
    let runtime = PluginRuntime::new(test_runtime_config(request_timeout)).expect("runtime");
    let plugin = runtime
        .load_file(&plugin_path(name))
        .await
        .expect("load plugin");
    let access = HttpAccess {
        endpoints: vec![AllowedEndpoint {
            base_url: base_url.parse().expect("base url"),
            credentials: None,
            in_process: false,
        }],
        local_service: None,
    };
    plugin.resource_client(access).expect("resource client")
}

/// Loads the event filter `name` configured with `config_json`.
pub async fn load_filter(name: &str, config_json: &str) -> Result<WasmEventFilter, String> {
    let runtime = PluginRuntime::new(RuntimeConfig::default()).expect("runtime");
    let plugin = runtime
        .load_file(&plugin_path(name))
        .await
        .expect("load plugin");
    plugin
        .event_filter(config_json)
        .await
        .map_err(|e| e.to_string())
}

/// Loads the classifier `name` configured with `config_json`.
pub async fn load_classifier(name: &str, config_json: &str) -> Result<WasmClassifier, String> {
    let runtime = PluginRuntime::new(RuntimeConfig::default()).expect("runtime");
    let plugin = runtime
        .load_file(&plugin_path(name))
        .await
        .expect("load plugin");
    plugin
        .classifier(config_json)
        .await
        .map_err(|e| e.to_string())
}

/// The parent endpoint at `base_url`.
pub fn parent(base_url: &str) -> Endpoint {
    Endpoint {
        role: Role::Parent,
        base_url: base_url.to_string(),
    }
}

/// An `updated` event for one resource with the given links (client, href).
pub fn event(category: &str, resource_type: &str, id: &str, links: &[(&str, &str)]) -> Event {
    Event {
        id: format!("urn:uuid:evt-{id}"),
        sequence: None,
        category: category.to_string(),
        action: Action::Updated,
        resource_type: resource_type.to_string(),
        resource_id: id.to_string(),
        links: links
            .iter()
            .map(|(client, href)| Link {
                client: client.to_string(),
                href: href.to_string(),
            })
            .collect(),
        tags: Vec::new(),
        origin: None,
        version: None,
        content_hash: None,
        raw: String::new(),
    }
}

/// A write of `body` as `resource_type/id`.
pub fn write(resource_type: &str, id: &str, body: &str) -> Write {
    Write {
        resource: Resource {
            resource_type: resource_type.to_string(),
            id: id.to_string(),
            version: None,
            body: body.to_string(),
            deleted: body.is_empty(),
        },
        expected_version: None,
        origin: None,
    }
}

#[cfg(test)]
mod tests {
    use sync_host_runtime::World;

    use super::*;

    #[tokio::test]
    async fn every_plugin_built_into_the_host_loads_with_its_world() {
        let runtime = PluginRuntime::new(RuntimeConfig::default()).expect("runtime");
        let mut seen = Vec::new();
        for (name, bytes) in sync_host::default_plugins::default_plugins() {
            let plugin = runtime
                .load_bytes(name, bytes)
                .await
                .expect("built-in plugin loads");
            let expected = if name.starts_with("filter-") {
                World::EventFilter
            } else if name.starts_with("classifier-") {
                World::Classifier
            } else {
                World::ResourceClient
            };
            assert_eq!(plugin.world(), expected, "{name}");
            assert_eq!(plugin.info().name, format!("sync-plugin-{name}"));
            assert!(
                !plugin.info().description.is_empty(),
                "{name} describes itself"
            );
            seen.push(*name);
        }
        assert_eq!(
            seen,
            [
                "fhir",
                "rest",
                "filter-category",
                "filter-catchment",
                "filter-origin",
                "classifier-paths"
            ]
        );
    }
}

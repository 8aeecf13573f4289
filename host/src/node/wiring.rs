//! Builds a node's sync machinery from its configuration: endpoints and what plugins may
//! reach, the route table, the filters of each direction, and the two pipelines.

use std::sync::Arc;

use sync_host_runtime::{
    AllowedEndpoint, Credentials, Endpoint, EventFilter, HttpAccess, LocalService, Role,
};

use crate::config::{FilterDirection, NodeConfig};
use crate::error_chain::chain;
use crate::plugins::PluginRegistry;
use crate::sync::conflict::{Direction, PolicySet};
use crate::sync::retry::RetryPolicy;
use crate::sync::routes::{Route, Routes};

/// Why the sync machinery could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("{key}: no plugin named `{name}` is loaded (see `sync-host plugins list`)")]
    UnknownPlugin { key: String, name: String },
    #[error("{key}: plugin `{name}` is not a {expected}")]
    WrongWorld {
        key: String,
        name: String,
        expected: &'static str,
    },
    #[error("{key}: plugin `{name}` refused to start: {reason}")]
    Plugin {
        key: String,
        name: String,
        reason: String,
    },
    #[error("{key}: `{url}` is not an absolute URL")]
    BadUrl { key: String, url: String },
    #[error("{key}: {reason}")]
    Rules { key: String, reason: String },
}

/// The two sides a node syncs between, as plugins see them.
#[derive(Clone)]
pub struct Sides {
    pub parent: Option<Endpoint>,
    pub local: Endpoint,
    /// What every resource client may reach, before per-plugin grants.
    pub access: HttpAccess,
}

/// Endpoints and access: the parent with its credentials, and the local side either in
/// process (embedded store) or over HTTP (external server).
pub fn sides(
    local_url: &str,
    local_credentials: Option<Credentials>,
    local_service: Option<Arc<dyn LocalService>>,
    parent: Option<(&str, Option<Credentials>)>,
) -> Result<Sides, WiringError> {
    let parse = |key: &str, url: &str| {
        url::Url::parse(url).map_err(|_| WiringError::BadUrl {
            key: key.to_string(),
            url: url.to_string(),
        })
    };
    let mut endpoints = vec![AllowedEndpoint {
        base_url: parse("local", local_url)?,
        credentials: local_credentials,
        in_process: local_service.is_some(),
    }];
    let parent_endpoint = match parent {
        Some((url, credentials)) => {
            endpoints.push(AllowedEndpoint {
                base_url: parse("parent.base_url", url)?,
                credentials,
                in_process: false,
            });
            Some(Endpoint {
                role: Role::Parent,
                base_url: url.trim_end_matches('/').to_string(),
            })
        }
        None => None,
    };
    Ok(Sides {
        parent: parent_endpoint,
        local: Endpoint {
            role: Role::Local,
            base_url: local_url.trim_end_matches('/').to_string(),
        },
        access: HttpAccess {
            endpoints,
            local_service,
        },
    })
}

/// The route table: configured routes, then `fhir` as the fallback and `rest` for events
/// with only a REST link, unless the configuration says otherwise.
pub fn routes(
    config: &NodeConfig,
    registry: &PluginRegistry,
    sides: &Sides,
) -> Result<Routes, WiringError> {
    let mut routes = Routes::new();
    let mut has_fallback = false;
    for (i, route) in config.routes.iter().enumerate() {
        let key = format!("routes[{i}].client");
        let client = resource_client(registry, sides, config, &key, &route.client)?;
        for name in &route.matches {
            if name == "*" {
                routes.set_fallback(client.clone());
                has_fallback = true;
            } else {
                routes.add(name, client.clone());
            }
        }
    }
    if !has_fallback {
        routes.set_fallback(resource_client(
            registry,
            sides,
            config,
            "default route",
            "fhir",
        )?);
    }
    routes.set_rest(resource_client(
        registry,
        sides,
        config,
        "rest route",
        "rest",
    )?);
    Ok(routes)
}

fn resource_client(
    registry: &PluginRegistry,
    sides: &Sides,
    config: &NodeConfig,
    key: &str,
    name: &str,
) -> Result<Route, WiringError> {
    let entry = registry
        .get(name)
        .ok_or_else(|| WiringError::UnknownPlugin {
            key: key.to_string(),
            name: name.to_string(),
        })?;
    let mut access = sides.access.clone();
    for grant in config.plugins.grants.iter().filter(|g| g.plugin == name) {
        let base_url = url::Url::parse(&grant.base_url).map_err(|_| WiringError::BadUrl {
            key: "plugins.grants".into(),
            url: grant.base_url.clone(),
        })?;
        let credentials = crate::node::clients::outbound_credentials(grant.credentials.as_ref())
            .map_err(|e| WiringError::Plugin {
                key: key.to_string(),
                name: name.to_string(),
                reason: chain(&e),
            })?;
        access.endpoints.push(AllowedEndpoint {
            base_url,
            credentials,
            in_process: false,
        });
    }
    let client = entry
        .plugin
        .resource_client(access)
        .map_err(|e| WiringError::WrongWorld {
            key: format!("{key} ({})", chain(&e)),
            name: name.to_string(),
            expected: "resource client",
        })?;
    Ok(Route {
        client_name: name.to_string(),
        client: Arc::new(client),
    })
}

/// The configured filters of `direction`, each configured once with its JSON.
pub async fn filters(
    config: &NodeConfig,
    registry: &PluginRegistry,
    direction: Direction,
) -> Result<Vec<Arc<dyn EventFilter>>, WiringError> {
    let mut out: Vec<Arc<dyn EventFilter>> = Vec::new();
    for (i, filter) in config.filters.iter().enumerate() {
        let applies = matches!(
            (filter.direction, direction),
            (FilterDirection::Both, _)
                | (FilterDirection::Pull, Direction::Pull)
                | (FilterDirection::Push, Direction::Push)
        );
        if !applies {
            continue;
        }
        let key = format!("filters[{i}]");
        let entry = registry
            .get(&filter.plugin)
            .ok_or_else(|| WiringError::UnknownPlugin {
                key: key.clone(),
                name: filter.plugin.clone(),
            })?;
        let json = match &filter.config {
            Some(table) => serde_json::to_string(table).unwrap_or_else(|_| "{}".into()),
            None => "{}".to_string(),
        };
        let instance = entry
            .plugin
            .event_filter(&json)
            .await
            .map_err(|e| WiringError::Plugin {
                key,
                name: filter.plugin.clone(),
                reason: chain(&e),
            })?;
        out.push(Arc::new(instance));
    }
    Ok(out)
}

/// Conflict policies from `[sync]`.
pub fn policies(config: &NodeConfig) -> PolicySet {
    PolicySet {
        default: config.sync.conflict_policy,
        per_category: config.sync.category_policies.clone(),
    }
}

/// Retry backoff from `[sync.retry]`.
pub fn retry_policy(config: &NodeConfig) -> RetryPolicy {
    let r = &config.sync.retry;
    RetryPolicy {
        base: std::time::Duration::from_secs(r.base_secs),
        factor: 2,
        max_delay: std::time::Duration::from_secs(r.max_delay_secs),
        max_attempts: r.max_attempts,
    }
}

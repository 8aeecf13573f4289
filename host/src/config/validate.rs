//! Checks of a parsed configuration that TOML types cannot express. Each check names the key
//! it refuses; the caller adds the file.

use std::net::SocketAddr;
use std::path::Path;

use super::{ConfigError, DirectionSection, NodeConfig, is_valid_node_id};

const NODE_ID_RULE: &str = "must be 1-64 characters of letters, digits, '-', '_' or '.'";

/// The first problem of `config`, read from `path`.
pub(super) fn validate(config: &NodeConfig, path: &Path) -> Result<(), ConfigError> {
    let problem = node(config)
        .or_else(|| plugins(config))
        .or_else(|| parent(config))
        .or_else(|| server(config))
        .or_else(|| feed_cap(config))
        .or_else(|| schedule("sync.pull", &config.sync.pull, true))
        .or_else(|| schedule("sync.push", &config.sync.push, false))
        .or_else(|| routes(config))
        .or_else(|| report(config))
        .or_else(|| classify(config))
        .or_else(|| direction_scopes(config));
    match problem {
        Some((key, problem)) => Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            problem,
        }),
        None => Ok(()),
    }
}

/// A refused key and what is wrong with its value.
type Problem = Option<(String, String)>;

fn refuse(key: &str, problem: &str) -> Problem {
    Some((key.to_string(), problem.to_string()))
}

fn node(config: &NodeConfig) -> Problem {
    if !is_valid_node_id(&config.node.id) {
        return refuse("node.id", NODE_ID_RULE);
    }
    None
}

fn plugins(config: &NodeConfig) -> Problem {
    if config.plugins.memory_limit_mib == 0 {
        return refuse("plugins.memory_limit_mib", "must be at least 1");
    }
    if config.plugins.call_timeout_secs == 0 {
        return refuse("plugins.call_timeout_secs", "must be at least 1");
    }
    for (i, grant) in config.plugins.grants.iter().enumerate() {
        if url::Url::parse(&grant.base_url).is_err() {
            return refuse(
                &format!("plugins.grants[{i}].base_url"),
                "is not an absolute URL",
            );
        }
    }
    None
}

fn report(config: &NodeConfig) -> Problem {
    let report = &config.report;
    if report.interval_secs == 0 {
        return refuse("report.interval_secs", "must be at least 1");
    }
    if report.stale_after_secs <= report.interval_secs {
        return refuse(
            "report.stale_after_secs",
            "must be longer than report.interval_secs, or every node would look stale",
        );
    }
    None
}

fn feed_cap(config: &NodeConfig) -> Problem {
    if config.sync.max_feed_page_mib == 0 {
        return refuse("sync.max_feed_page_mib", "must be at least 1");
    }
    None
}

fn parent(config: &NodeConfig) -> Problem {
    if let Some(parent) = &config.parent {
        if !is_valid_node_id(&parent.node_id) {
            return refuse("parent.node_id", NODE_ID_RULE);
        }
        if url::Url::parse(&parent.base_url).is_err() {
            return refuse("parent.base_url", "is not an absolute URL");
        }
        if parent.feeds.is_empty() {
            return refuse("parent.feeds", "must name at least one feed");
        }
    }
    if let Some(local) = &config.local
        && url::Url::parse(&local.base_url).is_err()
    {
        return refuse("local.base_url", "is not an absolute URL");
    }
    None
}

fn server(config: &NodeConfig) -> Problem {
    let Some(server) = &config.server else {
        return refuse(
            "server",
            "is required: it serves the node's store (or, with [local], its admin API)",
        );
    };
    if let Some(problem) = listen_problem(&server.listen) {
        return refuse("server.listen", &problem);
    }
    if server.listen_backlog == 0 {
        return refuse("server.listen_backlog", "must be greater than zero");
    }
    if let Err(e) = server.api.validate() {
        return refuse("server.api", &e.to_string());
    }
    if let Some(problem) = data_scopes(server) {
        return Some(problem);
    }
    child_ids(config, server)
}

/// Every client's data scope is usable.
fn data_scopes(server: &super::ServerSection) -> Problem {
    for (i, client) in server.clients.iter().enumerate() {
        let Some(patterns) = &client.data_scope else {
            continue;
        };
        if let Err(error) = sync_host_store::scope::DataScope::new(patterns) {
            return refuse(
                &format!("server.clients[{i}].data_scope"),
                &error.to_string(),
            );
        }
    }
    None
}

/// A direction's own data scope is usable, and has the embedded store to classify with.
fn direction_scopes(config: &NodeConfig) -> Problem {
    for (name, direction) in [("pull", &config.sync.pull), ("push", &config.sync.push)] {
        let Some(patterns) = &direction.data_scope else {
            continue;
        };
        let key = format!("sync.{name}.data_scope");
        if config.local.is_some() {
            return refuse(&key, "needs the embedded store; remove it or [local]");
        }
        if let Err(error) = sync_host_store::scope::DataScope::new(patterns) {
            return refuse(&key, &error.to_string());
        }
    }
    None
}

/// The classification rules are usable, and come from one place.
fn classify(config: &NodeConfig) -> Problem {
    if config.classifier.is_some() && config.classify != Default::default() {
        return refuse(
            "classifier.plugin",
            "a classifier plugin places resources instead of the [classify] paths; \
             set one or the other",
        );
    }
    if let Some(section) = &config.classifier
        && section.plugin.trim().is_empty()
    {
        return refuse("classifier.plugin", "name the classifier plugin");
    }
    let error = sync_host_store::scope::Classifier::new(&config.classify).err()?;
    refuse(
        &format!("classify.{}.{}", error.section, error.resource_type),
        &format!("path {:?} {}", error.path, error.problem),
    )
}

/// Each child-node client names a valid node id, and no two name the same node: a child's
/// status reports are accepted only as the node its client names.
fn child_ids(config: &NodeConfig, server: &super::ServerSection) -> Problem {
    let mut seen = std::collections::BTreeSet::new();
    for (i, client) in server.clients.iter().enumerate() {
        if client.node_id.is_some() && !client.child_node {
            return refuse(
                &format!("server.clients[{i}].node_id"),
                "is only for child-node clients (`child_node = true`)",
            );
        }
        let Some(id) = client.child_node_id() else {
            continue;
        };
        let key = if client.node_id.is_some() {
            format!("server.clients[{i}].node_id")
        } else {
            format!("server.clients[{i}].name")
        };
        if !is_valid_node_id(id) {
            return refuse(
                &key,
                &format!("names the child node `{id}`, and a node id {NODE_ID_RULE}"),
            );
        }
        if id == config.node.id {
            return refuse(&key, "names this node itself as a child");
        }
        if !seen.insert(id) {
            return refuse(&key, &format!("names the child node `{id}` a second time"));
        }
    }
    None
}

/// Why `listen` is not an address to bind, if it is not. Only an IP address with a port is
/// accepted: a host name would resolve at start, to an address nobody checked.
fn listen_problem(listen: &str) -> Option<String> {
    if listen.parse::<SocketAddr>().is_ok() {
        return None;
    }
    let hint = if listen.parse::<u16>().is_ok() {
        format!("; to listen on port {listen} of every interface write \"0.0.0.0:{listen}\"")
    } else {
        String::new()
    };
    Some(format!(
        "is {listen:?}, not an IP address with a port such as \"127.0.0.1:8080\"{hint}"
    ))
}

/// A direction's schedule: long-poll needs an interval to poll within, and only pull can
/// follow (a node's own feed is read in process).
fn schedule(key: &str, section: &DirectionSection, is_pull: bool) -> Problem {
    if !section.follow {
        return None;
    }
    if !is_pull {
        return refuse(
            &format!("{key}.follow"),
            "applies to pull only: push reads this node's own feed and has nothing to follow",
        );
    }
    if section.interval_secs == 0 {
        return refuse(
            &format!("{key}.follow"),
            &format!(
                "needs `{key}.interval_secs` above 0: with 0 the direction runs only on \
                 `sync-host sync-now`, so there is nothing to follow between runs"
            ),
        );
    }
    None
}

fn routes(config: &NodeConfig) -> Problem {
    for (i, route) in config.routes.iter().enumerate() {
        if route.matches.is_empty() {
            return refuse(
                &format!("routes[{i}].match"),
                "must name at least one type or `*`",
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_needs_an_ip_address_and_a_port() {
        assert_eq!(listen_problem("127.0.0.1:0"), None);
        assert_eq!(listen_problem("[::1]:8080"), None);
        let bare_port = listen_problem("18190").unwrap_or_default();
        assert!(bare_port.contains("\"0.0.0.0:18190\""), "{bare_port}");
        let name = listen_problem("localhost:80").unwrap_or_default();
        assert!(name.contains("not an IP address"), "{name}");
    }

    #[test]
    fn follow_needs_a_pull_interval() {
        let mut pull = DirectionSection {
            follow: true,
            ..DirectionSection::default()
        };
        assert_eq!(schedule("sync.pull", &pull, true), None);
        pull.interval_secs = 0;
        let (key, problem) = schedule("sync.pull", &pull, true).unwrap_or_default();
        assert_eq!(key, "sync.pull.follow");
        assert!(problem.contains("sync.pull.interval_secs"), "{problem}");
        let (key, _) = schedule("sync.push", &pull, false).unwrap_or_default();
        assert_eq!(key, "sync.push.follow");
    }
}

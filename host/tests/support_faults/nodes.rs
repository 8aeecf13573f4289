//! Node helpers for the end-to-end tests: a child of an OpenMRS-shaped parent, restarting a
//! network node with an edited configuration (e.g. pointing it at a proxy), and reading a
//! node's audit log, store and sync state.

use std::path::Path;

use sync_host::audit::{AuditQuery, AuditRecord, Outcome};
use sync_host::config::NodeConfig;
use sync_host::network::{NetNode, Network, NodeSpec, toml_string};
use sync_host::node::{NodeHandle, RunningNode};
use sync_host::sync::conflict::Direction;
use sync_host::sync::retry::FailureKind;
use sync_host_store::store::Store;

use super::openmrs::{OpenMrs, PASSWORD, USER};

/// A single node whose parent is the OpenMRS-shaped server: pull only, feeds anonymous,
/// resources with HTTP Basic. `extra` is appended to the generated config.
pub async fn openmrs_child(
    dir: &Path,
    server: &OpenMrs,
    feeds: &[&str],
    extra: &str,
) -> anyhow::Result<Network> {
    child_of_url(dir, &server.base_url, feeds, extra).await
}

/// [`openmrs_child`] for a parent at any `base_url` (one that misbehaves at the socket level).
pub async fn child_of_url(
    dir: &Path,
    base_url: &str,
    feeds: &[&str],
    extra: &str,
) -> anyhow::Result<Network> {
    std::fs::create_dir_all(dir)?;
    let password_file = dir.join("openmrs.password");
    std::fs::write(&password_file, PASSWORD)?;
    let feeds: Vec<String> = feeds.iter().map(|f| toml_string(f)).collect();
    let mut spec = NodeSpec::new("clinic", None);
    spec.push = false;
    spec.extra_toml = format!(
        "[parent]\nnode_id = \"openmrs\"\nbase_url = {}\nfeeds = [{}]\nanonymous_feed = true\n\
         credentials = {{ kind = \"basic\", username = {}, password = {{ file = {} }} }}\n\n{extra}",
        toml_string(base_url),
        feeds.join(", "),
        toml_string(USER),
        toml_string(&password_file.display().to_string()),
    );
    Ok(Network::start(dir, vec![spec]).await?)
}

/// The node `id` of `network`.
pub fn node<'a>(network: &'a Network, id: &str) -> &'a NetNode {
    network
        .node(id)
        .unwrap_or_else(|| panic!("no node {id} in the network"))
}

/// The handle of node `id`.
pub fn handle<'a>(network: &'a Network, id: &str) -> &'a NodeHandle {
    &node(network, id).running.handle
}

/// The store of node `id`.
pub fn store<'a>(network: &'a Network, id: &str) -> &'a Store {
    handle(network, id)
        .store
        .as_ref()
        .unwrap_or_else(|| panic!("node {id} has no embedded store"))
}

/// A network node that was stopped, with what it needs to start again.
pub struct StoppedNode {
    pub spec: NodeSpec,
    pub dir: std::path::PathBuf,
    pub config_path: std::path::PathBuf,
    pub admin_token: String,
}

/// Stops node `id` and takes it out of `network` (e.g. to run it as a process).
pub async fn stop_node(network: &mut Network, id: &str) -> anyhow::Result<StoppedNode> {
    let at = network
        .nodes
        .iter()
        .position(|n| n.spec.id == id)
        .ok_or_else(|| anyhow::anyhow!("no node {id}"))?;
    let NetNode {
        spec,
        dir,
        config_path,
        admin_token,
        running,
    } = network.nodes.remove(at);
    running.shutdown().await;
    Ok(StoppedNode {
        spec,
        dir,
        config_path,
        admin_token,
    })
}

/// Rewrites a stopped node's config file with `edit`, starts it in this process and puts it
/// back at the end of `network`.
pub async fn start_again(
    network: &mut Network,
    stopped: StoppedNode,
    edit: impl FnOnce(String) -> String,
) -> anyhow::Result<()> {
    let text = edit(std::fs::read_to_string(&stopped.config_path)?);
    std::fs::write(&stopped.config_path, &text)?;
    let config = NodeConfig::parse(&text, &stopped.config_path)?;
    let running = RunningNode::start(config).await?;
    network.nodes.push(NetNode {
        spec: stopped.spec,
        dir: stopped.dir,
        config_path: stopped.config_path,
        admin_token: stopped.admin_token,
        running,
    });
    Ok(())
}

/// Stops node `id`, rewrites its config file with `edit`, and starts it again. Children come
/// after their parents in a network, so the node must be the last one.
pub async fn restart_with(
    network: &mut Network,
    id: &str,
    edit: impl FnOnce(String) -> String,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        network.nodes.last().is_some_and(|n| n.spec.id == id),
        "only the last node of a network can be restarted in place"
    );
    let stopped = stop_node(network, id).await?;
    start_again(network, stopped, edit).await
}

/// Restarts node `id` with its parent base URL replaced by `url` (e.g. a proxy).
pub async fn point_parent_at(network: &mut Network, id: &str, url: &str) -> anyhow::Result<()> {
    let parent_id = node(network, id)
        .spec
        .parent
        .clone()
        .ok_or_else(|| anyhow::anyhow!("node {id} has no parent"))?;
    let old = format!(
        "base_url = {}",
        toml_string(node(network, &parent_id).running.base_url())
    );
    let new = format!("base_url = {}", toml_string(url));
    restart_with(network, id, |text| {
        assert!(text.contains(&old), "config of {id} lacks `{old}`");
        text.replace(&old, &new)
    })
    .await
}

/// Every audit record of a node, oldest first.
pub fn audit(handle: &NodeHandle) -> Vec<AuditRecord> {
    let query = AuditQuery {
        limit: 1_000_000,
        ..AuditQuery::default()
    };
    let page = handle
        .state
        .audit()
        .query(&query)
        .unwrap_or_else(|e| panic!("audit query failed: {e}"));
    page.entries.into_iter().rev().map(|e| e.record).collect()
}

/// The audit records of one resource, oldest first.
pub fn audit_of(handle: &NodeHandle, resource_type: &str, id: &str) -> Vec<AuditRecord> {
    audit(handle)
        .into_iter()
        .filter(|r| r.resource_type == resource_type && r.resource_id == id)
        .collect()
}

/// The failure class and attempt of a `Failed` record.
pub fn failure_of(record: &AuditRecord) -> Option<(FailureKind, u32, &str)> {
    match &record.outcome {
        Outcome::Failed {
            failure,
            attempt,
            message,
            ..
        } => Some((*failure, *attempt, message.as_str())),
        _ => None,
    }
}

/// True for records that wrote the resource on pull.
pub fn applied_on_pull(record: &AuditRecord) -> bool {
    record.direction == Direction::Pull && matches!(record.outcome, Outcome::Applied)
}

/// A short account of records, for assertion messages.
pub fn describe(records: &[AuditRecord]) -> String {
    records
        .iter()
        .map(|r| {
            format!(
                "{:?} {} {}/{} {:?}",
                r.direction, r.action, r.resource_type, r.resource_id, r.outcome
            )
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

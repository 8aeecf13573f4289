//! A network of real nodes on loopback, each with its own embedded store, port and tokens:
//! what `sync-host demo` runs, and what the end-to-end tests and benchmarks build on.

mod compare;
mod config_text;
pub mod sample;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::config::NodeConfig;
use crate::node::{NodeError, RunningNode};
use crate::sync::conflict::Policy;
use crate::sync::service::RunReport;

pub use compare::{TypeList, contents, differences, placed_contents, scopes_above};
pub use config_text::{admin_token_file, node_toml, parent_token_file, toml_string};

/// One node to start.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub id: String,
    pub parent: Option<String>,
    pub pull: bool,
    pub push: bool,
    pub follow: bool,
    /// Seconds between scheduled runs; 0 runs only when driven (the default here).
    pub interval_secs: u64,
    pub policy: Policy,
    pub page_size: Option<usize>,
    /// `[server.api] catch_up_page_max`: the largest span of archive pages served at once.
    pub catch_up_page_max: Option<usize>,
    pub history_retention: usize,
    /// Appended to the generated config (routes, filters, category policies...).
    pub extra_toml: String,
    /// Seconds between status reports to the parent while idle; `None` turns reports off, so
    /// a test that counts or holds requests to the parent sees only sync traffic.
    pub report_interval_secs: Option<u64>,
    /// The data scope this node's parent confines it to (its client entry's `data_scope`).
    pub data_scope: Option<Vec<String>>,
    /// `[sync] leave_scope` (`keep` or `remove`); `None` leaves the default.
    pub leave_scope: Option<String>,
    /// `[sync.pull] data_scope` and `[sync.push] data_scope`: this node's own catchment.
    pub pull_scope: Option<Vec<String>>,
    pub push_scope: Option<Vec<String>>,
}

impl NodeSpec {
    /// A node syncing both ways with `parent` (or a root when `None`), driven by hand.
    pub fn new(id: &str, parent: Option<&str>) -> Self {
        Self {
            id: id.to_string(),
            parent: parent.map(str::to_string),
            pull: true,
            push: true,
            follow: false,
            interval_secs: 0,
            policy: Policy::Manual,
            page_size: None,
            catch_up_page_max: None,
            history_retention: 10,
            extra_toml: String::new(),
            report_interval_secs: None,
            data_scope: None,
            leave_scope: None,
            pull_scope: None,
            push_scope: None,
        }
    }
}

/// Why a network could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("node `{0}` names parent `{1}`, which is not started before it")]
    UnknownParent(String, String),
    #[error("cannot write files under {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the generated config of node `{node}` is invalid")]
    Config {
        node: String,
        source: crate::config::ConfigError,
    },
    #[error("node `{node}`")]
    Node { node: String, source: NodeError },
    #[error("node `{node}`: reading /metrics")]
    Metrics {
        node: String,
        source: reqwest::Error,
    },
    #[error("node `{node}` {direction}: {message}")]
    Sync {
        node: String,
        direction: &'static str,
        message: String,
    },
}

/// A started node with its files.
pub struct NetNode {
    pub spec: NodeSpec,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub admin_token: String,
    pub running: RunningNode,
}

impl NetNode {
    /// HTTP requests this node has served whose `/metrics` series carry every one of
    /// `labels` (`method="GET"`, say), summed.
    pub async fn http_requests(&self, labels: &[&str]) -> Result<u64, NetworkError> {
        let failed = |source| NetworkError::Metrics {
            node: self.spec.id.clone(),
            source,
        };
        let text = reqwest::Client::new()
            .get(format!("{}/metrics", self.running.base_url()))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(failed)?
            .text()
            .await
            .map_err(failed)?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with("sync_host_http_requests_total{"))
            .filter(|l| labels.iter().all(|label| l.contains(label)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum())
    }
}

/// Started nodes, parents before children.
pub struct Network {
    pub dir: PathBuf,
    pub nodes: Vec<NetNode>,
}

/// What one round of syncing did, per node and direction.
#[derive(Debug, Clone, Default)]
pub struct RoundReport {
    pub runs: BTreeMap<(String, &'static str), RunReport>,
}

impl RoundReport {
    /// Resources written anywhere in the round (applied or conflict-resolved writes).
    pub fn applied(&self) -> usize {
        self.runs.values().map(|r| r.applied).sum()
    }
}

impl Network {
    /// Starts `specs` (parents listed before their children) under `dir`.
    pub async fn start(dir: &Path, specs: Vec<NodeSpec>) -> Result<Network, NetworkError> {
        let mut network = Network {
            dir: dir.to_path_buf(),
            nodes: Vec::new(),
        };
        for spec in &specs {
            network.start_node(spec, &specs).await?;
        }
        Ok(network)
    }

    async fn start_node(&mut self, spec: &NodeSpec, all: &[NodeSpec]) -> Result<(), NetworkError> {
        let dir = self.dir.join(&spec.id);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| NetworkError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let admin_token = crate::node::clients::internal_token();
        write_secret(&admin_token_file(&dir), &admin_token).map_err(io(&dir))?;
        let children: Vec<(&NodeSpec, PathBuf)> = all
            .iter()
            .filter(|c| c.parent.as_deref() == Some(spec.id.as_str()))
            .map(|c| (c, self.dir.join(&c.id)))
            .collect();
        for (_, child_dir) in &children {
            std::fs::create_dir_all(child_dir).map_err(io(child_dir))?;
            let token = crate::node::clients::internal_token();
            let file = parent_token_file(child_dir);
            write_secret(&file, &token).map_err(io(&file))?;
        }
        let parent_url = match &spec.parent {
            Some(parent) => Some(
                self.node(parent)
                    .ok_or_else(|| NetworkError::UnknownParent(spec.id.clone(), parent.clone()))?
                    .running
                    .base_url()
                    .to_string(),
            ),
            None => None,
        };
        let child_refs: Vec<(&NodeSpec, &Path)> =
            children.iter().map(|(c, d)| (*c, d.as_path())).collect();
        let text = node_toml(spec, &dir, &child_refs, parent_url.as_deref());
        let config_path = dir.join("node.toml");
        std::fs::write(&config_path, &text).map_err(io(&config_path))?;
        let mut config =
            NodeConfig::parse(&text, &config_path).map_err(|source| NetworkError::Config {
                node: spec.id.clone(),
                source,
            })?;
        // The nodes of one network share compiled plugins: the first compiles, the rest load
        // the artifacts it cached in the network's own directory.
        config
            .plugins
            .cache_dir
            .get_or_insert_with(|| self.dir.join("plugin-cache"));
        let running = RunningNode::start(config)
            .await
            .map_err(|source| NetworkError::Node {
                node: spec.id.clone(),
                source,
            })?;
        self.nodes.push(NetNode {
            spec: spec.clone(),
            dir,
            config_path,
            admin_token,
            running,
        });
        Ok(())
    }

    /// The node called `id`.
    pub fn node(&self, id: &str) -> Option<&NetNode> {
        self.nodes.iter().find(|n| n.spec.id == id)
    }

    /// One round: every node pushes, deepest first, then every node pulls, root first, so a
    /// change made anywhere reaches every node in one round when nothing fails.
    pub async fn sync_round(&self) -> Result<RoundReport, NetworkError> {
        let mut report = RoundReport::default();
        let cancel = CancellationToken::new();
        for node in self.nodes.iter().rev() {
            self.run_direction(node, "push", &cancel, &mut report)
                .await?;
        }
        for node in &self.nodes {
            self.run_direction(node, "pull", &cancel, &mut report)
                .await?;
        }
        Ok(report)
    }

    async fn run_direction(
        &self,
        node: &NetNode,
        direction: &'static str,
        cancel: &CancellationToken,
        report: &mut RoundReport,
    ) -> Result<(), NetworkError> {
        let Some(services) = &node.running.handle.services else {
            return Ok(());
        };
        let service = match direction {
            "push" => services.push.as_ref(),
            _ => services.pull.as_ref(),
        };
        let Some((service, _)) = service else {
            return Ok(());
        };
        let run = service
            .run_once(cancel)
            .await
            .map_err(|e| NetworkError::Sync {
                node: node.spec.id.clone(),
                direction,
                message: crate::error_chain::chain(&e),
            })?;
        report.runs.insert((node.spec.id.clone(), direction), run);
        Ok(())
    }

    /// Runs rounds until one writes nothing (at most `max_rounds`); returns the rounds run.
    pub async fn sync_until_quiet(&self, max_rounds: usize) -> Result<usize, NetworkError> {
        for round in 1..=max_rounds {
            if self.sync_round().await?.applied() == 0 {
                return Ok(round);
            }
        }
        Ok(max_rounds)
    }

    /// Stops every node, children first.
    pub async fn shutdown(self) {
        for node in self.nodes.into_iter().rev() {
            node.running.shutdown().await;
        }
    }
}

fn write_secret(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

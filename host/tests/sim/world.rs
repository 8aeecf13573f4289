//! The simulated tree, for real: four nodes in this process, each with its own sled store and
//! sync state in a temporary directory and the real wasm plugins, every child reaching its
//! parent through a [`HookProxy`]. Sync runs are driven by hand (`interval_secs = 0`), so the
//! simulation decides what runs when; nothing waits on a clock.

use std::path::{Path, PathBuf};

use sync_host::config::NodeConfig;
use sync_host::network::{NetNode, NodeSpec, admin_token_file, node_toml};
use sync_host::node::RunningNode;
use sync_host::sync::service::{RunReport, SyncService};
use sync_host_store::store::Store;
use tokio_util::sync::CancellationToken;

use super::hook_proxy::HookProxy;
use super::schedule::{Dir, NODES, PARENT, Schedule};

/// The token file a child presents to its parent (the name the network's config writer uses).
const PARENT_TOKEN: &str = "parent.token";

/// What a stopped node leaves behind to be started again.
pub struct NodeFiles {
    pub spec: NodeSpec,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub admin_token: String,
}

/// The running tree.
pub struct World {
    /// Indexed like [`NODES`]; `None` only while a node restarts.
    pub nodes: Vec<Option<NetNode>>,
    /// The proxy in front of each node's parent, indexed by the child.
    pub proxies: Vec<Option<HookProxy>>,
    /// Declared last so it is removed after the nodes have stopped.
    pub dir: tempfile::TempDir,
}

impl World {
    /// Starts the tree for `schedule` (its policy and page size).
    pub async fn start(schedule: &Schedule) -> anyhow::Result<World> {
        let dir = tempfile::Builder::new().prefix("sync-sim-").tempdir()?;
        let specs: Vec<NodeSpec> = (0..NODES.len()).map(|i| spec(i, schedule)).collect();
        let mut world = World {
            nodes: Vec::new(),
            proxies: Vec::new(),
            dir,
        };
        // Every link exists before any node starts, so the nodes can start side by side;
        // each link learns where its parent listens once the parent is up.
        for parent in PARENT {
            world.proxies.push(match parent {
                Some(_) => Some(HookProxy::start("http://127.0.0.1:9").await?),
                None => None,
            });
        }
        let root = world.dir.path();
        let starts = specs
            .iter()
            .zip(&world.proxies)
            .map(|(spec, link)| start_node(root, spec, &specs, link.as_ref()));
        for node in futures::future::join_all(starts).await {
            world.nodes.push(Some(node?));
        }
        for (child, parent) in PARENT.iter().enumerate() {
            if let Some(parent) = parent {
                world
                    .proxy(child)
                    .set_upstream(world.node(*parent).running.base_url());
            }
        }
        Ok(world)
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &NetNode {
        match self.nodes.get(i).and_then(Option::as_ref) {
            Some(node) => node,
            None => panic!("node {} is not running", NODES[i]),
        }
    }

    /// The embedded store of node `i`.
    pub fn store(&self, i: usize) -> &Store {
        match &self.node(i).running.handle.store {
            Some(store) => store,
            None => panic!("node {} has no embedded store", NODES[i]),
        }
    }

    /// The proxy between node `i` and its parent.
    pub fn proxy(&self, i: usize) -> &HookProxy {
        match self.proxies.get(i).and_then(Option::as_ref) {
            Some(proxy) => proxy,
            None => panic!("node {} has no parent link", NODES[i]),
        }
    }

    /// A run of node `i` in `dir` that owns what it needs, so the world stays usable (and the
    /// node restartable) while the run is paused.
    pub fn service(&self, i: usize, dir: Dir) -> anyhow::Result<SyncService> {
        let services = self
            .node(i)
            .running
            .handle
            .services
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("{} has no sync services", NODES[i]))?;
        let service = match dir {
            Dir::Pull => services.pull.as_ref(),
            Dir::Push => services.push.as_ref(),
        };
        let (service, _) =
            service.ok_or_else(|| anyhow::anyhow!("{} does not {dir:?}", NODES[i]))?;
        Ok(service.clone())
    }

    /// Starts, side by side and in this process, nodes stopped with [`World::stop_nodes`].
    pub async fn start_again(&mut self, files: Vec<NodeFiles>) -> anyhow::Result<()> {
        let starts = files.into_iter().map(|f| async move {
            let running = start_from(&f.config_path).await?;
            anyhow::Ok(NetNode {
                spec: f.spec,
                dir: f.dir,
                config_path: f.config_path,
                admin_token: f.admin_token,
                running,
            })
        });
        self.nodes.clear();
        for node in futures::future::join_all(starts).await {
            self.nodes.push(Some(node?));
        }
        Ok(())
    }

    /// Stops node `i` (a non-root node) and starts it again from its data directory; the
    /// proxies of its children follow it to its new port.
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let node = self.nodes[i]
            .take()
            .ok_or_else(|| anyhow::anyhow!("{} is not running", NODES[i]))?;
        let NetNode {
            spec,
            dir,
            config_path,
            admin_token,
            running,
        } = node;
        running.shutdown().await;
        let running = start_from(&config_path).await?;
        for (child, parent) in PARENT.iter().enumerate() {
            if *parent == Some(i) {
                self.proxy(child).set_upstream(running.base_url());
            }
        }
        self.nodes[i] = Some(NetNode {
            spec,
            dir,
            config_path,
            admin_token,
            running,
        });
        Ok(())
    }

    /// Stops every node but keeps its files, so it can run again (as a process, or here).
    pub async fn stop_nodes(&mut self) -> Vec<NodeFiles> {
        let mut stopped = Vec::new();
        for node in self.nodes.iter_mut().filter_map(Option::take) {
            let NetNode {
                spec,
                dir,
                config_path,
                admin_token,
                running,
            } = node;
            running.shutdown().await;
            stopped.push(NodeFiles {
                spec,
                dir,
                config_path,
                admin_token,
            });
        }
        stopped
    }

    /// Stops every node; the simulation runs nothing at this point, so all at once.
    pub async fn shutdown(mut self) {
        let stops = self
            .nodes
            .iter_mut()
            .filter_map(Option::take)
            .map(|node| node.running.shutdown());
        futures::future::join_all(stops).await;
    }
}

/// Runs `service` once, as its scheduler would.
pub async fn run_once(service: SyncService) -> Result<RunReport, String> {
    service
        .run_once(&CancellationToken::new())
        .await
        .map_err(|e| e.to_string())
}

/// Starts a stopped node again from its config file. sled releases a database's lock from a
/// background thread after the last handle is dropped, so a reopen in the same process right
/// after a stop may find it still held for a moment; that is retried, everything else is not.
async fn start_from(config_path: &Path) -> anyhow::Result<RunningNode> {
    let text = std::fs::read_to_string(config_path)?;
    let mut tries = 0;
    loop {
        let mut config = NodeConfig::parse(&text, config_path)?;
        config.plugins.cache_dir = Some(plugin_cache());
        match RunningNode::start(config).await {
            Ok(running) => return Ok(running),
            Err(e) if tries < 250 && lock_still_held(&e) => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether starting failed only because sled still holds the previous instance's lock (the
/// cause sits anywhere in the error's chain).
fn lock_still_held(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source())
        .any(|e| e.to_string().contains("could not acquire lock"))
}

fn spec(i: usize, schedule: &Schedule) -> NodeSpec {
    let mut spec = NodeSpec::new(NODES[i], PARENT[i].map(|p| NODES[p]));
    spec.policy = schedule.policy;
    spec.page_size = Some(schedule.page_size);
    // A catch-up reads spans of three pages, so schedules cross both pages and spans.
    spec.catch_up_page_max = Some(schedule.page_size * 3);
    // Every version is kept, so a failing schedule can be read back from the stores.
    spec.history_retention = 0;
    spec
}

/// One compiled-plugin cache for every simulated node of this build.
pub fn plugin_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-plugin-cache")
}

/// Writes node `spec`'s files under `root` the way the network builder does, with retries due
/// at once (so quiescence needs no waiting), and starts it.
async fn start_node(
    root: &Path,
    spec: &NodeSpec,
    all: &[NodeSpec],
    parent_link: Option<&HookProxy>,
) -> anyhow::Result<NetNode> {
    let dir = root.join(&spec.id);
    std::fs::create_dir_all(&dir)?;
    let admin_token = sync_host::node::clients::internal_token();
    write_secret(&admin_token_file(&dir), &admin_token)?;
    let mut children = Vec::new();
    for child in all.iter().filter(|c| c.parent.as_deref() == Some(&spec.id)) {
        let child_dir = root.join(&child.id);
        std::fs::create_dir_all(&child_dir)?;
        write_secret(
            &child_dir.join(PARENT_TOKEN),
            &sync_host::node::clients::internal_token(),
        )?;
        children.push((child, child_dir));
    }
    let child_refs: Vec<(&NodeSpec, &Path)> =
        children.iter().map(|(c, d)| (*c, d.as_path())).collect();
    let parent_url = parent_link.map(HookProxy::url);
    let text = node_toml(spec, &dir, &child_refs, parent_url.as_deref());
    anyhow::ensure!(
        text.contains("base_secs = 1\n"),
        "the generated [sync.retry] changed"
    );
    let text = text.replace("base_secs = 1\n", "base_secs = 0\n");
    let config_path = dir.join("node.toml");
    std::fs::write(&config_path, &text)?;
    let mut config = NodeConfig::parse(&text, &config_path)?;
    config.plugins.cache_dir = Some(plugin_cache());
    let running = RunningNode::start(config).await?;
    Ok(NetNode {
        spec: spec.clone(),
        dir,
        config_path,
        admin_token,
        running,
    })
}

/// A secret file only its owner may read, as an operator would keep it.
pub fn write_secret(path: &Path, value: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, value)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

//! A running node: the embedded store and its HTTP API, the plugin registry, and the pull and
//! push services on their schedules, started from one configuration and stopped gracefully
//! (schedulers first, then the server, then the sync state and audit are flushed last).

pub mod admin;
pub mod classifier;
pub mod clients;
mod feed_metrics;
pub mod in_process;
pub mod lag;
pub mod limits;
mod maintenance;
pub mod metrics;
pub mod refusals;
pub mod remote_resolve;
pub mod report_api;
mod report_sender;
pub mod reporting;
pub mod resolve;
mod services;
mod sync_metrics;
pub mod wiring;

use std::net::SocketAddr;
use std::sync::Arc;

use sync_host_store::api::{ApiState, router, serve};
use sync_host_store::store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;

use crate::config::NodeConfig;
use crate::error_chain::Chain;
use crate::plugins::{PluginRegistry, runtime_config};
use crate::state::SyncState;
use crate::sync::scheduler::Trigger;
use crate::sync::status::DirectionStatus;

pub use services::{LOCAL_FEED_OWNER, LocalSide, Services};

/// The sync state's page cache.
const STATE_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// How long shutdown waits for in-flight requests before it closes their connections: a client
/// that never finishes its request must not keep the node from stopping.
const SERVER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Why a node could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create data directory {path}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the store")]
    Store(#[from] sync_host_store::store::StoreError),
    #[error("cannot open the sync state")]
    State(#[from] crate::state::StateError),
    #[error("cannot open the sync state database")]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Clients(#[from] clients::ClientSetupError),
    #[error("cannot listen on {address} (`server.listen`)")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Plugins(#[from] crate::plugins::RegistryError),
    #[error("{}", file.display())]
    Wiring {
        file: std::path::PathBuf,
        source: wiring::WiringError,
    },
    #[error("secret for `{what}` in {}", file.display())]
    Secret {
        what: String,
        file: std::path::PathBuf,
        source: crate::config::SecretError,
    },
    #[error("{what}: {reason}")]
    Setup { what: String, reason: String },
    #[error("plugin runtime")]
    Runtime(#[from] sync_host_runtime::RuntimeError),
}

/// The API of a node that syncs an external server: health only, beside `/admin` and `/metrics`.
fn health_only() -> axum::Router {
    axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok\n" }))
}

/// What the admin API and the CLI can see and poke of a running node.
#[derive(Clone)]
pub struct NodeHandle {
    pub node_id: String,
    pub parent_node: Option<String>,
    pub base_url: String,
    pub state: SyncState,
    pub store: Option<Store>,
    pub pull: Option<(Trigger, DirectionStatus)>,
    pub push: Option<(Trigger, DirectionStatus)>,
    pub services: Option<Arc<Services>>,
    /// The report tree as this node sees it.
    pub reporting: Arc<reporting::Reporting>,
}

/// A node that is up: its address, its handle, and the tasks to stop.
pub struct RunningNode {
    pub address: SocketAddr,
    pub handle: NodeHandle,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Opens the sync state kept in a node's data directory (the node must not be running).
pub fn open_sync_state(data_dir: &std::path::Path) -> Result<SyncState, NodeError> {
    // The sync state is small and mostly appended; its page cache need not be large.
    let db = sled::Config::new()
        .path(data_dir.join("sync-state"))
        .cache_capacity(STATE_CACHE_BYTES)
        .open()?;
    Ok(SyncState::open(&db)?)
}

/// What the node knows of the report tree: its children's kept reports and its own plugins.
fn reporting_of(
    config: &NodeConfig,
    server: &crate::config::ServerSection,
    state: &SyncState,
    registry: &PluginRegistry,
) -> Result<reporting::Reporting, NodeError> {
    let children = server
        .clients
        .iter()
        .filter_map(|c| Some((c.name.clone(), c.child_node_id()?.to_string())))
        .collect();
    Ok(reporting::Reporting {
        book: crate::report::ReportBook::new(state.tree(crate::report::book::REPORTS)?),
        decisions: crate::report::DecisionBook::new(
            state.tree(crate::report::decisions::DECISIONS)?,
        ),
        children,
        stale_after: std::time::Duration::from_secs(config.report.stale_after_secs),
        plugins: reporting::plugin_summaries(registry),
    })
}

/// Where this node sends its reports: its parent, unless reports are turned off.
fn report_link(config: &NodeConfig) -> Result<Option<report_sender::ParentLink>, NodeError> {
    let Some(parent) = config.parent.as_ref().filter(|_| config.report.enabled) else {
        return Ok(None);
    };
    let credentials =
        clients::outbound_credentials(parent.credentials.as_ref()).map_err(|source| {
            NodeError::Secret {
                what: "parent.credentials".into(),
                file: config.path.clone(),
                source,
            }
        })?;
    report_sender::ParentLink::new(&parent.base_url, credentials)
        .map(Some)
        .map_err(|e| NodeError::Setup {
            what: format!("HTTP client for reports to {}", parent.base_url),
            reason: e.to_string(),
        })
}

impl RunningNode {
    /// Starts a node from `config`.
    pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
        let data_dir = config.node.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| NodeError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let state = open_sync_state(&data_dir)?;
        let server = config.server.clone().ok_or_else(|| NodeError::Setup {
            what: "[server]".into(),
            reason: "a node needs [server] for its API, admin and metrics".into(),
        })?;
        let internal = clients::internal_token();
        let clients = Arc::new(clients::build_clients(
            &server.clients,
            &internal,
            &config.path,
        )?);
        let listener = limits::listen(&server.listen, server.listen_backlog).map_err(|source| {
            NodeError::Listen {
                address: server.listen.clone(),
                source,
            }
        })?;
        let address = listener.local_addr().map_err(|source| NodeError::Listen {
            address: server.listen.clone(),
            source,
        })?;
        let base_url = format!("http://{address}");
        let feed = feed_metrics::FeedMetrics {
            long_polls: Default::default(),
            pages: Default::default(),
        };
        let runtime = sync_host_runtime::PluginRuntime::new(runtime_config(
            &config.plugins,
            Some(&data_dir),
        ))?;
        let registry = PluginRegistry::load(runtime, config.plugins.dir.as_deref()).await?;
        // With an external local server the embedded store is not opened at all.
        let (store, api, local) = match &config.local {
            Some(external) => (None, health_only(), LocalSide::External(external.clone())),
            None => {
                let rules =
                    classifier::store_rules(&config, &registry)
                        .await
                        .map_err(|source| NodeError::Wiring {
                            file: config.path.clone(),
                            source,
                        })?;
                let store = Store::open(&data_dir.join("store"), config.store_config(rules))?;
                let api = router(ApiState {
                    store: store.clone(),
                    config: server.api.clone(),
                    clients: Arc::clone(&clients),
                    long_polls: Arc::clone(&feed.long_polls),
                    pages: Arc::clone(&feed.pages),
                    refusals: Some(refusals::into_audit(
                        state.audit().clone(),
                        config.node.id.clone(),
                    )),
                });
                let local = LocalSide::Embedded {
                    store: store.clone(),
                    api: api.clone(),
                    internal_token: internal.clone(),
                };
                (Some(store), api, local)
            }
        };
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let services = Services::build(&config, &registry, &state, &base_url, local).await?;
        let services = Arc::new(services);
        let (pull, push) = services.spawn(&mut tasks, &cancel);
        tasks.spawn(maintenance::prune_audit(
            state.clone(),
            maintenance::retention(&config.audit),
            cancel.clone(),
        ));
        let handle = NodeHandle {
            node_id: config.node.id.clone(),
            parent_node: config.parent.as_ref().map(|p| p.node_id.clone()),
            base_url: base_url.clone(),
            state: state.clone(),
            store: store.clone(),
            pull,
            push,
            services: Some(Arc::clone(&services)),
            reporting: Arc::new(reporting_of(&config, &server, &state, &registry)?),
        };
        if let Some(parent) = report_link(&config)? {
            let interval = std::time::Duration::from_secs(config.report.interval_secs);
            tasks.spawn(report_sender::send_reports(
                handle.clone(),
                parent,
                interval,
                cancel.clone(),
            ));
        }
        let shared = Arc::new(handle.clone());
        let app = api
            .merge(admin::router(Arc::clone(&shared), Arc::clone(&clients)))
            .merge(report_api::router(
                Arc::clone(&shared),
                Arc::clone(&clients),
            ))
            .merge(crate::ui::router(shared, Arc::clone(&clients)));
        let mut collectors: Vec<Box<dyn prometheus_client::collector::Collector>> =
            vec![Box::new(sync_metrics::SyncMetrics {
                node: Arc::new(handle.clone()),
                runtime: registry.runtime().clone(),
            })];
        if store.is_some() {
            collectors.push(Box::new(feed));
        }
        let app = metrics::instrument(
            app,
            metrics::Metrics::new(state.clone(), Arc::clone(&clients), collectors),
        );
        // Clinics sit on slow links: answers are compressed for clients that accept it (feed
        // pages and FHIR bodies shrink several times). In-process calls never ask for it.
        let app = app.layer(CompressionLayer::new());
        let shutdown = cancel.clone();
        let server_task = tokio::spawn(serve(
            listener,
            app,
            async move { shutdown.cancelled().await },
        ));
        tracing::info!(node = %config.node.id, %base_url, "node started");
        Ok(RunningNode {
            address,
            handle,
            cancel,
            tasks,
            server: Some(server_task),
        })
    }

    /// The node's base URL.
    pub fn base_url(&self) -> &str {
        &self.handle.base_url
    }

    /// A token that stops the node when cancelled.
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stops the schedulers (each finishes or abandons its batch cleanly), then the server,
    /// then flushes the store and, last, the sync state with its audit log.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
        if let Some(mut server) = self.server.take() {
            match tokio::time::timeout(SERVER_GRACE, &mut server).await {
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "server stopped with an error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "server task failed"),
                Ok(Ok(Ok(()))) => {}
                Err(_) => {
                    tracing::warn!("requests still open after the grace period; closing them");
                    server.abort();
                }
            }
        }
        if let Some(store) = &self.handle.store
            && let Err(e) = store.flush().await
        {
            tracing::warn!(error = %Chain(&e), "store flush at shutdown failed");
        }
        if let Err(e) = self.handle.state.flush().await {
            tracing::warn!(error = %Chain(&e), "audit flush at shutdown failed");
        }
        tracing::info!(node = %self.handle.node_id, "node stopped");
    }
}

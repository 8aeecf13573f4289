//! The pull and push services of a node, built from its configuration and spawned on their
//! schedules.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use sync_host_store::scope::DataScope;
use sync_host_store::store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{DirectionSection, LocalSection, NodeConfig};
use crate::node::NodeError;
use crate::node::clients::outbound_credentials;
use crate::node::in_process::InProcessRouter;
use crate::node::wiring::{self, Sides};
use crate::plugins::PluginRegistry;
use crate::state::SyncState;
use crate::sync::conflict::Direction;
use crate::sync::link::Link;
use crate::sync::progress::Progress;
use crate::sync::reader::FeedReader;
use crate::sync::scheduler::{Schedule, Trigger, run_scheduled};
use crate::sync::service::SyncService;
use crate::sync::status::DirectionStatus;
use crate::sync::transport::{FeedTransport, HttpTransport, InProcessTransport};

/// How a running direction is poked (`sync-now`) and watched (`status`).
pub type Control = (Trigger, DirectionStatus);

/// Markers of this node's own feed are kept under this owner name.
pub const LOCAL_FEED_OWNER: &str = "local";

/// How long a feed request may take; above the longest long-poll a publisher holds.
const FEED_TIMEOUT: Duration = Duration::from_secs(90);

/// The local side of a node: its own embedded store, served in process, or an external server
/// (an OpenMRS instance, say) reached over HTTP.
pub enum LocalSide {
    /// The embedded store, its API router and the node's internal token for calling it.
    Embedded {
        store: Store,
        api: Router,
        internal_token: String,
    },
    /// An external server named by `[local]`.
    External(LocalSection),
}

/// The services of one node (either may be absent: one-way sync is normal).
pub struct Services {
    pub pull: Option<(SyncService, Schedule)>,
    pub push: Option<(SyncService, Schedule)>,
    pub sides: Sides,
}

impl Services {
    /// Builds both directions for a node whose own API is at `base_url`.
    pub async fn build(
        config: &NodeConfig,
        registry: &PluginRegistry,
        state: &SyncState,
        base_url: &str,
        local: LocalSide,
    ) -> Result<Self, NodeError> {
        let max_page = config.sync.max_feed_page_bytes();
        let parent = match &config.parent {
            Some(p) => Some((
                p.base_url.as_str(),
                secret(
                    config,
                    "parent.credentials",
                    outbound_credentials(p.credentials.as_ref()),
                )?,
            )),
            None => None,
        };
        let (sides, push_feeds) = match &local {
            LocalSide::Embedded {
                api,
                internal_token,
                ..
            } => {
                let service: Arc<dyn sync_host_runtime::LocalService> =
                    Arc::new(InProcessRouter::new(api.clone()));
                let internal = Some(sync_host_runtime::Credentials::Bearer(
                    internal_token.clone(),
                ));
                let sides = in_file(
                    config,
                    wiring::sides(base_url, internal, Some(Arc::clone(&service)), parent),
                )?;
                let transport: Arc<dyn FeedTransport> =
                    Arc::new(InProcessTransport::new(service, internal_token.clone()));
                let feed_base = format!("{}/ws/atomfeed", base_url.trim_end_matches('/'));
                let feeds = vec![Arc::new(FeedReader::new(
                    "all", &feed_base, transport, None,
                ))];
                (sides, feeds)
            }
            LocalSide::External(external) => {
                let credentials = secret(
                    config,
                    "local.credentials",
                    outbound_credentials(external.credentials.as_ref()),
                )?;
                let sides = in_file(
                    config,
                    wiring::sides(&external.base_url, credentials.clone(), None, parent),
                )?;
                let transport: Arc<dyn FeedTransport> = Arc::new(
                    HttpTransport::new(credentials, FEED_TIMEOUT, max_page).map_err(|e| {
                        NodeError::Setup {
                            what: format!("HTTP client for {}", external.base_url),
                            reason: e.to_string(),
                        }
                    })?,
                );
                let feed_base = format!(
                    "{}{}",
                    external.base_url.trim_end_matches('/'),
                    external.feed_path
                );
                let feeds = external
                    .feeds
                    .iter()
                    .map(|f| Arc::new(FeedReader::new(f, &feed_base, Arc::clone(&transport), None)))
                    .collect();
                (sides, feeds)
            }
        };
        // Routes and filters are checked whether or not this node syncs, so `serve` refuses
        // the same configuration `run` refuses.
        let routes = in_file(config, wiring::routes(config, registry, &sides))?;
        let Some(parent_config) = &config.parent else {
            in_file(
                config,
                wiring::filters(config, registry, Direction::Pull).await,
            )?;
            in_file(
                config,
                wiring::filters(config, registry, Direction::Push).await,
            )?;
            return Ok(Self {
                pull: None,
                push: None,
                sides,
            });
        };
        let parent_endpoint = sides.parent.clone().ok_or_else(|| NodeError::Setup {
            what: "parent".into(),
            reason: "no endpoint was built for the configured parent".into(),
        })?;
        let make_pipeline = |direction, filters| Link {
            node_id: config.node.id.clone(),
            parent_node: parent_config.node_id.clone(),
            direction,
            source: match direction {
                Direction::Pull => parent_endpoint.clone(),
                Direction::Push => sides.local.clone(),
            },
            target: match direction {
                Direction::Pull => sides.local.clone(),
                Direction::Push => parent_endpoint.clone(),
            },
            routes: routes.clone(),
            filters,
            policies: wiring::policies(config),
            retry: wiring::retry_policy(config),
            state: state.clone(),
            // A conflict won by the target's state is written back to the source, so both
            // sides hold the winner; a pull-only node never writes to its parent.
            write_back: match direction {
                Direction::Pull => config.sync.push.enabled,
                Direction::Push => true,
            },
            target_store: match (&local, direction) {
                (LocalSide::Embedded { store, .. }, Direction::Pull) => Some(store.clone()),
                _ => None,
            },
            leave_scope: config.sync.leave_scope,
            own_scope: own_scope(config, &local, direction),
        };
        let pull = if config.sync.pull.enabled {
            let filters = in_file(
                config,
                wiring::filters(config, registry, Direction::Pull).await,
            )?;
            let feed_credentials = if parent_config.anonymous_feed {
                None
            } else {
                let configured = parent_config
                    .feed_credentials
                    .as_ref()
                    .or(parent_config.credentials.as_ref());
                secret(
                    config,
                    "parent.feed_credentials",
                    outbound_credentials(configured),
                )?
            };
            let transport: Arc<dyn FeedTransport> = Arc::new(
                HttpTransport::new(feed_credentials, FEED_TIMEOUT, max_page).map_err(|e| {
                    NodeError::Setup {
                        what: format!("HTTP client for {}", parent_config.base_url),
                        reason: e.to_string(),
                    }
                })?,
            );
            let feed_base = format!(
                "{}{}",
                parent_config.base_url.trim_end_matches('/'),
                parent_config.feed_path
            );
            let long_poll = config.sync.pull.follow.then(|| Duration::from_secs(25));
            let feeds = parent_config
                .feeds
                .iter()
                .map(|f| {
                    Arc::new(FeedReader::new(
                        f,
                        &feed_base,
                        Arc::clone(&transport),
                        long_poll,
                    ))
                })
                .collect();
            let service = SyncService::new(
                make_pipeline(Direction::Pull, filters),
                parent_config.node_id.clone(),
                feeds,
                Progress::new("pull"),
            );
            Some((service, schedule(&config.sync.pull)))
        } else {
            None
        };
        let push = if config.sync.push.enabled {
            let filters = in_file(
                config,
                wiring::filters(config, registry, Direction::Push).await,
            )?;
            let service = SyncService::new(
                make_pipeline(Direction::Push, filters),
                LOCAL_FEED_OWNER.to_string(),
                push_feeds,
                Progress::new("push"),
            );
            Some((service, schedule(&config.sync.push)))
        } else {
            None
        };
        Ok(Self { pull, push, sides })
    }

    /// Spawns a scheduler per enabled direction; returns their triggers and statuses.
    pub fn spawn(
        &self,
        tasks: &mut JoinSet<()>,
        cancel: &CancellationToken,
    ) -> (Option<Control>, Option<Control>) {
        let mut spawn_one = |entry: &Option<(SyncService, Schedule)>, name: &'static str| {
            let (service, schedule) = entry.as_ref()?;
            let trigger = Trigger::default();
            let status = DirectionStatus::new(service.progress().clone());
            let span = tracing::info_span!("sync", direction = name);
            let task = run_scheduled(
                service.clone(),
                *schedule,
                trigger.clone(),
                status.clone(),
                cancel.clone(),
            );
            tasks.spawn(tracing::Instrument::instrument(task, span));
            Some((trigger, status))
        };
        let pull = spawn_one(&self.pull, "pull");
        let push = spawn_one(&self.push, "push");
        (pull, push)
    }
}

/// The node's own data scope for `direction`, with the embedded store that places resources
/// for it; configuration checks refuse a scope without the embedded store.
fn own_scope(
    config: &NodeConfig,
    local: &LocalSide,
    direction: Direction,
) -> Option<(Arc<DataScope>, Store)> {
    let section = match direction {
        Direction::Pull => &config.sync.pull,
        Direction::Push => &config.sync.push,
    };
    // Loading the configuration refused a scope that does not build, so none is dropped here.
    let scope = DataScope::new(section.data_scope.as_deref()?).ok()?;
    match local {
        LocalSide::Embedded { store, .. } => Some((Arc::new(scope), store.clone())),
        LocalSide::External(_) => None,
    }
}

fn schedule(section: &DirectionSection) -> Schedule {
    Schedule {
        interval: (section.interval_secs > 0).then(|| Duration::from_secs(section.interval_secs)),
        jitter: Duration::from_secs(section.jitter_secs),
        follow: section.follow,
        max_backoff: Duration::from_secs(section.max_backoff_secs.max(1)),
    }
}

fn secret<T>(
    config: &NodeConfig,
    what: &str,
    result: Result<T, crate::config::SecretError>,
) -> Result<T, NodeError> {
    result.map_err(|source| NodeError::Secret {
        what: what.to_string(),
        file: config.path.clone(),
        source,
    })
}

/// A wiring error, with the configuration file it is about.
fn in_file<T>(config: &NodeConfig, result: Result<T, wiring::WiringError>) -> Result<T, NodeError> {
    result.map_err(|source| NodeError::Wiring {
        file: config.path.clone(),
        source,
    })
}

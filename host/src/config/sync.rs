//! The sync sections of the node configuration: the parent, the local side, the schedules,
//! routing, filters, conflict policies, retries and audit retention.

use serde::Deserialize;
use std::collections::BTreeMap;

use super::{CredentialsConfig, SecretSource};
use crate::sync::conflict::Policy;

/// `[server]`: the node's own HTTP API (store, feed, admin).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on, e.g. `127.0.0.1:8080` (`:0` picks a free port).
    pub listen: String,
    /// Connections the kernel queues for `accept` (capped by `net.core.somaxconn`): a fleet
    /// of children reconnecting at once after the node restarts must not overflow it.
    #[serde(default = "default_backlog")]
    pub listen_backlog: u32,
    /// URL bases, page size and limits of the API.
    #[serde(default)]
    pub api: sync_host_store::config::ApiConfig,
    /// Old versions kept per resource besides the current one (0 keeps all).
    #[serde(default = "default_history")]
    pub history_retention: usize,
    /// Who may call the API. There are no default clients.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
}

fn default_history() -> usize {
    10
}

fn default_backlog() -> u32 {
    4096
}

/// `[[server.clients]]`: one caller of this node's API with its own token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub name: String,
    pub token: SecretSource,
    /// `read`, `write`, `admin`.
    pub scopes: Vec<sync_host_store::auth::Scope>,
    /// True for a child node: its writes may name the node a change came from.
    #[serde(default)]
    pub child_node: bool,
    /// The child's node id, when it differs from `name`: the child's status reports must come
    /// from this node.
    #[serde(default)]
    pub node_id: Option<String>,
    /// The data this client may see and write: scope keys such as `Organization/<id>` or
    /// `Location/<id>`, where `*` matches any run of characters. Without it the client sees
    /// everything. Anything outside it reads as missing (404) and is refused as a write (403).
    #[serde(default)]
    pub data_scope: Option<Vec<String>>,
}

impl ClientConfig {
    /// The node id of a child-node client (`node_id`, else `name`); `None` for other clients.
    pub fn child_node_id(&self) -> Option<&str> {
        self.child_node
            .then(|| self.node_id.as_deref().unwrap_or(&self.name))
    }
}

/// `[parent]`: the node above this one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentSection {
    /// The parent's node id. Markers are kept under it, so a new address or password
    /// does not rewind the sync.
    pub node_id: String,
    /// The parent's base URL, e.g. `https://district.example/openmrs`.
    pub base_url: String,
    /// Credentials for the parent's resources (and its feed, unless `feed_credentials`).
    pub credentials: Option<CredentialsConfig>,
    /// Credentials for the feed only; an OpenMRS feed may be anonymous while its resources
    /// need Basic auth. Set `anonymous_feed = true` for that case.
    pub feed_credentials: Option<CredentialsConfig>,
    #[serde(default)]
    pub anonymous_feed: bool,
    /// Feeds to pull, in order: `["all"]` (the combined feed of a sync-host parent) or the
    /// categories of an OpenMRS parent (`["patient", "encounter", "observation"]`).
    #[serde(default = "default_feeds")]
    pub feeds: Vec<String>,
    /// Path of the Atom feeds under the base URL.
    #[serde(default = "default_feed_path")]
    pub feed_path: String,
}

/// `[local]`: an external server to sync instead of the embedded store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSection {
    pub base_url: String,
    pub credentials: Option<CredentialsConfig>,
    #[serde(default = "default_feeds")]
    pub feeds: Vec<String>,
    #[serde(default = "default_feed_path")]
    pub feed_path: String,
}

pub(crate) fn default_feeds() -> Vec<String> {
    vec!["all".to_string()]
}

pub(crate) fn default_feed_path() -> String {
    "/ws/atomfeed".to_string()
}

/// `[sync]`: when and how each direction runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSection {
    #[serde(default)]
    pub pull: DirectionSection,
    #[serde(default)]
    pub push: DirectionSection,
    /// The conflict policy for every category without an override. The default is
    /// `manual`: a conflict is parked for an operator, because silently overwriting a
    /// clinical record is the worst outcome.
    #[serde(default)]
    pub conflict_policy: Policy,
    /// Per-category overrides, e.g. `{ location = "parent-wins" }`.
    #[serde(default)]
    pub category_policies: BTreeMap<String, Policy>,
    #[serde(default)]
    pub retry: RetrySection,
    /// The largest feed page read over HTTP, in MiB. A page is read as a stream and refused
    /// once it grows past this, like a plugin response over `plugins.max_response_mib`.
    #[serde(default = "default_max_feed_page_mib")]
    pub max_feed_page_mib: u64,
    /// What this node does with its copy of a resource that left its data scope at the
    /// parent: `keep` it as it is (the default: nothing is lost), or `remove` it.
    #[serde(default)]
    pub leave_scope: LeaveScope,
}

/// What a child does with its copy of a resource its parent no longer shares with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaveScope {
    /// Keep the copy, unchanged: the parent sends no further changes of it.
    #[default]
    Keep,
    /// Delete the copy here (never at the parent), as a delete pulled from the parent: a
    /// local edit made since the last sync meets it as a conflict, settled by policy.
    Remove,
}

impl Default for SyncSection {
    fn default() -> Self {
        Self {
            pull: DirectionSection::default(),
            push: DirectionSection::default(),
            conflict_policy: Policy::Manual,
            category_policies: BTreeMap::new(),
            retry: RetrySection::default(),
            leave_scope: LeaveScope::Keep,
            max_feed_page_mib: default_max_feed_page_mib(),
        }
    }
}

impl SyncSection {
    /// [`SyncSection::max_feed_page_mib`] in bytes.
    pub fn max_feed_page_bytes(&self) -> usize {
        usize::try_from(self.max_feed_page_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }
}

/// A page of 100 entries is some 100 KiB; 16 MiB leaves room for very large pages.
fn default_max_feed_page_mib() -> u64 {
    16
}

/// `[sync.pull]` / `[sync.push]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectionSection {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds between runs; 0 runs only when triggered (`sync-host sync-now`).
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Up to this many seconds of random delay added to each interval.
    #[serde(default = "default_jitter")]
    pub jitter_secs: u64,
    /// Pull only: follow the parent by long-poll for near-real-time sync.
    #[serde(default)]
    pub follow: bool,
    /// Longest pause after repeated failures, in seconds.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_secs: u64,
    /// This node's own catchment for the direction: scope keys (patterns with `*`) a
    /// resource must be placed under, by this node's `[classify]` rules, to be pulled or
    /// pushed; others are filtered and audited, never written. Works on any feed, tagged or
    /// not. Needs the embedded store.
    #[serde(default)]
    pub data_scope: Option<Vec<String>>,
}

impl Default for DirectionSection {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: default_interval(),
            jitter_secs: default_jitter(),
            follow: false,
            max_backoff_secs: default_max_backoff(),
            data_scope: None,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_interval() -> u64 {
    60
}
fn default_jitter() -> u64 {
    5
}
fn default_max_backoff() -> u64 {
    900
}

/// `[sync.retry]`: backoff of failed events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    #[serde(default = "default_retry_base")]
    pub base_secs: u64,
    #[serde(default = "default_retry_max")]
    pub max_delay_secs: u64,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

impl Default for RetrySection {
    fn default() -> Self {
        Self {
            base_secs: default_retry_base(),
            max_delay_secs: default_retry_max(),
            max_attempts: default_attempts(),
        }
    }
}

fn default_retry_base() -> u64 {
    30
}
fn default_retry_max() -> u64 {
    3600
}
fn default_attempts() -> u32 {
    10
}

/// `[[routes]]`: which resource client handles which resource types or categories.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Resource types or categories (`Patient`, `encounter`); `*` makes it the fallback.
    #[serde(rename = "match")]
    pub matches: Vec<String>,
    /// The resource-client plugin's name.
    pub client: String,
}

/// Which direction a filter applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterDirection {
    Pull,
    Push,
    Both,
}

/// `[[filters]]`: one event filter, in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// The event-filter plugin's name.
    pub plugin: String,
    pub direction: FilterDirection,
    /// The filter's own configuration, handed to it as JSON.
    #[serde(default)]
    pub config: Option<toml::Table>,
}

/// `[audit]`: how long audit records are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    #[serde(default = "default_retention_days")]
    pub retention_days: u64,
    #[serde(default = "default_max_records")]
    pub max_records: usize,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            retention_days: default_retention_days(),
            max_records: default_max_records(),
        }
    }
}

fn default_retention_days() -> u64 {
    365
}
fn default_max_records() -> usize {
    5_000_000
}

/// `[report]`: status reports that travel up the tree.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSection {
    /// Whether this node reports to its parent (after each sync run, and while idle every
    /// `interval_secs`).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Longest time between two reports while nothing runs.
    #[serde(default = "default_report_interval")]
    pub interval_secs: u64,
    /// A node whose latest report is older than this is shown as stale.
    #[serde(default = "default_stale_after")]
    pub stale_after_secs: u64,
}

impl Default for ReportSection {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: default_report_interval(),
            stale_after_secs: default_stale_after(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_report_interval() -> u64 {
    120
}
fn default_stale_after() -> u64 {
    900
}

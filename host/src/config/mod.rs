//! The node configuration: one TOML file, unknown keys rejected, loaded once and passed down.
//!
//! Every error names the file and, where TOML can tell, the key. Secrets never live in the
//! file itself: it names an environment variable or a file that holds them.

mod secret;
mod sync;
pub mod token;
mod validate;

pub use secret::{SecretError, SecretSource};
pub use sync::{
    AuditSection, ClientConfig, DirectionSection, FilterConfig, FilterDirection, LeaveScope,
    LocalSection, ParentSection, ReportSection, RetrySection, RouteConfig, ServerSection,
    SyncSection,
};

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (unknown key, wrong type, missing key).
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// The file parsed but a value is unusable.
    #[error("invalid config file {path}: `{key}` {problem}")]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
    },
}

/// A node's whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Who this node is and where it keeps its data.
    pub node: NodeSection,
    /// The node's own HTTP API. Absent for a node that only syncs into an external server.
    pub server: Option<ServerSection>,
    /// The node above this one; absent at the root of the tree.
    pub parent: Option<ParentSection>,
    /// An external server to sync instead of the embedded store.
    pub local: Option<LocalSection>,
    /// Schedules, conflict policies and retries.
    #[serde(default)]
    pub sync: SyncSection,
    /// Which resource client handles which resource types.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Event filters, applied in order.
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
    /// Audit retention.
    #[serde(default)]
    pub audit: AuditSection,
    /// The WebAssembly plugin runtime.
    #[serde(default)]
    pub plugins: PluginsSection,
    /// Status reports sent to the parent and kept from the children.
    #[serde(default)]
    pub report: ReportSection,
    /// Which fields place a resource in a data scope (the built-in classifier).
    #[serde(default)]
    pub classify: sync_host_store::scope::ClassifyConfig,
    /// A classifier plugin that places resources instead of the built-in paths.
    pub classifier: Option<ClassifierSection>,
    /// The file this configuration was read from, for errors found after loading (a weak
    /// token, say) that must name the file as well as the key.
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[classifier]`: the classifier plugin that places this node's resources in data scopes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierSection {
    /// The plugin's name (a built-in one such as `classifier-paths`, or one in the plugins
    /// directory).
    pub plugin: String,
    /// Its own configuration, handed to it as JSON.
    #[serde(default)]
    pub config: Option<toml::Table>,
}

impl NodeConfig {
    /// The built-in classifier of `[classify]`.
    pub fn path_rules(
        &self,
    ) -> Result<sync_host_store::scope::Classifier, sync_host_store::scope::PathError> {
        sync_host_store::scope::Classifier::new(&self.classify)
    }

    /// How this node's embedded store is set up: its id, history, and `classifier`, the
    /// rules that place what it writes (see `node::classifier`).
    pub fn store_config(
        &self,
        classifier: std::sync::Arc<dyn sync_host_store::scope::Classify>,
    ) -> sync_host_store::store::StoreConfig {
        sync_host_store::store::StoreConfig {
            node_id: self.node.id.clone(),
            history_retention: self
                .server
                .as_ref()
                .map_or(10, |server| server.history_retention),
            classifier,
        }
    }
}

/// `[node]`: identity and data directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// A stable, unique name for this node (`clinic-7`). It is recorded as the origin of
    /// every change made here, so it must not change once the node has synced.
    pub id: String,
    /// Where the store, the sync state and the audit log live.
    pub data_dir: PathBuf,
}

/// `[plugins]`: where plugins come from and the sandbox they run in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsSection {
    /// Directory scanned for extra `*.wasm` components. The default plugins are built in.
    pub dir: Option<PathBuf>,
    /// Directory for compiled plugin artifacts; defaults to `<data_dir>/plugin-cache`.
    pub cache_dir: Option<PathBuf>,
    /// Memory cap for each plugin instance, in MiB.
    #[serde(default = "default_memory_mib")]
    pub memory_limit_mib: u64,
    /// Deadline for each plugin call, in seconds.
    #[serde(default = "default_call_timeout_secs")]
    pub call_timeout_secs: u64,
    /// Timeout of each HTTP request a plugin makes, in seconds.
    #[serde(default = "default_http_timeout_secs")]
    pub http_timeout_secs: u64,
    /// Largest HTTP response a plugin may receive, in MiB.
    #[serde(default = "default_max_response_mib")]
    pub max_response_mib: u64,
    /// Extra hosts a named plugin may reach besides the node's own endpoints.
    #[serde(default)]
    pub grants: Vec<PluginGrant>,
}

/// `[[plugins.grants]]`: one extra base URL a plugin may reach.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginGrant {
    /// The plugin's name, as its `describe` reports it.
    pub plugin: String,
    /// The base URL it may reach (scheme, host, port and path prefix).
    pub base_url: String,
    /// Credentials the host adds to requests under this base URL.
    pub credentials: Option<CredentialsConfig>,
}

/// Outbound credentials, resolved by the host; plugins never see them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum CredentialsConfig {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Where the token comes from.
        token: SecretSource,
    },
    /// HTTP Basic, as an OpenMRS server expects.
    Basic {
        username: String,
        /// Where the password comes from.
        password: SecretSource,
    },
}

impl Default for PluginsSection {
    fn default() -> Self {
        Self {
            dir: None,
            cache_dir: None,
            memory_limit_mib: default_memory_mib(),
            call_timeout_secs: default_call_timeout_secs(),
            http_timeout_secs: default_http_timeout_secs(),
            max_response_mib: default_max_response_mib(),
            grants: Vec::new(),
        }
    }
}

fn default_memory_mib() -> u64 {
    64
}
fn default_call_timeout_secs() -> u64 {
    10
}
fn default_http_timeout_secs() -> u64 {
    30
}
fn default_max_response_mib() -> u64 {
    32
}

impl PluginsSection {
    /// The per-call deadline as a duration.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs(self.call_timeout_secs)
    }

    /// The per-request HTTP timeout as a duration.
    pub fn http_timeout(&self) -> Duration {
        Duration::from_secs(self.http_timeout_secs)
    }
}

impl NodeConfig {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates `text`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: NodeConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.path = path.to_path_buf();
        validate::validate(&config, path)?;
        Ok(config)
    }
}

/// Node ids travel in feeds and headers, so they stay within a safe alphabet.
pub fn is_valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests;

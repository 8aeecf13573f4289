//! The node's plugin registry: the built-in default plugins plus every component found in the
//! configured plugins directory, loaded once at start and looked up by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sync_host_runtime::{
    HttpLimits, LoadedPlugin, PluginError, PluginRuntime, RuntimeConfig, RuntimeError,
};

use crate::config::PluginsSection;
use crate::default_plugins::default_plugins;

/// Where a registered plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginOrigin {
    /// Compiled into the `sync-host` binary.
    BuiltIn,
    /// Loaded from a file in the plugins directory.
    File(PathBuf),
}

/// One plugin the node can use.
#[derive(Clone)]
pub struct RegisteredPlugin {
    /// The name the configuration uses: `fhir`, `rest`, ... for built-in plugins, the name
    /// the component reports for plugin files.
    pub name: String,
    pub plugin: LoadedPlugin,
    pub origin: PluginOrigin,
}

/// Why the registry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot start the plugin runtime")]
    Runtime(#[from] RuntimeError),
    #[error("built-in plugin {name} failed to load")]
    BuiltIn { name: String, source: PluginError },
    #[error("plugin file {path} failed to load")]
    File { path: PathBuf, source: PluginError },
    #[error("plugins directory {0} does not exist")]
    MissingDir(PathBuf),
    #[error(
        "plugin files {} and {} both call themselves `{name}`; remove or rename one",
        first.display(),
        second.display()
    )]
    DuplicateName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
}

/// Plugins by the name they report in `describe`.
#[derive(Clone)]
pub struct PluginRegistry {
    runtime: PluginRuntime,
    plugins: BTreeMap<String, RegisteredPlugin>,
}

/// The runtime settings a node's `[plugins]` section asks for.
pub fn runtime_config(section: &PluginsSection, data_dir: Option<&Path>) -> RuntimeConfig {
    let cache_dir = section
        .cache_dir
        .clone()
        .or_else(|| data_dir.map(|d| d.join("plugin-cache")));
    RuntimeConfig {
        memory_limit_bytes: usize::try_from(section.memory_limit_mib * 1024 * 1024)
            .unwrap_or(usize::MAX),
        call_timeout: section.call_timeout(),
        cache_dir,
        http: HttpLimits {
            request_timeout: section.http_timeout(),
            max_response_bytes: usize::try_from(section.max_response_mib * 1024 * 1024)
                .unwrap_or(usize::MAX),
        },
    }
}

impl PluginRegistry {
    /// Loads the built-in plugins, then every component in `dir` (a file plugin with the name
    /// of a built-in one replaces it, so an implementation can ship its own `fhir`).
    pub async fn load(runtime: PluginRuntime, dir: Option<&Path>) -> Result<Self, RegistryError> {
        let mut plugins = BTreeMap::new();
        for (name, bytes) in default_plugins() {
            let plugin =
                runtime
                    .load_bytes(name, bytes)
                    .await
                    .map_err(|source| RegistryError::BuiltIn {
                        name: (*name).to_string(),
                        source,
                    })?;
            let entry = RegisteredPlugin {
                name: (*name).to_string(),
                plugin,
                origin: PluginOrigin::BuiltIn,
            };
            plugins.insert(entry.name.clone(), entry);
        }
        if let Some(dir) = dir {
            Self::load_dir(&runtime, dir, &mut plugins).await?;
        }
        Ok(Self { runtime, plugins })
    }

    async fn load_dir(
        runtime: &PluginRuntime,
        dir: &Path,
        plugins: &mut BTreeMap<String, RegisteredPlugin>,
    ) -> Result<(), RegistryError> {
        if !dir.is_dir() {
            return Err(RegistryError::MissingDir(dir.to_path_buf()));
        }
        for (path, loaded) in runtime.discover(dir).await {
            let plugin = loaded.map_err(|source| RegistryError::File {
                path: path.clone(),
                source,
            })?;
            let name = plugin.info().name.clone();
            match plugins.get(&name).map(|p| &p.origin) {
                // Which of two files would win depends on directory order: refuse both.
                Some(PluginOrigin::File(first)) => {
                    return Err(RegistryError::DuplicateName {
                        name,
                        first: first.clone(),
                        second: path,
                    });
                }
                Some(PluginOrigin::BuiltIn) => {
                    tracing::warn!(plugin = %name, path = %path.display(), "plugin file replaces the built-in plugin of the same name");
                }
                None => {}
            }
            let entry = RegisteredPlugin {
                name: name.clone(),
                plugin,
                origin: PluginOrigin::File(path),
            };
            plugins.insert(name, entry);
        }
        Ok(())
    }

    /// The plugin called `name`, if loaded.
    pub fn get(&self, name: &str) -> Option<&RegisteredPlugin> {
        self.plugins.get(name)
    }

    /// Every plugin, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = &RegisteredPlugin> {
        self.plugins.values()
    }

    /// The runtime the plugins were loaded into.
    pub fn runtime(&self) -> &PluginRuntime {
        &self.runtime
    }
}

//! Loading plugins: compile (or take from the cache), inspect, pre-instantiate,
//! and ask the plugin to describe itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::PluginRuntime;
use crate::access::HttpAccess;
use crate::bindings::{ClassifierPre, ClientPre, FilterPre};
use crate::cache::{Compiled, load_or_compile};
use crate::classifier::WasmClassifier;
use crate::client::WasmResourceClient;
use crate::error::PluginError;
use crate::filter::WasmEventFilter;
use crate::inspect::{ComponentInfo, World, check_header, inspect_component};
use crate::instance::{ClassifierWorld, ClientWorld, FilterWorld, HostState};
use crate::sandbox::Sandbox;
use crate::types::PluginInfo;

/// A compiled, checked plugin, ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct LoadedPlugin {
    inner: Arc<LoadedInner>,
}

struct LoadedInner {
    runtime: PluginRuntime,
    info: PluginInfo,
    component: ComponentInfo,
    pre: WorldPre,
    from_cache: bool,
    load_time: Duration,
    /// The sha256 of the component's bytes, hex.
    digest: String,
}

/// The world-specific pre-instantiated component.
#[derive(Clone)]
enum WorldPre {
    Client(ClientPre<HostState>),
    Filter(FilterPre<HostState>),
    Classifier(ClassifierPre<HostState>),
}

impl PluginRuntime {
    /// Compiles (or loads from the disk cache) and checks a component; calls
    /// `describe` once. `source_name` names the plugin in errors until it has
    /// described itself.
    pub async fn load_bytes(
        &self,
        source_name: &str,
        bytes: &[u8],
    ) -> Result<LoadedPlugin, PluginError> {
        let started = Instant::now();
        let inspect_error = |error| PluginError::Inspect {
            source_name: source_name.to_owned(),
            error,
        };
        check_header(bytes).map_err(inspect_error)?;
        let compiled = self.compile(source_name, bytes).await?;
        let component =
            inspect_component(self.engine(), &compiled.component).map_err(inspect_error)?;
        let load_error = |error: wasmtime::Error| PluginError::Load {
            plugin: source_name.to_owned(),
            message: format!("{error:#}"),
        };
        let instance_pre = self
            .inner
            .linker
            .instantiate_pre(&compiled.component)
            .map_err(load_error)?;
        let pre = match component.world {
            World::ResourceClient => {
                WorldPre::Client(ClientPre::new(instance_pre).map_err(load_error)?)
            }
            World::EventFilter => {
                WorldPre::Filter(FilterPre::new(instance_pre).map_err(load_error)?)
            }
            World::Classifier => {
                WorldPre::Classifier(ClassifierPre::new(instance_pre).map_err(load_error)?)
            }
        };
        let info = self.describe(source_name, &pre).await?;
        let load_time = started.elapsed();
        tracing::info!(
            plugin = %info.label(), world = %component.world, from_cache = compiled.from_cache,
            load_ms = load_time.as_millis() as u64, "plugin loaded"
        );
        Ok(LoadedPlugin {
            inner: Arc::new(LoadedInner {
                runtime: self.clone(),
                info,
                component,
                pre,
                from_cache: compiled.from_cache,
                load_time,
                digest: crate::cache::digest(bytes),
            }),
        })
    }

    /// Reads and loads one `.wasm` file; errors name the file.
    pub async fn load_file(&self, path: &Path) -> Result<LoadedPlugin, PluginError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| PluginError::Read {
                path: path.to_owned(),
                source,
            })?;
        self.load_bytes(&path.display().to_string(), &bytes).await
    }

    /// Every `*.wasm` in `dir` (sorted by name), each loaded or with its error.
    pub async fn discover(&self, dir: &Path) -> Vec<(PathBuf, Result<LoadedPlugin, PluginError>)> {
        let mut paths = match wasm_files(dir) {
            Ok(paths) => paths,
            Err(source) => {
                return vec![(
                    dir.to_owned(),
                    Err(PluginError::Read {
                        path: dir.to_owned(),
                        source,
                    }),
                )];
            }
        };
        paths.sort();
        let mut loaded = Vec::with_capacity(paths.len());
        for path in paths {
            let result = self.load_file(&path).await;
            loaded.push((path, result));
        }
        loaded
    }

    /// Compilation is CPU-bound: it runs on the blocking pool.
    async fn compile(&self, source_name: &str, bytes: &[u8]) -> Result<Compiled, PluginError> {
        let engine = self.engine().clone();
        let cache_dir = self.config().cache_dir.clone();
        let wasm = bytes.to_vec();
        let joined = tokio::task::spawn_blocking(move || {
            load_or_compile(&engine, cache_dir.as_deref(), &wasm)
        })
        .await;
        let compiled = joined.map_err(|error| PluginError::Load {
            plugin: source_name.to_owned(),
            message: format!("compilation did not finish: {error}"),
        })?;
        compiled.map_err(|error| PluginError::Inspect {
            source_name: source_name.to_owned(),
            error: crate::error::InspectError::Invalid(format!("{error:#}")),
        })
    }

    async fn describe(&self, source_name: &str, pre: &WorldPre) -> Result<PluginInfo, PluginError> {
        let access = HttpAccess::default();
        match pre {
            WorldPre::Client(pre) => {
                let world = ClientWorld(pre.clone());
                Sandbox::new(self.clone(), world, source_name, access)
                    .describe()
                    .await
            }
            WorldPre::Filter(pre) => {
                let world = FilterWorld {
                    pre: pre.clone(),
                    config_json: None,
                };
                Sandbox::new(self.clone(), world, source_name, access)
                    .describe()
                    .await
            }
            WorldPre::Classifier(pre) => {
                let world = ClassifierWorld {
                    pre: pre.clone(),
                    config_json: None,
                };
                Sandbox::new(self.clone(), world, source_name, access)
                    .describe()
                    .await
            }
        }
    }
}

fn wasm_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "wasm") && path.is_file() {
            paths.push(path);
        }
    }
    Ok(paths)
}

impl LoadedPlugin {
    /// Name and version from the component's `describe`.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// The world the plugin implements.
    pub fn world(&self) -> World {
        self.inner.component.world
    }

    /// The `sync:plugin` version the plugin was built for.
    pub fn wit_version(&self) -> &str {
        &self.inner.component.wit_version
    }

    /// Everything inspection found (imports and exports included).
    pub fn component_info(&self) -> &ComponentInfo {
        &self.inner.component
    }

    /// The sha256 of the component's bytes, hex: which build of the plugin this is.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// Whether the compiled code came from the disk cache.
    pub fn from_cache(&self) -> bool {
        self.inner.from_cache
    }

    /// How long loading took, compilation (or cache read) and `describe` included.
    pub fn load_time(&self) -> Duration {
        self.inner.load_time
    }

    /// A resource client that may reach only `access`.
    pub fn resource_client(&self, access: HttpAccess) -> Result<WasmResourceClient, PluginError> {
        let WorldPre::Client(pre) = &self.inner.pre else {
            return Err(self.wrong_world(World::ResourceClient));
        };
        let sandbox = self.sandbox(ClientWorld(pre.clone()), access);
        Ok(WasmResourceClient::new(self.inner.info.clone(), sandbox))
    }

    /// An event filter, configured once with `config_json` (`"{}"` when none).
    /// Fails with [`PluginError::Configure`] when the filter refuses it.
    pub async fn event_filter(&self, config_json: &str) -> Result<WasmEventFilter, PluginError> {
        let WorldPre::Filter(pre) = &self.inner.pre else {
            return Err(self.wrong_world(World::EventFilter));
        };
        let world = FilterWorld {
            pre: pre.clone(),
            config_json: Some(config_json.into()),
        };
        let sandbox = self.sandbox(world, HttpAccess::default());
        WasmEventFilter::start(self.inner.info.clone(), sandbox).await
    }

    /// A classifier, configured once with `config_json` (`"{}"` when none). Fails with
    /// [`PluginError::Configure`] when the classifier refuses it.
    pub async fn classifier(&self, config_json: &str) -> Result<WasmClassifier, PluginError> {
        let WorldPre::Classifier(pre) = &self.inner.pre else {
            return Err(self.wrong_world(World::Classifier));
        };
        let world = ClassifierWorld {
            pre: pre.clone(),
            config_json: Some(config_json.into()),
        };
        let sandbox = self.sandbox(world, HttpAccess::default());
        WasmClassifier::start(self.inner.info.clone(), sandbox).await
    }

    /// The instances of this plugin in `world`, reaching only `access`.
    fn sandbox<W: crate::instance::WorldPre>(&self, world: W, access: HttpAccess) -> Sandbox<W> {
        Sandbox::new(
            self.inner.runtime.clone(),
            world,
            &self.inner.info.label(),
            access,
        )
    }

    fn wrong_world(&self, expected: World) -> PluginError {
        PluginError::WrongWorld {
            plugin: self.inner.info.label(),
            expected,
            found: self.world(),
        }
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("info", &self.inner.info)
            .field("world", &self.inner.component.world)
            .field("wit_version", &self.inner.component.wit_version)
            .field("from_cache", &self.inner.from_cache)
            .finish()
    }
}

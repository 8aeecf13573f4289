//! The shared wasmtime engine, its configuration, the linker every plugin is
//! instantiated against, and the background epoch ticker that enforces deadlines.

use std::path::PathBuf;
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use sync_host_types::durations::{DurationSnapshot, Durations};

use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use crate::error::RuntimeError;
use crate::instance::HostState;

/// How often the epoch advances; deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits on what a plugin's HTTP requests may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Whole-request timeout, connect to last body byte. Default 30 s.
    pub request_timeout: Duration,
    /// Largest response body handed to a plugin. Default 32 MiB.
    pub max_response_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Limits and storage of the plugin runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Linear memory cap per plugin instance. Default 64 MiB.
    pub memory_limit_bytes: usize,
    /// Deadline of one plugin call (plugin CPU time). Default 10 s.
    pub call_timeout: Duration,
    /// Where compiled plugins are cached; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Limits on the plugins' HTTP.
    pub http: HttpLimits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            memory_limit_bytes: 64 * 1024 * 1024,
            call_timeout: Duration::from_secs(10),
            cache_dir: None,
            http: HttpLimits::default(),
        }
    }
}

impl RuntimeConfig {
    /// Wall-clock bound of a whole call. The guest is not charged for time in
    /// host calls (see `clock.rs`), so a plugin waiting on HTTP is bounded by this.
    pub(crate) fn wall_clock_limit(&self) -> Duration {
        self.call_timeout + self.http.request_timeout
    }
}

/// The plugin runtime: one wasmtime engine, one linker, one HTTP client and the
/// epoch ticker. Cheap to clone; the ticker stops when the last clone is dropped.
#[derive(Clone)]
pub struct PluginRuntime {
    pub(crate) inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) config: RuntimeConfig,
    pub(crate) linker: Linker<HostState>,
    pub(crate) http_client: reqwest::Client,
    /// How long calls took, by plugin name.
    call_times: std::sync::Mutex<std::collections::BTreeMap<String, Arc<Durations>>>,
    _ticker: EpochTicker,
}

impl PluginRuntime {
    /// Creates the engine, links the host interfaces and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        if config.memory_limit_bytes == 0 || config.call_timeout.is_zero() {
            return Err(RuntimeError::Config(
                "memory_limit_bytes and call_timeout must be greater than zero".into(),
            ));
        }
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir).map_err(|source| RuntimeError::CacheDir {
                path: dir.clone(),
                source,
            })?;
        }
        let engine = new_engine()?;
        let linker = new_linker(&engine)?;
        let http_client = new_http_client(&config)?;
        let ticker = EpochTicker::start(engine.clone())?;
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                config,
                linker,
                http_client,
                call_times: Default::default(),
                _ticker: ticker,
            }),
        })
    }

    /// The runtime's configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Where the calls of the plugin labelled `plugin` (`"<name> <version>"`) are timed; one
    /// histogram per plugin name, so a new version continues its predecessor's series.
    pub(crate) fn call_times_of(&self, plugin: &str) -> Arc<Durations> {
        let name = plugin.split(' ').next().unwrap_or(plugin);
        let mut times = self
            .inner
            .call_times
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Arc::clone(times.entry(name.to_string()).or_default())
    }

    /// How long each plugin's calls took so far, by plugin name.
    pub fn call_durations(&self) -> Vec<(String, DurationSnapshot)> {
        let times = self
            .inner
            .call_times
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        times
            .iter()
            .map(|(name, durations)| (name.clone(), durations.snapshot()))
            .collect()
    }
}

fn new_engine() -> Result<Engine, RuntimeError> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    Engine::new(&config).map_err(|error| RuntimeError::Engine(format!("{error:#}")))
}

/// WASI with no ambient authority (see `instance.rs` for the empty context)
/// plus the `sync:plugin` imports.
fn new_linker(engine: &Engine) -> Result<Linker<HostState>, RuntimeError> {
    let mut linker = Linker::new(engine);
    let link_error = |error: wasmtime::Error| RuntimeError::Engine(format!("{error:#}"));
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link_error)?;
    crate::bindings::add_plugin_imports(&mut linker).map_err(link_error)?;
    Ok(linker)
}

fn new_http_client(config: &RuntimeConfig) -> Result<reqwest::Client, RuntimeError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.http.request_timeout)
        // Plugins reach only allow-listed endpoints directly; an ambient proxy
        // from the environment would silently reroute (and see) that traffic.
        .no_proxy()
        .build()
        .map_err(|error| RuntimeError::HttpClient(error.to_string()))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a plain thread, so it
/// works whether or not a tokio runtime is running. Stopped on drop.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Result<Self, RuntimeError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sync-plugin-epoch".into())
            .spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|error| RuntimeError::Engine(format!("cannot start epoch ticker: {error}")))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The thread wakes within one tick; a panic there is not ours to re-raise.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_bound_covers_guest_and_http_time() {
        let config = RuntimeConfig {
            call_timeout: Duration::from_secs(2),
            http: HttpLimits {
                request_timeout: Duration::from_secs(3),
                ..HttpLimits::default()
            },
            ..RuntimeConfig::default()
        };
        assert_eq!(config.wall_clock_limit(), Duration::from_secs(5));
    }

    #[test]
    fn zero_limits_are_refused() {
        let config = RuntimeConfig {
            memory_limit_bytes: 0,
            ..RuntimeConfig::default()
        };
        assert!(matches!(
            PluginRuntime::new(config),
            Err(RuntimeError::Config(_))
        ));
    }

    #[test]
    fn dropping_the_last_clone_releases_the_runtime_and_its_ticker() {
        let runtime = PluginRuntime::new(RuntimeConfig::default()).unwrap();
        let weak = Arc::downgrade(&runtime.inner);
        drop(runtime);
        assert!(weak.upgrade().is_none());
    }
}

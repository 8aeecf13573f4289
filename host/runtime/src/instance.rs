//! Per-instance store state (empty WASI, memory cap, HTTP access), the `log`
//! import, and the shape of each world's pre-instantiated components.

use std::sync::Arc;

use futures::future::BoxFuture;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::PluginRuntime;
use crate::access::HttpAccess;
use crate::bindings::{
    ClassifierBindings, ClassifierPre, ClientBindings, ClientPre, FilterBindings, FilterPre, log,
    wit,
};
use crate::clock::{CallClock, SLICE_TICKS};
use crate::http_import::HttpContext;
use crate::stderr::StderrTail;

/// How much of a plugin's stderr is kept to explain a trap (panic messages).
const STDERR_CAPACITY: usize = 4 * 1024;

/// Caps linear memory growth and remembers whether the cap was hit, so that a
/// trap caused by a failed allocation can be reported as out-of-memory.
pub(crate) struct MemoryCap {
    limit: usize,
    pub(crate) hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Table elements are pointer-sized; bound them by the same budget.
        Ok(desired.saturating_mul(size_of::<usize>()) <= self.limit)
    }
}

/// The data of one plugin instance's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryCap,
    pub(crate) http: HttpContext,
    pub(crate) plugin: Arc<str>,
    pub(crate) clock: CallClock,
    stderr: StderrTail,
}

impl HostState {
    /// A store with no ambient authority: no preopens, no environment, no
    /// arguments, no network, stdin closed, stdout discarded, stderr captured.
    pub(crate) fn new_store(
        runtime: &PluginRuntime,
        plugin: Arc<str>,
        access: Arc<HttpAccess>,
    ) -> Store<HostState> {
        let stderr = StderrTail::new(STDERR_CAPACITY);
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let config = runtime.config();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap {
                limit: config.memory_limit_bytes,
                hit: false,
            },
            http: HttpContext::new(
                runtime.inner.http_client.clone(),
                config.http.clone(),
                access,
            ),
            plugin,
            clock: CallClock::new(config.call_timeout),
            stderr,
        };
        let mut store = Store::new(runtime.engine(), state);
        store.limiter(|state| &mut state.memory);
        store.epoch_deadline_callback(|store| {
            Ok(if store.data().clock.exhausted() {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(SLICE_TICKS)
            })
        });
        store
    }

    /// What the plugin last wrote to stderr (a panic message, typically), on
    /// one line and at most about 1000 characters.
    pub(crate) fn stderr_tail(&self) -> String {
        let text = self.stderr.text();
        let joined = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("note: run with `RUST_BACKTRACE"))
            .collect::<Vec<_>>()
            .join(" ");
        let start = joined
            .char_indices()
            .rev()
            .nth(1000)
            .map_or(0, |(index, _)| index);
        joined[start..].to_owned()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::Host for HostState {}

impl log::Host for HostState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let plugin = &*self.plugin;
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

/// A pre-instantiated component of one world: how to instantiate it, prepare a
/// fresh instance for use, and ask it to describe itself.
pub(crate) trait WorldPre: Send + Sync + 'static {
    /// The generated bindings of an instance.
    type Bindings: Send + Sync + 'static;

    /// Instantiates the component in `store`.
    fn instantiate<'a>(
        &'a self,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<Self::Bindings>>;

    /// Prepares a fresh instance; `Ok(Err(reason))` when the plugin refuses.
    fn initialise<'a>(
        &'a self,
        bindings: &'a Self::Bindings,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<Result<(), String>>>;

    /// Calls the `describe` export.
    fn describe<'a>(
        &'a self,
        bindings: &'a Self::Bindings,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<wit::PluginInfo>>;
}

/// A resource client's component, ready to instantiate.
pub(crate) struct ClientWorld(pub(crate) ClientPre<HostState>);

impl WorldPre for ClientWorld {
    type Bindings = ClientBindings;

    fn instantiate<'a>(
        &'a self,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<ClientBindings>> {
        Box::pin(self.0.instantiate_async(store))
    }

    fn initialise<'a>(
        &'a self,
        _bindings: &'a ClientBindings,
        _store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<Result<(), String>>> {
        Box::pin(async { Ok(Ok(())) })
    }

    fn describe<'a>(
        &'a self,
        bindings: &'a ClientBindings,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<wit::PluginInfo>> {
        Box::pin(bindings.call_describe(store))
    }
}

/// An event filter's component and the configuration every fresh instance gets
/// (`None` only while loading, when just `describe` is called).
pub(crate) struct FilterWorld {
    pub(crate) pre: FilterPre<HostState>,
    pub(crate) config_json: Option<Arc<str>>,
}

impl WorldPre for FilterWorld {
    type Bindings = FilterBindings;

    fn instantiate<'a>(
        &'a self,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<FilterBindings>> {
        Box::pin(self.pre.instantiate_async(store))
    }

    fn initialise<'a>(
        &'a self,
        bindings: &'a FilterBindings,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<Result<(), String>>> {
        Box::pin(async move {
            match &self.config_json {
                Some(config) => {
                    bindings
                        .sync_plugin_filter()
                        .call_configure(store, config)
                        .await
                }
                None => Ok(Ok(())),
            }
        })
    }

    fn describe<'a>(
        &'a self,
        bindings: &'a FilterBindings,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<wit::PluginInfo>> {
        Box::pin(bindings.call_describe(store))
    }
}

/// A classifier's component and the configuration every fresh instance gets (`None` only
/// while loading, when just `describe` is called).
pub(crate) struct ClassifierWorld {
    pub(crate) pre: ClassifierPre<HostState>,
    pub(crate) config_json: Option<Arc<str>>,
}

impl WorldPre for ClassifierWorld {
    type Bindings = ClassifierBindings;

    fn instantiate<'a>(
        &'a self,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<ClassifierBindings>> {
        Box::pin(self.pre.instantiate_async(store))
    }

    fn initialise<'a>(
        &'a self,
        bindings: &'a ClassifierBindings,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<Result<(), String>>> {
        Box::pin(async move {
            match &self.config_json {
                Some(config) => {
                    bindings
                        .sync_plugin_classifier()
                        .call_configure(store, config)
                        .await
                }
                None => Ok(Ok(())),
            }
        })
    }

    fn describe<'a>(
        &'a self,
        bindings: &'a ClassifierBindings,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<wit::PluginInfo>> {
        Box::pin(bindings.call_describe(store))
    }
}

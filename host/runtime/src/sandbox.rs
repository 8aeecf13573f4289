//! Runs plugin calls under their limits: a small pool of idle instances, a fresh
//! epoch deadline and memory flag per call, a wall-clock bound around the whole
//! call, and a broken instance thrown away after any failure.

use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use wasmtime::{Store, Trap};

use crate::PluginRuntime;
use crate::access::HttpAccess;
use crate::clock::SLICE_TICKS;
use crate::error::PluginError;
use crate::instance::{HostState, WorldPre};

/// Idle instances kept per client or filter; more concurrent calls instantiate
/// extra ones, which are dropped afterwards.
const MAX_IDLE_INSTANCES: usize = 4;

/// One live plugin instance.
pub(crate) struct Instance<B> {
    pub(crate) store: Store<HostState>,
    pub(crate) bindings: B,
}

/// The instances of one plugin with one set of HTTP access rights.
pub(crate) struct Sandbox<W: WorldPre> {
    runtime: PluginRuntime,
    world: Arc<W>,
    plugin: Arc<str>,
    access: Arc<HttpAccess>,
    idle: Mutex<Vec<Instance<W::Bindings>>>,
    call_times: Arc<sync_host_types::durations::Durations>,
}

impl<W: WorldPre> Sandbox<W> {
    pub(crate) fn new(runtime: PluginRuntime, world: W, plugin: &str, access: HttpAccess) -> Self {
        Self {
            call_times: runtime.call_times_of(plugin),
            runtime,
            world: Arc::new(world),
            plugin: plugin.into(),
            access: Arc::new(access),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The plugin's label, `"<name> <version>"`.
    pub(crate) fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Creates and initialises one instance now and keeps it idle, so that a
    /// configuration the plugin refuses is reported at once.
    pub(crate) async fn warm_up(&self) -> Result<(), PluginError> {
        let instance = self.fresh().await?;
        self.put_back(instance);
        Ok(())
    }

    /// Calls the plugin's `describe` export.
    pub(crate) async fn describe(&self) -> Result<crate::types::PluginInfo, PluginError> {
        let world = self.world.clone();
        let info = self
            .call("describe", move |instance| {
                Box::pin(async move {
                    world
                        .describe(&instance.bindings, &mut instance.store)
                        .await
                })
            })
            .await?;
        Ok(info.into())
    }

    /// Runs `call` on an idle or fresh instance under the deadline and memory cap.
    /// Any failure discards the instance; success returns it to the pool.
    pub(crate) async fn call<R>(
        &self,
        function: &'static str,
        call: impl for<'a> FnOnce(&'a mut Instance<W::Bindings>) -> BoxFuture<'a, wasmtime::Result<R>>,
    ) -> Result<R, PluginError> {
        let mut instance = match self.take_idle() {
            Some(instance) => instance,
            None => self.fresh().await?,
        };
        self.arm(&mut instance.store);
        let limit = self.runtime.config().wall_clock_limit();
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(limit, call(&mut instance)).await;
        self.call_times.record(started.elapsed());
        tracing::debug!(
            plugin = %self.plugin, function, ok = matches!(outcome, Ok(Ok(_))),
            elapsed_us = started.elapsed().as_micros() as u64, "plugin call finished"
        );
        match outcome {
            Err(_elapsed) => Err(self.wall_clock_exceeded(function)),
            Ok(Err(error)) => Err(self.failure(function, instance.store.data(), error)),
            Ok(Ok(value)) => {
                self.put_back(instance);
                Ok(value)
            }
        }
    }

    /// Instantiates and initialises a new instance, itself under the limits
    /// because start functions and `configure` run plugin code.
    async fn fresh(&self) -> Result<Instance<W::Bindings>, PluginError> {
        let mut store =
            HostState::new_store(&self.runtime, self.plugin.clone(), self.access.clone());
        self.arm(&mut store);
        let limit = self.runtime.config().wall_clock_limit();
        let world = self.world.clone();
        let setup = async {
            let bindings = world.instantiate(&mut store).await.map_err(|error| {
                match self.failure("instantiate", store.data(), error) {
                    PluginError::Trap { message, .. } => PluginError::Instantiate {
                        plugin: self.plugin.to_string(),
                        message,
                    },
                    other => other,
                }
            })?;
            match world.initialise(&bindings, &mut store).await {
                Ok(Ok(())) => Ok(bindings),
                Ok(Err(reason)) => Err(PluginError::Configure {
                    plugin: self.plugin.to_string(),
                    reason,
                }),
                Err(error) => Err(self.failure("configure", store.data(), error)),
            }
        };
        match tokio::time::timeout(limit, setup).await {
            Err(_elapsed) => Err(self.wall_clock_exceeded("instantiate")),
            Ok(Err(error)) => Err(error),
            Ok(Ok(bindings)) => Ok(Instance { store, bindings }),
        }
    }

    /// A fresh time budget and a cleared out-of-memory flag for the next call.
    fn arm(&self, store: &mut Store<HostState>) {
        store.set_epoch_deadline(SLICE_TICKS);
        let state = store.data_mut();
        state.clock.restart();
        state.memory.hit = false;
    }

    fn deadline(&self, function: &'static str) -> PluginError {
        PluginError::DeadlineExceeded {
            plugin: self.plugin.to_string(),
            function,
            after: self.runtime.config().call_timeout,
        }
    }

    /// The whole call, HTTP waits included, outlasted `call_timeout + request_timeout`.
    fn wall_clock_exceeded(&self, function: &'static str) -> PluginError {
        PluginError::DeadlineExceeded {
            plugin: self.plugin.to_string(),
            function,
            after: self.runtime.config().wall_clock_limit(),
        }
    }

    /// Names what went wrong: the epoch deadline, the memory cap, or a trap.
    fn failure(
        &self,
        function: &'static str,
        state: &HostState,
        error: wasmtime::Error,
    ) -> PluginError {
        if is_trap(&error, Trap::Interrupt) {
            return self.deadline(function);
        }
        if state.memory.hit {
            return PluginError::OutOfMemory {
                plugin: self.plugin.to_string(),
                function,
                limit: self.runtime.config().memory_limit_bytes,
            };
        }
        let mut message = error.root_cause().to_string();
        let stderr = state.stderr_tail();
        if !stderr.is_empty() {
            message.push_str("; the plugin wrote: ");
            message.push_str(&stderr);
        }
        tracing::warn!(plugin = %self.plugin, function, error = %format!("{error:#}"), "plugin call failed");
        PluginError::Trap {
            plugin: self.plugin.to_string(),
            function,
            message,
        }
    }

    fn take_idle(&self) -> Option<Instance<W::Bindings>> {
        self.lock_idle().pop()
    }

    fn put_back(&self, instance: Instance<W::Bindings>) {
        let mut idle = self.lock_idle();
        if idle.len() < MAX_IDLE_INSTANCES {
            idle.push(instance);
        }
    }

    fn lock_idle(&self) -> MutexGuard<'_, Vec<Instance<W::Bindings>>> {
        // The pool holds no invariant a panicking holder could break: at worst
        // an instance is missing, and a fresh one is made.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn is_trap(error: &wasmtime::Error, wanted: Trap) -> bool {
    error.downcast_ref::<Trap>() == Some(&wanted)
        || error
            .chain()
            .any(|cause| cause.downcast_ref::<Trap>() == Some(&wanted))
}

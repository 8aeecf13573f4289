//! The host-side `EventFilter` trait and its WebAssembly implementation.

use std::sync::Arc;

use crate::bindings::wit;
use crate::client::check_count;
use crate::error::PluginError;
use crate::instance::FilterWorld;
use crate::sandbox::Sandbox;
use crate::types::{Direction, Event, PluginInfo, Resource, Verdict};

/// Decides which events and resources are synced. Implemented by
/// [`WasmEventFilter`], and by native fakes in tests.
#[async_trait::async_trait]
pub trait EventFilter: Send + Sync {
    /// The plugin's self-description.
    fn info(&self) -> &PluginInfo;

    /// One verdict per event, before anything is fetched.
    async fn accept(
        &self,
        direction: Direction,
        events: &[Event],
    ) -> Result<Vec<Verdict>, PluginError>;

    /// One verdict per resource, after fetching and before storing.
    async fn check(
        &self,
        direction: Direction,
        resources: &[Resource],
    ) -> Result<Vec<Verdict>, PluginError>;
}

/// An event filter plugin with its configuration. Every instance, including
/// one that replaces a broken instance, is configured with the same JSON.
#[derive(Clone)]
pub struct WasmEventFilter {
    info: Arc<PluginInfo>,
    sandbox: Arc<Sandbox<FilterWorld>>,
}

impl WasmEventFilter {
    /// Configures a first instance now so that a refused configuration fails here.
    pub(crate) async fn start(
        info: PluginInfo,
        sandbox: Sandbox<FilterWorld>,
    ) -> Result<Self, PluginError> {
        sandbox.warm_up().await?;
        Ok(Self {
            info: Arc::new(info),
            sandbox: Arc::new(sandbox),
        })
    }
}

impl std::fmt::Debug for WasmEventFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmEventFilter")
            .field("plugin", &self.sandbox.plugin())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl EventFilter for WasmEventFilter {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    async fn accept(
        &self,
        direction: Direction,
        events: &[Event],
    ) -> Result<Vec<Verdict>, PluginError> {
        let wit_events: Vec<wit::Event> = events.iter().map(Into::into).collect();
        let verdicts = self
            .sandbox
            .call("accept", move |instance| {
                Box::pin(async move {
                    instance
                        .bindings
                        .sync_plugin_filter()
                        .call_accept(&mut instance.store, direction.into(), &wit_events)
                        .await
                })
            })
            .await?;
        check_count(
            self.sandbox.plugin(),
            "accept",
            verdicts.len(),
            events.len(),
        )?;
        Ok(verdicts.into_iter().map(Into::into).collect())
    }

    async fn check(
        &self,
        direction: Direction,
        resources: &[Resource],
    ) -> Result<Vec<Verdict>, PluginError> {
        let wit_resources: Vec<wit::Resource> = resources.iter().map(Into::into).collect();
        let verdicts = self
            .sandbox
            .call("check", move |instance| {
                Box::pin(async move {
                    instance
                        .bindings
                        .sync_plugin_filter()
                        .call_check(&mut instance.store, direction.into(), &wit_resources)
                        .await
                })
            })
            .await?;
        check_count(
            self.sandbox.plugin(),
            "check",
            verdicts.len(),
            resources.len(),
        )?;
        Ok(verdicts.into_iter().map(Into::into).collect())
    }
}

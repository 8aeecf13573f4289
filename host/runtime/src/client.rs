//! The host-side `ResourceClient` trait and its WebAssembly implementation.

use std::sync::Arc;

use crate::bindings::wit;
use crate::error::PluginError;
use crate::instance::ClientWorld;
use crate::sandbox::Sandbox;
use crate::types::{Endpoint, Event, Failure, PluginInfo, Resource, Stored, Write};

/// Fetches and stores resources. Implemented by [`WasmResourceClient`], and by
/// native fakes in tests.
#[async_trait::async_trait]
pub trait ResourceClient: Send + Sync {
    /// The plugin's self-description.
    fn info(&self) -> &PluginInfo;

    /// The current state of the resources `events` point to, one result per event.
    async fn fetch(
        &self,
        source: &Endpoint,
        events: &[Event],
    ) -> Result<Vec<Result<Resource, Failure>>, PluginError>;

    /// Writes resources to `target`, one result per write.
    async fn store(
        &self,
        target: &Endpoint,
        writes: &[Write],
    ) -> Result<Vec<Result<Stored, Failure>>, PluginError>;
}

/// A resource client plugin with its HTTP access rights. Cheap to clone; calls
/// may run concurrently, each on its own instance.
#[derive(Clone)]
pub struct WasmResourceClient {
    info: Arc<PluginInfo>,
    sandbox: Arc<Sandbox<ClientWorld>>,
}

impl WasmResourceClient {
    pub(crate) fn new(info: PluginInfo, sandbox: Sandbox<ClientWorld>) -> Self {
        Self {
            info: Arc::new(info),
            sandbox: Arc::new(sandbox),
        }
    }
}

impl std::fmt::Debug for WasmResourceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmResourceClient")
            .field("plugin", &self.sandbox.plugin())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl ResourceClient for WasmResourceClient {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    async fn fetch(
        &self,
        source: &Endpoint,
        events: &[Event],
    ) -> Result<Vec<Result<Resource, Failure>>, PluginError> {
        let source = wit::Endpoint::from(source);
        let wit_events: Vec<wit::Event> = events.iter().map(Into::into).collect();
        let results = self
            .sandbox
            .call("fetch", move |instance| {
                Box::pin(async move {
                    instance
                        .bindings
                        .sync_plugin_client()
                        .call_fetch(&mut instance.store, &source, &wit_events)
                        .await
                })
            })
            .await?;
        check_count(self.sandbox.plugin(), "fetch", results.len(), events.len())?;
        Ok(results
            .into_iter()
            .map(|result| result.map(Into::into).map_err(Into::into))
            .collect())
    }

    async fn store(
        &self,
        target: &Endpoint,
        writes: &[Write],
    ) -> Result<Vec<Result<Stored, Failure>>, PluginError> {
        let target = wit::Endpoint::from(target);
        let wit_writes: Vec<wit::Write> = writes.iter().map(Into::into).collect();
        let results = self
            .sandbox
            .call("store", move |instance| {
                Box::pin(async move {
                    instance
                        .bindings
                        .sync_plugin_client()
                        .call_store(&mut instance.store, &target, &wit_writes)
                        .await
                })
            })
            .await?;
        check_count(self.sandbox.plugin(), "store", results.len(), writes.len())?;
        Ok(results
            .into_iter()
            .map(|result| result.map(Into::into).map_err(Into::into))
            .collect())
    }
}

/// A plugin must return exactly one result per input, in order.
pub(crate) fn check_count(
    plugin: &str,
    function: &'static str,
    got: usize,
    expected: usize,
) -> Result<(), PluginError> {
    if got == expected {
        Ok(())
    } else {
        Err(PluginError::BadResultCount {
            plugin: plugin.to_owned(),
            function,
            got,
            expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_result_count_names_the_plugin_and_both_counts() {
        assert!(check_count("fhir 0.1.0", "fetch", 3, 3).is_ok());
        let err = check_count("fhir 0.1.0", "fetch", 2, 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin fhir 0.1.0 returned 2 results from fetch for 3 inputs"
        );
    }
}

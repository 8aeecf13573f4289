//! The host-side `Classifier` trait and its WebAssembly implementation.

use std::sync::Arc;

use crate::client::check_count;
use crate::error::PluginError;
use crate::instance::ClassifierWorld;
use crate::sandbox::Sandbox;
use crate::types::{Document, Placed, PluginInfo};

/// Says where resources belong. Implemented by [`WasmClassifier`], and by native fakes in
/// tests.
#[async_trait::async_trait]
pub trait Classifier: Send + Sync {
    /// The plugin's self-description.
    fn info(&self) -> &PluginInfo;

    /// One placement per document, in order.
    async fn classify(&self, documents: &[Document]) -> Result<Vec<Placed>, PluginError>;
}

/// A classifier plugin with its configuration. Every instance, including one that replaces
/// a broken instance, is configured with the same JSON.
#[derive(Clone)]
pub struct WasmClassifier {
    info: Arc<PluginInfo>,
    sandbox: Arc<Sandbox<ClassifierWorld>>,
}

impl WasmClassifier {
    /// Configures a first instance now so that a refused configuration fails here.
    pub(crate) async fn start(
        info: PluginInfo,
        sandbox: Sandbox<ClassifierWorld>,
    ) -> Result<Self, PluginError> {
        sandbox.warm_up().await?;
        Ok(Self {
            info: Arc::new(info),
            sandbox: Arc::new(sandbox),
        })
    }
}

impl std::fmt::Debug for WasmClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmClassifier")
            .field("plugin", &self.sandbox.plugin())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Classifier for WasmClassifier {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    async fn classify(&self, documents: &[Document]) -> Result<Vec<Placed>, PluginError> {
        let wit_documents: Vec<_> = documents.iter().map(Into::into).collect();
        let placements = self
            .sandbox
            .call("classify", move |instance| {
                Box::pin(async move {
                    instance
                        .bindings
                        .sync_plugin_classifier()
                        .call_classify(&mut instance.store, &wit_documents)
                        .await
                })
            })
            .await?;
        check_count(
            self.sandbox.plugin(),
            "classify",
            placements.len(),
            documents.len(),
        )?;
        Ok(placements.into_iter().map(Into::into).collect())
    }
}

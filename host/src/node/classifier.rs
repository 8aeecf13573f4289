//! The rules that place what this node's store writes: the built-in paths of `[classify]`, or
//! the classifier plugin `[classifier]` names, run on a thread of its own for the store.
//!
//! The store classifies inside its write path, which is synchronous (its committer is a plain
//! thread, and checks made before a write run in async tasks). A plugin call is async, so the
//! plugin runs on a dedicated thread with its own small runtime, and the store waits for each
//! answer: never blocking inside an async runtime's own scheduler, whatever its flavour.

use std::sync::Arc;
use std::sync::mpsc;

use sync_host_runtime::{Classifier as _, Document, Family, Placed, Resource, WasmClassifier};
use sync_host_store::scope::{Classification, Classify};
use sync_host_store::store::{Kind, ResourceKey};

use crate::config::NodeConfig;
use crate::error_chain::chain;
use crate::node::wiring::WiringError;
use crate::plugins::PluginRegistry;

/// The rules for this node's store: the plugin `[classifier]` names, configured, or the paths
/// of `[classify]`.
pub async fn store_rules(
    config: &NodeConfig,
    registry: &PluginRegistry,
) -> Result<Arc<dyn Classify>, WiringError> {
    let Some(section) = &config.classifier else {
        let rules = config.path_rules().map_err(|error| WiringError::Plugin {
            key: "classify".into(),
            name: "built-in".into(),
            reason: error.to_string(),
        })?;
        return Ok(Arc::new(rules));
    };
    let key = "classifier.plugin";
    let entry = registry
        .get(&section.plugin)
        .ok_or_else(|| WiringError::UnknownPlugin {
            key: key.into(),
            name: section.plugin.clone(),
        })?;
    let json = match &section.config {
        Some(table) => serde_json::to_string(table).unwrap_or_else(|_| "{}".into()),
        None => "{}".to_string(),
    };
    let plugin = entry
        .plugin
        .classifier(&json)
        .await
        .map_err(|e| WiringError::Plugin {
            key: key.into(),
            name: section.plugin.clone(),
            reason: chain(&e),
        })?;
    let digest = rules_digest(entry.plugin.digest(), &json);
    let rules = PluginRules::start(plugin, digest).map_err(|error| WiringError::Plugin {
        key: key.into(),
        name: section.plugin.clone(),
        reason: error.to_string(),
    })?;
    Ok(Arc::new(rules))
}

/// The plugin's build and its configuration name its rules: either changing classifies the
/// store again.
fn rules_digest(plugin_digest: &str, config_json: &str) -> String {
    use sha2::{Digest, Sha256};
    let text = format!("plugin\n{plugin_digest}\n{config_json}");
    format!(
        "plugin-{}",
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    )
}

type Request = (Document, mpsc::SyncSender<Classification>);

/// A classifier plugin behind the store's synchronous [`Classify`].
pub struct PluginRules {
    name: String,
    digest: String,
    requests: mpsc::SyncSender<Request>,
}

impl std::fmt::Debug for PluginRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRules")
            .field("plugin", &self.name)
            .field("digest", &self.digest)
            .finish()
    }
}

impl PluginRules {
    /// Starts the plugin's thread. It ends when the last handle to these rules is dropped.
    fn start(plugin: WasmClassifier, digest: String) -> std::io::Result<PluginRules> {
        let name = sync_host_runtime::Classifier::info(&plugin).label();
        let (requests, incoming) = mpsc::sync_channel::<Request>(64);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let label = name.clone();
        std::thread::Builder::new()
            .name("store-classifier".into())
            .spawn(move || {
                while let Ok((document, reply)) = incoming.recv() {
                    let placed = runtime.block_on(plugin.classify(std::slice::from_ref(&document)));
                    let classification = match placed {
                        Ok(mut placed) if placed.len() == 1 => placed
                            .pop()
                            .map(|placed| classification_of(placed, &label, &document))
                            .unwrap_or_else(unplaced),
                        Ok(_) => unplaced(),
                        Err(error) => {
                            let resource = &document.resource;
                            tracing::warn!(
                                plugin = %label, resource_type = %resource.resource_type,
                                id = %resource.id, error = %chain(&error),
                                "classifier failed; the version is placed where no scoped client sees it"
                            );
                            unplaced()
                        }
                    };
                    // The writer may have gone (its task cancelled); nothing waits for this.
                    let _ = reply.send(classification);
                }
            })?;
        Ok(PluginRules {
            name,
            digest,
            requests,
        })
    }
}

impl Classify for PluginRules {
    fn digest(&self) -> &str {
        &self.digest
    }

    fn classify(&self, key: &ResourceKey, body: &str) -> Classification {
        let document = Document {
            family: match key.kind {
                Kind::Fhir => Family::Fhir,
                Kind::Rest => Family::Rest,
            },
            resource: Resource {
                resource_type: key.resource_type.clone(),
                id: key.id.clone(),
                version: None,
                body: body.to_owned(),
                deleted: false,
            },
        };
        let (reply, answer) = mpsc::sync_channel(1);
        if self.requests.send((document, reply)).is_err() {
            return unplaced();
        }
        // Bounded: every plugin call ends within the runtime's wall-clock limit.
        answer.recv().unwrap_or_else(|_| unplaced())
    }
}

/// Scoped with no keys: no scoped client sees it. What a failed classification places.
fn unplaced() -> Classification {
    Classification {
        scoped: true,
        ..Classification::default()
    }
}

/// The plugin's answer in the store's terms. An owner that is not `Patient/<id>` or
/// `patient/<uuid>` names no compartment.
fn classification_of(placed: Placed, plugin: &str, document: &Document) -> Classification {
    let owner = placed.owner.as_deref().and_then(|owner| {
        let parsed = match owner.split_once('/') {
            Some(("Patient", id)) if !id.is_empty() => Some(ResourceKey::fhir("Patient", id)),
            Some(("patient", id)) if !id.is_empty() => Some(ResourceKey::rest("patient", id)),
            _ => None,
        };
        if parsed.is_none() {
            tracing::warn!(
                plugin, owner, id = %document.resource.id,
                "classifier named an owner that is no Patient; ignored"
            );
        }
        parsed
    });
    Classification {
        scoped: placed.scoped,
        keys: placed.keys.into_iter().collect(),
        owner,
    }
}

//! The rules that place what this node's store writes: the built-in paths of `[classify]`, or
//! the classifier plugin `[classifier]` names, run on a thread of its own for the store.
//!
//! The store classifies inside its write path, which is synchronous (its committer is a plain
//! thread, and checks made before a write run in async tasks). A plugin call is async, so the
//! plugin has a small runtime of its own, and the store waits for each answer: never blocking
//! inside an async runtime's own scheduler, whatever its flavour.

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
        return path_rules(config);
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

/// The built-in rules of `[classify]`, for a node without `[classifier]`: no plugin needed.
pub fn path_rules(config: &NodeConfig) -> Result<Arc<dyn Classify>, WiringError> {
    let rules = config.path_rules().map_err(|error| WiringError::Rules {
        key: format!("classify.{}.{}", error.section, error.resource_type),
        reason: format!("path {:?} {}", error.path, error.problem),
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

/// A classifier plugin behind the store's synchronous [`Classify`], with a runtime of its own
/// (one worker, for the plugin's timers). A caller outside any async runtime (the store's
/// committer thread) or on a worker of a multi-threaded one (a write being prepared, in the
/// node) runs the call on its own thread; a caller on a single-threaded runtime, which may not
/// block, hands it to the plugin's worker and waits.
pub struct PluginRules {
    name: String,
    digest: String,
    plugin: WasmClassifier,
    /// Taken only by `drop`, which shuts the runtime down without waiting: the rules may be
    /// dropped inside an async task, where a runtime must not be dropped blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for PluginRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRules")
            .field("plugin", &self.name)
            .field("digest", &self.digest)
            .finish()
    }
}

impl Drop for PluginRules {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PluginRules {
    /// Starts the plugin's runtime.
    pub fn start(plugin: WasmClassifier, digest: String) -> std::io::Result<PluginRules> {
        let name = sync_host_runtime::Classifier::info(&plugin).label();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("store-classifier")
            .enable_all()
            .build()?;
        Ok(PluginRules {
            name,
            digest,
            plugin,
            runtime: Some(runtime),
        })
    }

    fn call(&self, document: Document) -> Result<Vec<Placed>, String> {
        let Some(runtime) = &self.runtime else {
            return Err("the classifier's runtime is shut down".into());
        };
        let plugin = self.plugin.clone();
        let call = async move {
            let documents = [document];
            plugin.classify(&documents).await.map_err(|e| chain(&e))
        };
        match tokio::runtime::Handle::try_current() {
            Err(_) => return runtime.block_on(call),
            // A worker of a multi-threaded runtime may block once it hands its other tasks
            // on; then it may also run the plugin's runtime.
            Ok(caller) if caller.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                return tokio::task::block_in_place(|| runtime.block_on(call));
            }
            Ok(_) => {}
        }
        let (reply, answer) = mpsc::sync_channel(1);
        runtime.spawn(async move {
            // The caller may have gone (its task cancelled); nothing waits for this then.
            let _ = reply.send(call.await);
        });
        // Bounded: every plugin call ends within the runtime's wall-clock limit.
        answer
            .recv()
            .unwrap_or_else(|_| Err("the classifier's call was dropped".into()))
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
        match self.call(document) {
            Ok(mut placed) if placed.len() == 1 => placed
                .pop()
                .map(|placed| classification_of(placed, &self.name, key))
                .unwrap_or_else(unplaced),
            Ok(_) => unplaced(),
            Err(error) => {
                tracing::warn!(
                    plugin = %self.name, resource_type = %key.resource_type, id = %key.id,
                    %error, "classifier failed; the version is placed where no scoped client sees it"
                );
                unplaced()
            }
        }
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
fn classification_of(placed: Placed, plugin: &str, key: &ResourceKey) -> Classification {
    let owner = placed.owner.as_deref().and_then(|owner| {
        let parsed = match owner.split_once('/') {
            Some(("Patient", id)) if !id.is_empty() => Some(ResourceKey::fhir("Patient", id)),
            Some(("patient", id)) if !id.is_empty() => Some(ResourceKey::rest("patient", id)),
            _ => None,
        };
        if parsed.is_none() {
            tracing::warn!(
                plugin, owner, id = %key.id,
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn rules() -> PluginRules {
        let runtime = sync_host_runtime::PluginRuntime::new(Default::default()).unwrap();
        let bytes = crate::default_plugins::default_plugins()
            .iter()
            .find(|(name, _)| *name == "classifier-paths")
            .map(|(_, bytes)| *bytes)
            .unwrap();
        let plugin = runtime.load_bytes("classifier-paths", bytes).await.unwrap();
        let classifier = plugin
            .classifier(r#"{"fhir":{"Patient":["generalPractitioner"]}}"#)
            .await
            .unwrap();
        PluginRules::start(classifier, "test".into()).unwrap()
    }

    fn patient_of(rules: &PluginRules, practitioner: &str) -> Classification {
        let body = format!(
            r#"{{"resourceType":"Patient","generalPractitioner":[{{"reference":"Practitioner/{practitioner}"}}]}}"#
        );
        rules.classify(&ResourceKey::fhir("Patient", "p"), &body)
    }

    fn keys(classification: &Classification) -> Vec<&str> {
        classification.keys.iter().map(String::as_str).collect()
    }

    #[tokio::test]
    async fn a_single_threaded_caller_and_a_plain_thread_both_get_answers() {
        let rules = rules().await;
        assert_eq!(keys(&patient_of(&rules, "a")), ["Practitioner/a"]);
        let from_thread = std::thread::scope(|s| s.spawn(|| patient_of(&rules, "b")).join());
        assert_eq!(keys(&from_thread.unwrap()), ["Practitioner/b"]);
        let owner = rules.classify(
            &ResourceKey::fhir("Observation", "o"),
            r#"{"resourceType":"Observation","subject":{"reference":"Patient/p"}}"#,
        );
        assert_eq!(owner.owner, Some(ResourceKey::fhir("Patient", "p")));
        drop(rules);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_of_a_multi_threaded_runtime_gets_answers() {
        let rules = rules().await;
        assert_eq!(keys(&patient_of(&rules, "c")), ["Practitioner/c"]);
    }
}

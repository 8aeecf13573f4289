//! What a classifier plugin costs the store per write: `classifier-paths` behind the same
//! `PluginRules` the store calls (one call per write, on the plugin's own thread), next to the
//! built-in classifier running the very same rules natively.

use std::time::Instant;

use sync_host::default_plugins::default_plugins;
use sync_host::network::sample;
use sync_host::node::classifier::PluginRules;
use sync_host_runtime::PluginRuntime;
use sync_host_store::scope::{Classifier, Classify};
use sync_host_store::store::ResourceKey;

/// A patient and one observation of it, per pair.
fn documents(pairs: usize) -> Vec<(ResourceKey, String)> {
    (0..pairs)
        .flat_map(|i| {
            let patient = format!("p-{i}");
            let organization = format!("org-{}", i % 10);
            let weight = format!("w-{i}");
            [
                (
                    ResourceKey::fhir("Patient", &patient),
                    sample::managed_patient(
                        &patient,
                        "Amina",
                        "Otieno",
                        "1990-05-01",
                        &organization,
                    ),
                ),
                (
                    ResourceKey::fhir("Observation", &weight),
                    sample::weight(&weight, &patient, "61.5"),
                ),
            ]
        })
        .collect()
}

fn per_document(rules: &dyn Classify, documents: &[(ResourceKey, String)]) -> (f64, usize) {
    let started = Instant::now();
    let keys: usize = documents
        .iter()
        .map(|(key, body)| rules.classify(key, body).keys.len())
        .sum();
    let micros = started.elapsed().as_secs_f64() * 1e6 / documents.len() as f64;
    (micros, keys)
}

pub async fn classifier_cost(runtime: &PluginRuntime, quick: bool) -> anyhow::Result<()> {
    let bytes = default_plugins()
        .iter()
        .find(|(name, _)| *name == "classifier-paths")
        .map(|(_, bytes)| *bytes)
        .unwrap_or_default();
    let plugin = runtime.load_bytes("classifier-paths", bytes).await?;
    let wasm = PluginRules::start(plugin.classifier("{}").await?, "bench".into())?;
    let native = Classifier::standard();
    let documents = documents(if quick { 500 } else { 5_000 });
    // A plain thread, as the store's committer (follow, classifying again) calls it.
    let (plain_us, plain_keys) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                per_document(&wasm, &documents[..10]);
                per_document(&wasm, &documents)
            })
            .join()
            .unwrap_or_default()
    });
    // An async task, as a write's preparation calls it: handed to the plugin's runtime.
    let (task_us, task_keys) = tokio::task::block_in_place(|| per_document(&wasm, &documents));
    let (native_us, native_keys) = per_document(&native, &documents);
    anyhow::ensure!(
        plain_keys == native_keys && task_keys == native_keys,
        "the plugin placed {plain_keys} and {task_keys} keys, the built-in rules {native_keys}"
    );
    println!(
        "classification per write, default rules ({} FHIR documents, half in a compartment):",
        documents.len()
    );
    println!("  wasm, from a plain thread  {plain_us:>9.2} µs/document (the store's committer)");
    println!("  wasm, from an async task   {task_us:>9.2} µs/document (a write being prepared)");
    println!("  built-in, same rules       {native_us:>9.2} µs/document");
    println!("  ratio (async task)         {:>9.1}x", task_us / native_us);
    Ok(())
}

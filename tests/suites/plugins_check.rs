//! `inspect` and loading on real files: the default plugins, a core module, a
//! component for no world, a plugin built for another contract version, and
//! garbage, each with the error text an operator would see.

use std::path::PathBuf;
use std::time::Duration;

use sync_host_runtime::{
    Action, Direction, Event, EventFilter, HOST_WIT_VERSION, HttpAccess, InspectError, PluginError,
    PluginRuntime, RuntimeConfig, Verdict, World, inspect, require_world,
};

/// The 8-byte header of an empty core module.
const CORE_MODULE: &[u8] = b"\0asm\x01\0\0\0";
/// The 8-byte header of an empty component: valid, but exports nothing.
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

fn runtime() -> PluginRuntime {
    PluginRuntime::new(RuntimeConfig {
        call_timeout: Duration::from_secs(5),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn plugin_bytes(name: &str) -> Vec<u8> {
    let path: PathBuf = sync_host_tests::plugin_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Rewrites every `sync:plugin/...@0.1.0` name to another version. The names
/// keep their length, so the component stays well-formed.
fn with_contract_version(bytes: &[u8], version: &str) -> Vec<u8> {
    assert_eq!(version.len(), HOST_WIT_VERSION.len());
    let mut patched = bytes.to_vec();
    for interface in ["types", "http", "log", "client", "filter"] {
        let from = format!("sync:plugin/{interface}@{HOST_WIT_VERSION}");
        let to = format!("sync:plugin/{interface}@{version}");
        let mut at = 0;
        while let Some(offset) = find(&patched[at..], from.as_bytes()) {
            let start = at + offset;
            patched[start..start + to.len()].copy_from_slice(to.as_bytes());
            at = start + to.len();
        }
    }
    patched
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[test]
fn the_fhir_plugin_is_a_resource_client() {
    let info = inspect(&runtime(), &plugin_bytes("fhir")).unwrap();
    assert_eq!(info.world, World::ResourceClient);
    assert_eq!(info.wit_version, HOST_WIT_VERSION);
    assert!(
        info.exports.iter().any(|e| e == "sync:plugin/client@0.1.1"),
        "{:?}",
        info.exports
    );
    assert!(
        info.imports
            .iter()
            .all(|i| !i.starts_with("wasi:filesystem")),
        "{:?}",
        info.imports
    );
}

#[test]
fn a_filter_plugin_is_an_event_filter() {
    let info = inspect(&runtime(), &plugin_bytes("filter-category")).unwrap();
    assert_eq!(info.world, World::EventFilter);
    assert!(
        info.exports.iter().any(|e| e == "sync:plugin/filter@0.1.1"),
        "{:?}",
        info.exports
    );
}

#[test]
fn a_core_module_is_explained() {
    let error = inspect(&runtime(), CORE_MODULE).unwrap_err();
    assert_eq!(error, InspectError::CoreModule);
    let message = error.to_string();
    assert!(
        message.starts_with("a core WebAssembly module, not a component"),
        "{message}"
    );
    assert!(message.contains("wasm32-wasip2"), "{message}");
}

#[test]
fn garbage_is_not_webassembly() {
    let error = inspect(&runtime(), b"#!/bin/sh\necho not a plugin\n").unwrap_err();
    assert_eq!(
        error.to_string(),
        "not a WebAssembly file (it does not start with the \\0asm header)"
    );
}

#[test]
fn a_truncated_component_is_invalid() {
    let bytes = plugin_bytes("filter-category");
    let error = inspect(&runtime(), &bytes[..bytes.len() / 2]).unwrap_err();
    assert!(matches!(error, InspectError::Invalid(_)), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("not a valid WebAssembly component"),
        "{error}"
    );
}

#[test]
fn a_component_for_no_world_says_what_is_missing() {
    let error = inspect(&runtime(), EMPTY_COMPONENT).unwrap_err();
    assert_eq!(error, InspectError::NoWorld { exports: vec![] });
    assert!(
        error.to_string().starts_with(
            "implements no sync:plugin world: it exports neither `sync:plugin/client`"
        ),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filter_is_not_accepted_where_a_client_is_required() {
    let runtime = runtime();
    let bytes = plugin_bytes("filter-category");
    let info = inspect(&runtime, &bytes).unwrap();
    let error = require_world(&info, World::ResourceClient).unwrap_err();
    assert_eq!(
        error.to_string(),
        "implements the event-filter world, but a resource-client is required here"
    );
    let loaded = runtime
        .load_bytes("filter-category.wasm", &bytes)
        .await
        .unwrap();
    let error = loaded.resource_client(HttpAccess::default()).unwrap_err();
    assert!(matches!(error, PluginError::WrongWorld { .. }), "{error}");
    assert!(error.to_string().contains(&loaded.info().name), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_minor_contract_version_is_refused() {
    let patched = with_contract_version(&plugin_bytes("filter-category"), "0.2.0");
    let runtime = runtime();
    let error = inspect(&runtime, &patched).unwrap_err();
    assert_eq!(
        error.to_string(),
        "built for sync:plugin@0.2.0, this host speaks sync:plugin@0.1.1"
    );
    let load_error = runtime
        .load_bytes("future.wasm", &patched)
        .await
        .unwrap_err();
    // The load error names the file; its cause (the inspection) names the version.
    let load_error = sync_host::error_chain::chain(&load_error);
    assert!(load_error.contains("future.wasm"), "{load_error}");
    assert!(
        load_error.contains("built for sync:plugin@0.2.0"),
        "{load_error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_patch_version_is_compatible_and_loads() {
    let patched = with_contract_version(&plugin_bytes("filter-category"), "0.1.9");
    let loaded = runtime()
        .load_bytes("patched.wasm", &patched)
        .await
        .unwrap();
    assert_eq!(loaded.world(), World::EventFilter);
    assert_eq!(loaded.wit_version(), "0.1.9");
}

#[tokio::test(flavor = "multi_thread")]
async fn discover_loads_every_wasm_file_and_reports_each_failure() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a-filter.wasm"),
        plugin_bytes("filter-category"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b-reads-files.wasm"),
        plugin_bytes("hostile-fs"),
    )
    .unwrap();
    std::fs::write(dir.path().join("c-garbage.wasm"), b"garbage").unwrap();
    std::fs::write(dir.path().join("README.txt"), b"not a plugin").unwrap();
    let found = runtime().discover(dir.path()).await;
    let names: Vec<_> = found
        .iter()
        .map(|(path, _)| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["a-filter.wasm", "b-reads-files.wasm", "c-garbage.wasm"]
    );
    assert_eq!(found[0].1.as_ref().unwrap().world(), World::EventFilter);
    let fs_error = sync_host::error_chain::chain(found[1].1.as_ref().unwrap_err());
    assert!(
        fs_error.contains("b-reads-files.wasm") && fs_error.contains("wasi:filesystem"),
        "{fs_error}"
    );
    let garbage_error = sync_host::error_chain::chain(found[2].1.as_ref().unwrap_err());
    assert!(
        garbage_error.contains("c-garbage.wasm")
            && garbage_error.contains("not a WebAssembly file"),
        "{garbage_error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_load_comes_from_the_disk_cache() {
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    };
    let bytes = plugin_bytes("fhir");
    let first = PluginRuntime::new(config.clone())
        .unwrap()
        .load_bytes("fhir.wasm", &bytes)
        .await
        .unwrap();
    // A new runtime, as after a restart.
    let second = PluginRuntime::new(config)
        .unwrap()
        .load_bytes("fhir.wasm", &bytes)
        .await
        .unwrap();
    println!(
        "fhir plugin load: compiled {:?}, from cache {:?}",
        first.load_time(),
        second.load_time()
    );
    assert!(!first.from_cache());
    assert!(second.from_cache());
    assert_eq!(first.info(), second.info());
}

fn event(category: &str) -> Event {
    Event {
        id: format!("urn:uuid:{category}-1"),
        sequence: None,
        category: category.into(),
        action: Action::Created,
        resource_type: category.into(),
        resource_id: "1".into(),
        links: vec![],
        tags: vec![],
        origin: None,
        version: None,
        content_hash: None,
        raw: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filter_refusing_its_configuration_is_named() {
    let runtime = runtime();
    let loaded = runtime
        .load_bytes("filter-category.wasm", &plugin_bytes("filter-category"))
        .await
        .unwrap();
    let error = loaded.event_filter(r#"{"allow": 7}"#).await.unwrap_err();
    assert!(matches!(error, PluginError::Configure { .. }), "{error}");
    let message = error.to_string();
    println!("{message}");
    assert!(
        message.starts_with(&format!(
            "event filter {} refused its configuration",
            loaded.info().label()
        )),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_instance_of_a_filter_gets_the_same_configuration() {
    let runtime = runtime();
    let loaded = runtime
        .load_bytes("filter-category.wasm", &plugin_bytes("filter-category"))
        .await
        .unwrap();
    let filter = loaded
        .event_filter(r#"{"allow": ["patient"]}"#)
        .await
        .unwrap();
    let events = [event("patient"), event("concept")];
    // Concurrent calls run on fresh instances beside the first, configured one.
    let calls = (0..6).map(|_| {
        let filter = filter.clone();
        let events = events.clone();
        tokio::spawn(async move { filter.accept(Direction::Pull, &events).await })
    });
    for call in calls {
        let verdicts = call.await.unwrap().unwrap();
        assert_eq!(verdicts.len(), 2);
        assert_eq!(verdicts[0], Verdict::Accept);
        assert!(matches!(verdicts[1], Verdict::Reject(_)), "{verdicts:?}");
    }
}

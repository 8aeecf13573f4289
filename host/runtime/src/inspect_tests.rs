//! Unit tests of the pure inspection decisions: versions, worlds, import audit.

use super::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn client_imports() -> Vec<String> {
    names(&[
        "wasi:cli/environment@0.2.6",
        "wasi:io/streams@0.2.6",
        "sync:plugin/types@0.1.0",
        "sync:plugin/http@0.1.0",
        "sync:plugin/log@0.1.0",
    ])
}

#[test]
fn zero_x_versions_need_the_same_minor() {
    assert!(is_compatible("0.1.0", "0.1.0"));
    assert!(is_compatible("0.1.7", "0.1.0"));
    assert!(is_compatible("0.1.0-rc.1", "0.1.0"));
    assert!(!is_compatible("0.2.0", "0.1.0"));
    assert!(!is_compatible("1.1.0", "0.1.0"));
}

#[test]
fn from_one_on_the_major_must_match() {
    assert!(is_compatible("1.4.2", "1.0.0"));
    assert!(!is_compatible("2.0.0", "1.0.0"));
    assert!(!is_compatible("0.9.0", "1.0.0"));
}

#[test]
fn malformed_versions_are_incompatible() {
    assert!(!is_compatible("unversioned", "0.1.0"));
    assert!(!is_compatible("0.1", "0.1.0"));
    assert!(!is_compatible("0.1.x", "0.1.0"));
}

#[test]
fn a_resource_client_is_recognised() {
    let info = classify(
        client_imports(),
        names(&["describe", "sync:plugin/client@0.1.0"]),
    )
    .unwrap();
    assert_eq!(info.world, World::ResourceClient);
    assert_eq!(info.wit_version, "0.1.0");
}

#[test]
fn an_event_filter_is_recognised() {
    let info = classify(
        names(&["sync:plugin/types@0.1.2", "sync:plugin/log@0.1.2"]),
        names(&["describe", "sync:plugin/filter@0.1.2"]),
    )
    .unwrap();
    assert_eq!(info.world, World::EventFilter);
    assert_eq!(info.wit_version, "0.1.2");
}

#[test]
fn another_contract_version_is_refused_with_both_versions_named() {
    let err = classify(
        names(&["sync:plugin/types@0.2.0"]),
        names(&["describe", "sync:plugin/client@0.2.0"]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "built for sync:plugin@0.2.0, this host speaks sync:plugin@0.1.1"
    );
}

#[test]
fn filesystem_sockets_and_wasi_http_imports_are_refused() {
    for import in [
        "wasi:filesystem/types@0.2.6",
        "wasi:filesystem/preopens@0.2.0",
        "wasi:sockets/tcp@0.2.6",
        "wasi:http/outgoing-handler@0.2.6",
    ] {
        let mut imports = client_imports();
        imports.push(import.to_owned());
        let err = classify(imports, names(&["describe", "sync:plugin/client@0.1.0"])).unwrap_err();
        assert!(
            matches!(err, InspectError::ForbiddenImport { .. }),
            "{import}"
        );
        let message = err.to_string();
        assert!(message.contains(import), "{message}");
        assert!(message.contains("sync:plugin/http"), "{message}");
    }
}

#[test]
fn unknown_imports_are_refused() {
    let mut imports = client_imports();
    imports.push("acme:db/query".to_owned());
    let err = classify(imports, names(&["describe", "sync:plugin/client@0.1.0"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "imports `acme:db/query`, which this host does not provide"
    );
}

#[test]
fn a_component_exporting_nothing_relevant_names_its_exports() {
    let err = classify(vec![], names(&["wasi:cli/run@0.2.0"])).unwrap_err();
    assert!(matches!(err, InspectError::NoWorld { .. }));
    assert!(err.to_string().contains("wasi:cli/run@0.2.0"), "{err}");
}

#[test]
fn describe_is_required() {
    let err = classify(client_imports(), names(&["sync:plugin/client@0.1.0"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "implements part of the resource-client world but does not export `describe`"
    );
}

#[test]
fn both_worlds_at_once_are_refused() {
    let err = classify(
        client_imports(),
        names(&[
            "describe",
            "sync:plugin/client@0.1.0",
            "sync:plugin/filter@0.1.0",
        ]),
    )
    .unwrap_err();
    assert_eq!(err, InspectError::BothWorlds);
}

#[test]
fn headers_tell_garbage_core_modules_and_components_apart() {
    assert_eq!(check_header(b"hello world"), Err(InspectError::NotWasm));
    assert_eq!(
        check_header(b"\0asm\x01\0\0\0"),
        Err(InspectError::CoreModule)
    );
    assert_eq!(check_header(b"\0asm\x0d\0\x01\0"), Ok(()));
}

#[test]
fn require_world_names_both_worlds() {
    let info = classify(
        names(&["sync:plugin/log@0.1.0"]),
        names(&["describe", "sync:plugin/filter@0.1.0"]),
    )
    .unwrap();
    let err = require_world(&info, World::ResourceClient).unwrap_err();
    assert_eq!(
        err.to_string(),
        "implements the event-filter world, but a resource-client is required here"
    );
}

#[test]
fn a_classifier_is_its_own_world_and_components_of_0_1_0_still_pass() {
    let info = classify(
        names(&["sync:plugin/types@0.1.1", "sync:plugin/log@0.1.1"]),
        names(&["describe", "sync:plugin/classifier@0.1.1"]),
    )
    .unwrap();
    assert_eq!(info.world, World::Classifier);
    let old = classify(
        client_imports(),
        names(&["describe", "sync:plugin/client@0.1.0"]),
    );
    assert_eq!(old.unwrap().wit_version, "0.1.0");
    let two = classify(
        names(&["sync:plugin/log@0.1.1"]),
        names(&[
            "describe",
            "sync:plugin/filter@0.1.1",
            "sync:plugin/classifier@0.1.1",
        ]),
    );
    assert_eq!(two.unwrap_err(), InspectError::BothWorlds);
}

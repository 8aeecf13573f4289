//! Unit tests of the write decision logic.

use super::*;
use crate::store::types::{Precondition, ResourceKey};

fn context() -> Context<'static> {
    Context {
        node_id: "node-a",
        now: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        sequence: 10,
        placement: Placement::default(),
    }
}

fn request(key: ResourceKey, body: Option<&str>) -> Prepared {
    let body = body.map(str::to_owned);
    prepare(WriteRequest {
        key,
        body,
        precondition: Precondition::Any,
        origin: None,
    })
    .expect("valid request")
}

fn new_version(decision: Decision) -> VersionRecord {
    match decision {
        Decision::NewVersion(record) => record,
        other => panic!("expected a new version, got {other:?}"),
    }
}

#[test]
fn first_write_creates_version_one_with_server_meta() {
    let key = ResourceKey::fhir("Observation", "o1");
    let body = r#"{"resourceType":"Observation","id":"o1","value":72.50}"#;
    let record = new_version(decide(&request(key, Some(body)), None, &context()).unwrap());
    assert_eq!(record.version_id, 1);
    assert_eq!(record.action, Action::Created);
    assert_eq!(record.origin, "node-a");
    assert_eq!(record.sequence, 10);
    assert_eq!(
        record.body.as_deref(),
        Some(
            r#"{"resourceType":"Observation","id":"o1","meta":{"versionId":"1","lastUpdated":"2023-11-14T22:13:20.000Z"},"value":72.50}"#
        )
    );
    assert_eq!(record.content_hash, hash::content_hash(body).unwrap());
}

#[test]
fn same_content_is_unchanged_and_different_content_updates() {
    let key = ResourceKey::fhir("Patient", "p");
    let first =
        new_version(decide(&request(key.clone(), Some(r#"{"a":1}"#)), None, &context()).unwrap());
    let again = decide(
        &request(key.clone(), Some(r#"{ "a" : 1 }"#)),
        Some(&first),
        &context(),
    );
    assert_eq!(
        again.unwrap(),
        Decision::Nothing(WriteOutcome::Unchanged(first.clone()))
    );
    let second =
        new_version(decide(&request(key, Some(r#"{"a":2}"#)), Some(&first), &context()).unwrap());
    assert_eq!((second.version_id, second.action), (2, Action::Updated));
}

#[test]
fn delete_then_write_recreates() {
    let key = ResourceKey::fhir("Patient", "p");
    let first = new_version(decide(&request(key.clone(), Some("{}")), None, &context()).unwrap());
    let gone = new_version(decide(&request(key.clone(), None), Some(&first), &context()).unwrap());
    assert!(gone.deleted && gone.body.is_none() && gone.content_hash.is_empty());
    assert_eq!((gone.version_id, gone.action), (2, Action::Deleted));
    let again = decide(&request(key.clone(), None), Some(&gone), &context()).unwrap();
    assert_eq!(again, Decision::Nothing(WriteOutcome::AlreadyGone));
    let back = new_version(decide(&request(key, Some("{}")), Some(&gone), &context()).unwrap());
    assert_eq!((back.version_id, back.action), (3, Action::Created));
}

#[test]
fn create_only_refuses_a_live_copy_but_recreates_a_tombstone() {
    let key = ResourceKey::fhir("Patient", "p");
    let mut write = request(key.clone(), Some("{}"));
    write.precondition = Precondition::Absent;
    let first = new_version(decide(&write, None, &context()).unwrap());
    assert_eq!(first.version_id, 1);
    let refused = decide(&write, Some(&first), &context()).unwrap_err();
    assert!(
        matches!(refused, StoreError::AlreadyExists { current: 1, .. }),
        "{refused}"
    );
    let gone = new_version(decide(&request(key, None), Some(&first), &context()).unwrap());
    assert_eq!(
        new_version(decide(&write, Some(&gone), &context()).unwrap()).version_id,
        3
    );
}

#[test]
fn if_match_must_name_the_current_version() {
    let key = ResourceKey::fhir("Patient", "p");
    let mut write = request(key.clone(), Some("{}"));
    write.precondition = Precondition::Version(1);
    assert!(matches!(
        decide(&write, None, &context()),
        Err(StoreError::VersionMismatch {
            expected: 1,
            current: None,
            ..
        })
    ));
    let first = new_version(decide(&request(key.clone(), Some("{}")), None, &context()).unwrap());
    write = request(key, Some(r#"{"b":1}"#));
    write.precondition = Precondition::Version(1);
    assert_eq!(
        new_version(decide(&write, Some(&first), &context()).unwrap()).version_id,
        2
    );
    write.precondition = Precondition::Version(5);
    let error = decide(&write, Some(&first), &context()).unwrap_err();
    assert!(error.to_string().contains("Patient/p"), "{error}");
}

#[test]
fn rest_flags_log_void_and_unvoid() {
    let key = ResourceKey::rest("patient", "u1");
    let plain = new_version(
        decide(
            &request(key.clone(), Some(r#"{"voided":false}"#)),
            None,
            &context(),
        )
        .unwrap(),
    );
    assert_eq!(
        plain.body.as_deref(),
        Some(r#"{"voided":false}"#),
        "REST stored as given"
    );
    let voided = new_version(
        decide(
            &request(key.clone(), Some(r#"{"voided":true}"#)),
            Some(&plain),
            &context(),
        )
        .unwrap(),
    );
    assert_eq!(voided.action, Action::Voided);
    let back = new_version(
        decide(
            &request(key.clone(), Some(r#"{"x":1}"#)),
            Some(&voided),
            &context(),
        )
        .unwrap(),
    );
    assert_eq!(back.action, Action::Unvoided);
    let retired = new_version(
        decide(
            &request(key, Some(r#"{"x":1,"retired":true}"#)),
            Some(&back),
            &context(),
        )
        .unwrap(),
    );
    assert_eq!(retired.action, Action::Retired);
}

#[test]
fn invalid_bodies_and_keys_are_rejected_with_names() {
    let raw = |key: ResourceKey, body: &str| WriteRequest {
        key,
        body: Some(body.to_owned()),
        precondition: Precondition::Any,
        origin: None,
    };
    let error = prepare(raw(ResourceKey::fhir("Patient", "p9"), "[1]")).unwrap_err();
    assert!(matches!(&error, StoreError::InvalidJson(text) if text.contains("Patient/p9")));
    let error = prepare(raw(ResourceKey::rest("patient", "u"), r#"{"a":}"#)).unwrap_err();
    assert!(matches!(&error, StoreError::InvalidJson(text) if text.contains("patient/u")));
    let empty = ResourceKey::fhir("Patient", "");
    assert!(matches!(
        prepare(raw(empty, "{}")),
        Err(StoreError::InvalidKey(_))
    ));
}

#[test]
fn origin_comes_from_the_request_when_given() {
    let mut write = request(ResourceKey::fhir("Patient", "p"), Some("{}"));
    write.origin = Some("clinic-7".into());
    assert_eq!(
        new_version(decide(&write, None, &context()).unwrap()).origin,
        "clinic-7"
    );
}

fn placed(keys: &[&str]) -> Placement {
    Placement {
        scoped: true,
        keys: keys.iter().map(|key| (*key).to_owned()).collect(),
        ..Placement::default()
    }
}

fn within(request: Prepared, patterns: &[&str]) -> Prepared {
    let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
    Prepared {
        within: Some(Arc::new(DataScope::new(&patterns).unwrap())),
        ..request
    }
}

#[test]
fn a_scoped_writer_may_write_only_inside_its_scope() {
    let key = ResourceKey::fhir("Patient", "p1");
    let write = within(request(key.clone(), Some("{}")), &["Organization/north*"]);
    let inside = Context {
        placement: placed(&["Organization/north-1"]),
        ..context()
    };
    let created = new_version(decide(&write, None, &inside).unwrap());
    assert_eq!(created.placement, inside.placement);
    let outside = Context {
        placement: placed(&["Organization/south"]),
        ..context()
    };
    assert_eq!(
        decide(&write, Some(&created), &outside).unwrap_err(),
        StoreError::OutOfScope(key.clone())
    );
    let mut theirs = created.clone();
    theirs.placement = placed(&["Organization/south"]);
    // Refused before the precondition is looked at: the answer says nothing of the version.
    let stale = Prepared {
        precondition: Precondition::Version(99),
        ..write.clone()
    };
    assert_eq!(
        decide(&stale, Some(&theirs), &inside).unwrap_err(),
        StoreError::OutOfScope(key.clone())
    );
    let delete = within(request(key.clone(), None), &["Organization/north*"]);
    assert!(matches!(
        decide(&delete, Some(&theirs), &inside),
        Err(StoreError::OutOfScope(_))
    ));
    let tombstone = new_version(decide(&delete, Some(&created), &context()).unwrap());
    assert_eq!(
        tombstone.placement, created.placement,
        "a delete stays where it was"
    );
}

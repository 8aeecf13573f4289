//! Store behaviour end to end on a real sled database: versions, history, listings, the change
//! log and its category positions, reopening, and REST void/unvoid on a real OpenMRS document.

use std::path::PathBuf;

use sync_host_store::hash::content_hash;
use sync_host_store::store::{
    Action, Kind, Precondition, ResourceKey, Store, StoreConfig, StoreError, WriteOutcome,
    WriteRequest,
};

fn fixture(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/openmrs")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn open(dir: &tempfile::TempDir, retention: usize) -> Store {
    let config = StoreConfig {
        node_id: "district".into(),
        history_retention: retention,
        ..StoreConfig::default()
    };
    Store::open(dir.path(), config).expect("store opens")
}

fn put(key: &ResourceKey, body: &str) -> WriteRequest {
    WriteRequest {
        key: key.clone(),
        body: Some(body.into()),
        precondition: Precondition::Any,
        origin: None,
    }
}

fn delete(key: &ResourceKey) -> WriteRequest {
    WriteRequest {
        key: key.clone(),
        body: None,
        precondition: Precondition::Any,
        origin: None,
    }
}

#[tokio::test]
async fn fhir_fixture_round_trips_with_server_meta() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 0);
    let body = fixture("fhir2/observation-example.json");
    let key = ResourceKey::fhir("Observation", "f001");
    let WriteOutcome::Created(record) = store.write(put(&key, &body)).await.unwrap() else {
        panic!("first write must create");
    };
    let stored = store.read(&key).unwrap().unwrap();
    assert_eq!(stored, record);
    let stored_body = stored.body.unwrap();
    assert!(stored_body.contains(r#""meta":{"versionId":"1","lastUpdated":""#));
    // Everything but the inserted meta is byte for byte what was written.
    let meta_start = stored_body.find(",\"meta\"").unwrap();
    let meta_end = stored_body[meta_start..].find('}').unwrap() + meta_start + 1;
    assert_eq!(
        format!("{}{}", &stored_body[..meta_start], &stored_body[meta_end..]),
        body
    );
    assert_eq!(stored.content_hash, content_hash(&body).unwrap());
    assert_eq!(content_hash(&stored_body).unwrap(), stored.content_hash);
    // Writing the stored form back (meta included) changes nothing.
    let again = store.write(put(&key, &stored_body)).await.unwrap();
    assert!(matches!(again, WriteOutcome::Unchanged(_)));
    assert_eq!(store.change_count(None).unwrap(), 1);
}

#[tokio::test]
async fn versions_history_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 0);
    let key = ResourceKey::fhir("Patient", "p1");
    store
        .write(put(&key, r#"{"resourceType":"Patient","id":"p1","n":1}"#))
        .await
        .unwrap();
    let updated = store
        .write(put(&key, r#"{"resourceType":"Patient","id":"p1","n":2}"#))
        .await;
    assert!(matches!(updated.unwrap(), WriteOutcome::Updated(ref r) if r.version_id == 2));
    let deleted = store.write(delete(&key)).await.unwrap();
    assert!(matches!(deleted, WriteOutcome::Deleted(ref r) if r.version_id == 3 && r.deleted));
    assert_eq!(
        store.write(delete(&key)).await.unwrap(),
        WriteOutcome::AlreadyGone
    );
    assert!(
        store.read(&key).unwrap().unwrap().deleted,
        "tombstone stays readable"
    );
    assert!(
        store
            .list(Kind::Fhir, "Patient", None, 10)
            .unwrap()
            .is_empty()
    );
    let back = store
        .write(put(&key, r#"{"resourceType":"Patient","id":"p1","n":2}"#))
        .await;
    assert!(matches!(back.unwrap(), WriteOutcome::Created(ref r) if r.version_id == 4));

    let history = store.history(&key, None, 10).unwrap();
    let versions: Vec<u64> = history.iter().map(|record| record.version_id).collect();
    assert_eq!(versions, [4, 3, 2, 1]);
    assert_eq!(store.history(&key, None, 2).unwrap().len(), 2);
    let v2 = store.vread(&key, 2).unwrap().unwrap();
    assert!(v2.body.unwrap().contains(r#""n":2"#));
    assert!(store.vread(&key, 9).unwrap().is_none());
    let after_all = history[0].last_updated + time::Duration::hours(1);
    assert!(store.history(&key, Some(after_all), 10).unwrap().is_empty());

    let actions: Vec<Action> = store
        .changes(None, 0, 100)
        .unwrap()
        .iter()
        .map(|change| change.action)
        .collect();
    use Action::*;
    assert_eq!(actions, [Created, Updated, Deleted, Created]);
}

#[tokio::test]
async fn history_retention_prunes_old_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 2);
    let key = ResourceKey::rest("location", "l1");
    for n in 1..=5 {
        store
            .write(put(&key, &format!(r#"{{"n":{n}}}"#)))
            .await
            .unwrap();
    }
    let kept: Vec<u64> = store
        .history(&key, None, 10)
        .unwrap()
        .iter()
        .map(|r| r.version_id)
        .collect();
    assert_eq!(kept, [5, 4, 3]);
    assert!(store.vread(&key, 2).unwrap().is_none());
    assert_eq!(
        store.change_count(Some("location")).unwrap(),
        5,
        "the log keeps every change"
    );
    let type_history = store
        .type_history(Kind::Rest, "location", None, 10)
        .unwrap();
    assert_eq!(type_history.len(), 3, "pruned versions are skipped");
}

#[tokio::test]
async fn if_match_and_write_all_are_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 0);
    let a = ResourceKey::fhir("Patient", "a");
    let b = ResourceKey::fhir("Patient", "b");
    store.write(put(&a, r#"{"v":1}"#)).await.unwrap();
    let mut stale = put(&a, r#"{"v":2}"#);
    stale.precondition = Precondition::Version(7);
    let error = store
        .write_all(vec![put(&b, r#"{"v":1}"#), stale])
        .await
        .unwrap_err();
    assert_eq!(
        error,
        StoreError::VersionMismatch {
            key: a.to_string(),
            expected: 7,
            current: Some(1)
        }
    );
    assert!(
        store.read(&b).unwrap().is_none(),
        "nothing of a failed unit is applied"
    );
    assert_eq!(store.change_count(None).unwrap(), 1);

    let mut fresh = put(&a, r#"{"v":2}"#);
    fresh.precondition = Precondition::Version(1);
    let outcomes = store.write_all(vec![put(&b, r#"{"v":1}"#), fresh, put(&b, r#"{"v":3}"#)]);
    let outcomes = outcomes.await.unwrap();
    assert!(matches!(outcomes[2], WriteOutcome::Updated(ref r) if r.version_id == 2));
    let sequences: Vec<u64> = store
        .changes(None, 0, 10)
        .unwrap()
        .iter()
        .map(|c| c.sequence)
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4]);
}

#[tokio::test]
async fn categories_positions_and_listing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 1);
    for id in ["c", "a", "b"] {
        store
            .write(put(&ResourceKey::fhir("Patient", id), "{}"))
            .await
            .unwrap();
        store
            .write(put(&ResourceKey::fhir("Encounter", id), "{}"))
            .await
            .unwrap();
    }
    store
        .write(put(&ResourceKey::rest("patient", "u1"), "{}"))
        .await
        .unwrap();
    assert_eq!(store.categories().unwrap(), ["encounter", "patient"]);
    assert_eq!(store.change_count(Some("patient")).unwrap(), 4);
    let page = store.changes_by_position(Some("patient"), 1, 2).unwrap();
    let ids: Vec<&str> = page.iter().map(|change| change.key.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(page[0].sequence, 3);
    let after = store.changes(Some("patient"), 3, 10).unwrap();
    assert_eq!(after.iter().map(|c| c.sequence).collect::<Vec<_>>(), [5, 7]);
    assert_eq!(after[1].key.kind, Kind::Rest);
    assert_eq!(
        store.changes_by_position(None, 5, 10).unwrap()[0].sequence,
        6
    );

    let listed = store.list(Kind::Fhir, "Patient", None, 10).unwrap();
    let ids: Vec<&str> = listed.iter().map(|record| record.key.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let rest = store.list(Kind::Fhir, "Patient", Some("a"), 1).unwrap();
    assert_eq!(rest[0].key.id, "b");
    assert_eq!(
        store.list(Kind::Rest, "patient", None, 10).unwrap().len(),
        1
    );
}

#[tokio::test]
async fn rest_fixture_void_and_unvoid_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 0);
    let voided = fixture("commcare-hq/voided_patient.json");
    let key = ResourceKey::rest("patient", "94d60c79-59b5-4a2c-90a5-325d6e32b3db");
    let unvoided = voided.replacen("\"voided\": true\n}", "\"voided\": false\n}", 1);
    assert_ne!(unvoided, voided);
    store.write(put(&key, &unvoided)).await.unwrap();
    store.write(put(&key, &voided)).await.unwrap();
    store.write(put(&key, &unvoided)).await.unwrap();
    let actions: Vec<Action> = store
        .changes(Some("patient"), 0, 10)
        .unwrap()
        .iter()
        .map(|c| c.action)
        .collect();
    use Action::*;
    assert_eq!(actions, [Created, Voided, Unvoided]);
    assert_eq!(
        store.vread(&key, 2).unwrap().unwrap().body.unwrap(),
        voided,
        "REST kept as given"
    );
}

#[tokio::test]
async fn reopening_keeps_data_and_continues_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let key = ResourceKey::fhir("Patient", "p");
    {
        let store = open(&dir, 0);
        store.write(put(&key, r#"{"x":1}"#)).await.unwrap();
        store.write(put(&key, r#"{"x":2}"#)).await.unwrap();
    }
    let store = open(&dir, 0);
    assert_eq!(*store.subscribe().borrow(), 2);
    assert_eq!(store.read(&key).unwrap().unwrap().version_id, 2);
    let WriteOutcome::Updated(record) = store.write(put(&key, r#"{"x":3}"#)).await.unwrap() else {
        panic!("expected an update");
    };
    assert_eq!((record.sequence, record.version_id), (3, 3));
}

#[tokio::test]
async fn subscribers_wake_on_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 0);
    store
        .write(put(&ResourceKey::fhir("Patient", "before"), "{}"))
        .await
        .unwrap();
    // The writer hears back just before readers are told of its commit.
    while *store.subscribe().borrow() < 1 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let mut changes = store.subscribe();
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(200), changes.changed());
    assert!(
        quiet.await.is_err(),
        "a commit before subscribing does not wake"
    );
    let writer = store.clone();
    let task = tokio::spawn(async move {
        writer
            .write(put(&ResourceKey::fhir("Patient", "w"), "{}"))
            .await
            .unwrap();
    });
    tokio::time::timeout(std::time::Duration::from_secs(5), changes.changed())
        .await
        .expect("woken within 5 s")
        .unwrap();
    assert_eq!(*changes.borrow(), 2, "the sequence of the second commit");
    task.await.unwrap();
}

#[tokio::test]
async fn invalid_input_names_the_resource() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 0);
    let key = ResourceKey::fhir("Patient", "broken");
    let error = store.write(put(&key, r#"{"a":"#)).await.unwrap_err();
    assert!(error.to_string().contains("Patient/broken"), "{error}");
    let bad_key = ResourceKey::fhir("Patient", "");
    assert!(matches!(
        store.write(put(&bad_key, "{}")).await,
        Err(StoreError::InvalidKey(_))
    ));
    assert_eq!(store.change_count(None).unwrap(), 0);
}

#[tokio::test]
async fn relayed_fhir_versions_keep_their_origin_edit_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 0);
    let stamp = "2020-01-02T03:04:05.678Z";
    let body = format!(
        r#"{{"resourceType":"Patient","id":"r","meta":{{"versionId":"7","lastUpdated":"{stamp}"}}}}"#
    );
    let key = ResourceKey::fhir("Patient", "r");
    let mut relayed = put(&key, &body);
    relayed.origin = Some("clinic-9".into());
    let WriteOutcome::Created(record) = store.write(relayed).await.unwrap() else {
        panic!("expected a create");
    };
    let expected =
        time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339);
    assert_eq!(record.last_updated, expected.unwrap());
    assert!(
        record
            .body
            .unwrap()
            .contains(&format!(r#""versionId":"1","lastUpdated":"{stamp}""#))
    );
    let change = store.changes(None, 0, 1).unwrap().remove(0);
    assert!(
        change.at > record.last_updated,
        "the log keeps the commit time"
    );

    // A local write (no origin, or this node's own id) is stamped with the commit time.
    let mut local = put(
        &key,
        &body.replace("\"id\":\"r\"", "\"id\":\"r\",\"active\":true"),
    );
    local.origin = Some("district".into());
    let WriteOutcome::Updated(local) = store.write(local).await.unwrap() else {
        panic!("expected an update");
    };
    assert!(local.last_updated > record.last_updated);
    assert!(!local.body.unwrap().contains(stamp));
}

#[tokio::test]
async fn a_write_uses_an_offered_hash_only_for_the_offered_bytes() {
    use sync_host_store::store::HashOffer;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 0);
    let body = fixture("fhir2/observation-example.json");
    let key = ResourceKey::fhir("Observation", "f001");
    // A marker instead of the real hash shows which one the store kept.
    let offer = |body: &str| HashOffer {
        resource_type: "Observation".into(),
        id: "f001".into(),
        body: body.into(),
        hash: Some("offered".into()),
        supplied_keys: Vec::new(),
    };
    let offered = store.offer_hashes(vec![offer(&body)]);
    store.write(put(&key, &body)).await.unwrap();
    assert_eq!(store.read(&key).unwrap().unwrap().content_hash, "offered");
    drop(offered);

    let other = body.replacen("\"final\"", "\"amended\"", 1);
    assert_ne!(other, body);
    let _offered = store.offer_hashes(vec![offer(&body)]);
    store.write(put(&key, &other)).await.unwrap();
    let stored = store.read(&key).unwrap().unwrap();
    assert_eq!(stored.content_hash, content_hash(&other).unwrap());

    // A withdrawn offer is not used by a later write of the same bytes.
    let third = other.replacen("\"amended\"", "\"corrected\"", 1);
    drop(store.offer_hashes(vec![offer(&third)]));
    store.write(put(&key, &third)).await.unwrap();
    let stored = store.read(&key).unwrap().unwrap();
    assert_eq!(stored.content_hash, content_hash(&third).unwrap());
}

#[tokio::test]
async fn every_opening_of_a_store_has_its_own_instance_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 0);
    let id = store.instance_id().to_owned();
    assert_eq!(id.len(), 32, "{id}");
    drop(store);
    // Reopened files may be a restored copy holding other content under the same page names.
    assert_ne!(open(&dir, 0).instance_id(), id, "the same files reopened");
    let other_dir = tempfile::tempdir().unwrap();
    assert_ne!(open(&other_dir, 0).instance_id(), id);
}

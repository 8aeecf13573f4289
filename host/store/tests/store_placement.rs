//! Placements on a real sled store: classification at write time, compartments that follow
//! their Patient (also when the Patient arrives after them), and a whole store classified
//! again, with log entries, when it opens under other rules.

use std::sync::Arc;
use std::time::Duration;

use sync_host_store::scope::{Classifier, ClassifyConfig};
use sync_host_store::store::{Precondition, ResourceKey, Store, StoreConfig, WriteRequest};

fn open_with(dir: &tempfile::TempDir, rules: &ClassifyConfig) -> Store {
    let config = StoreConfig {
        node_id: "district".into(),
        history_retention: 10,
        classifier: Arc::new(Classifier::new(rules).unwrap()),
    };
    Store::open(dir.path(), config).expect("store opens")
}

fn put(resource_type: &str, id: &str, body: String) -> WriteRequest {
    WriteRequest {
        key: ResourceKey::fhir(resource_type, id),
        body: Some(body),
        precondition: Precondition::Any,
        origin: None,
    }
}

fn patient(id: &str, organization: &str) -> WriteRequest {
    put(
        "Patient",
        id,
        format!(
            r#"{{"resourceType":"Patient","id":"{id}","managingOrganization":{{"reference":"Organization/{organization}"}}}}"#
        ),
    )
}

fn observation(id: &str, patient: &str) -> WriteRequest {
    put(
        "Observation",
        id,
        format!(
            r#"{{"resourceType":"Observation","id":"{id}","status":"final","subject":{{"reference":"Patient/{patient}"}}}}"#
        ),
    )
}

fn keys_of(store: &Store, resource_type: &str, id: &str) -> Vec<String> {
    let record = store.read(&ResourceKey::fhir(resource_type, id)).unwrap();
    record.map(|r| r.placement.keys).unwrap_or_default()
}

/// Waits until `resource_type/id` is placed at `keys` (placement work runs in the background).
async fn placed_at(store: &Store, resource_type: &str, id: &str, keys: &[&str]) {
    let want: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    for _ in 0..500 {
        if keys_of(store, resource_type, id) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{resource_type}/{id} is placed at {:?}, not {want:?}",
        keys_of(store, resource_type, id)
    );
}

#[tokio::test]
async fn an_observation_inherits_its_patients_keys_and_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&dir, &ClassifyConfig::default());
    store.write(patient("p1", "north-1")).await.unwrap();
    store.write(observation("o1", "p1")).await.unwrap();
    assert_eq!(
        keys_of(&store, "Observation", "o1"),
        ["Organization/north-1"]
    );
    let before = store.last_sequence().unwrap();

    store.write(patient("p1", "north-2")).await.unwrap();
    placed_at(&store, "Observation", "o1", &["Organization/north-2"]).await;
    // The move is logged: one entry for the patient, one for its observation, which says
    // which keys it left and keeps its version.
    let changes = store.changes(None, before, 10).unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    let followed = &changes[1];
    assert_eq!(followed.key, ResourceKey::fhir("Observation", "o1"));
    assert_eq!(followed.version_id, 1);
    assert_eq!(followed.left_keys, ["Organization/north-1"]);
    assert_eq!(followed.placement.keys, ["Organization/north-2"]);
}

#[tokio::test]
async fn an_observation_written_before_its_patient_is_placed_when_the_patient_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&dir, &ClassifyConfig::default());
    store.write(observation("o1", "p1")).await.unwrap();
    assert!(keys_of(&store, "Observation", "o1").is_empty());
    store.write(patient("p1", "south-1")).await.unwrap();
    placed_at(&store, "Observation", "o1", &["Organization/south-1"]).await;
}

#[tokio::test]
async fn concurrent_writers_of_a_patient_and_its_observation_place_both() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&dir, &ClassifyConfig::default());
    // Concurrent writers share a group, in which the Patient is decided first.
    let (a, b) = tokio::join!(
        store.write(observation("o1", "p1")),
        store.write(patient("p1", "north-1"))
    );
    a.unwrap();
    b.unwrap();
    placed_at(&store, "Observation", "o1", &["Organization/north-1"]).await;
    // A transaction keeps its own order: the observation it writes before its Patient is
    // placed when the compartment follows, moments after the commit.
    store
        .write_all(vec![observation("o2", "p2"), patient("p2", "north-2")])
        .await
        .unwrap();
    placed_at(&store, "Observation", "o2", &["Organization/north-2"]).await;
}

#[tokio::test]
async fn a_store_opened_under_other_rules_is_classified_again_and_logs_what_moved() {
    let dir = tempfile::tempdir().unwrap();
    let no_rules = ClassifyConfig {
        fhir: Default::default(),
        fhir_compartment: Vec::new(),
        ..ClassifyConfig::default()
    };
    let last = {
        let store = open_with(&dir, &no_rules);
        for i in 0..600 {
            store
                .write(patient(&format!("p{i}"), &format!("org-{}", i % 3)))
                .await
                .unwrap();
        }
        store.write(observation("o1", "p7")).await.unwrap();
        let record = store
            .read(&ResourceKey::fhir("Patient", "p1"))
            .unwrap()
            .unwrap();
        assert!(!record.placement.scoped, "no rule: shared");
        store.last_sequence().unwrap()
    };
    let store = open_with(&dir, &ClassifyConfig::default());
    placed_at(&store, "Patient", "p599", &["Organization/org-2"]).await;
    placed_at(&store, "Observation", "o1", &["Organization/org-1"]).await;
    // Every patient moved once. The observation sorts before its patient, so it is placed
    // (scoped, no keys yet) before the patient is, and moves again when its patient does.
    let logged = store.changes(None, last, 1000).unwrap();
    assert_eq!(logged.len(), 602);
    let record = store
        .read(&ResourceKey::fhir("Patient", "p1"))
        .unwrap()
        .unwrap();
    assert!(record.placement.scoped);
    assert_eq!(record.version_id, 1, "placing again makes no new version");
    drop(store);
    // Opened again under the same rules, nothing more is logged.
    let store = open_with(&dir, &ClassifyConfig::default());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.last_sequence().unwrap(), last + 602);
}

#[tokio::test]
async fn keys_a_source_supplied_place_the_version_and_stay_through_edits_and_new_rules() {
    use sync_host_store::store::HashOffer;
    let dir = tempfile::tempdir().unwrap();
    let kibera = "Kenya%Nairobi%null%Kibera%null";
    let key = ResourceKey::rest("encounter", "u-1");
    let body = r#"{"uuid":"u-1","location":{"uuid":"loc-1"},"voided":false}"#;
    let rest_put = |body: &str| WriteRequest {
        key: key.clone(),
        body: Some(body.to_owned()),
        precondition: Precondition::Any,
        origin: None,
    };
    let placement = |store: &Store| store.read(&key).unwrap().unwrap().placement;
    {
        let store = open_with(&dir, &ClassifyConfig::default());
        // What the engine offers for a document pulled from an OpenMRS feed-filter entry.
        let offered = store.offer_hashes(vec![HashOffer {
            resource_type: "encounter".into(),
            id: "u-1".into(),
            body: body.into(),
            hash: None,
            supplied_keys: vec![kibera.into()],
        }]);
        store.write(rest_put(body)).await.unwrap();
        drop(offered);
        let placed = placement(&store);
        assert_eq!(placed.keys, [kibera, "Location/loc-1"]);
        assert_eq!(placed.supplied, [kibera]);
        let change = store.changes(None, 0, 10).unwrap().pop().unwrap();
        assert_eq!(
            change.placement.keys, placed.keys,
            "the feed entry carries them"
        );

        // A local edit cannot say where the document came from: it keeps what was supplied.
        let edited = body.replace("false", "true");
        store.write(rest_put(&edited)).await.unwrap();
        assert_eq!(placement(&store).keys, [kibera, "Location/loc-1"]);
    }
    // Rules without REST paths classify the store again from the bodies: the location goes,
    // the supplied key stays.
    let rules = ClassifyConfig {
        rest: Default::default(),
        ..ClassifyConfig::default()
    };
    let store = open_with(&dir, &rules);
    for _ in 0..500 {
        if placement(&store).keys == [kibera] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let placed = placement(&store);
    assert_eq!(placed.keys, [kibera], "placed again under the new rules");
    assert_eq!(placed.supplied, [kibera]);
}

//! The filter and the store place resources by the same rules: for random patients, their
//! encounters and observations, and random scopes, the filter accepts exactly what a real
//! store, having written the same batch, places inside the scope.

use proptest::prelude::*;
use sync_host_scope::DataScope;
use sync_host_store::store::{Precondition, ResourceKey, Store, StoreConfig, WriteRequest};
use sync_plugin_filter_catchment::CatchmentFilter;
use sync_plugin_sdk::filter::parse_config;
use sync_plugin_sdk::{Direction, EventFilter, Resource, Verdict};

const ORGANIZATIONS: [&str; 3] = ["north", "south", "east"];

#[derive(Debug, Clone)]
enum Spec {
    Patient {
        organization: Option<usize>,
    },
    Encounter {
        patient: usize,
        provider: Option<usize>,
    },
    Observation {
        patient: usize,
    },
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        proptest::option::of(0..3usize).prop_map(|organization| Spec::Patient { organization }),
        (0..6usize, proptest::option::of(0..3usize))
            .prop_map(|(patient, provider)| Spec::Encounter { patient, provider }),
        (0..6usize).prop_map(|patient| Spec::Observation { patient }),
    ]
}

fn reference(resource_type: &str, id: &str) -> String {
    format!(r#"{{"reference":"{resource_type}/{id}"}}"#)
}

/// The resource of `spec`, the `n`th of the batch. Patients are `p<n>`; a member names
/// `p<patient>`, which may not exist.
fn resource(n: usize, spec: &Spec) -> Resource {
    let organization =
        |index: &Option<usize>| index.map(|i| reference("Organization", ORGANIZATIONS[i]));
    let (resource_type, id, fields) = match spec {
        Spec::Patient { organization: org } => {
            let field = organization(org).map(|r| format!(r#","managingOrganization":{r}"#));
            ("Patient", format!("p{n}"), field.unwrap_or_default())
        }
        Spec::Encounter { patient, provider } => {
            let subject = reference("Patient", &format!("p{patient}"));
            let provider = organization(provider)
                .map(|r| format!(r#","serviceProvider":{r}"#))
                .unwrap_or_default();
            (
                "Encounter",
                format!("e{n}"),
                format!(r#","subject":{subject}{provider}"#),
            )
        }
        Spec::Observation { patient } => {
            let subject = reference("Patient", &format!("p{patient}"));
            (
                "Observation",
                format!("o{n}"),
                format!(r#","subject":{subject}"#),
            )
        }
    };
    Resource {
        resource_type: resource_type.into(),
        id: id.clone(),
        version: None,
        body: format!(r#"{{"resourceType":"{resource_type}","id":"{id}"{fields}}}"#),
        deleted: false,
    }
}

/// Writes `batch` to a fresh store, Patients first, and answers whether `scope` admits each
/// resource as the store placed it.
async fn store_admits(batch: &[Resource], scope: &DataScope) -> Vec<bool> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let key = |r: &Resource| ResourceKey::fhir(r.resource_type.clone(), r.id.clone());
    let (patients, members): (Vec<&Resource>, Vec<&Resource>) =
        batch.iter().partition(|r| r.resource_type == "Patient");
    for resource in patients.into_iter().chain(members) {
        store
            .write(WriteRequest {
                key: key(resource),
                body: Some(resource.body.clone()),
                precondition: Precondition::Any,
                origin: None,
            })
            .await
            .unwrap();
    }
    batch
        .iter()
        .map(|r| scope.admits(&store.read(&key(r)).unwrap().unwrap().placement))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_filter_keeps_what_the_store_places_in_scope(
        specs in proptest::collection::vec(spec(), 1..14),
        chosen in proptest::collection::btree_set(0..3usize, 1..3),
    ) {
        let batch: Vec<Resource> = specs.iter().enumerate().map(|(n, s)| resource(n, s)).collect();
        let keys: Vec<String> =
            chosen.iter().map(|i| format!("Organization/{}", ORGANIZATIONS[*i])).collect();
        let scope = DataScope::new(&keys).unwrap();
        // A member whose Patient is not in the batch does not exist for the store either.
        let config = serde_json::json!({"keys": keys, "unplaced": "reject"}).to_string();
        let filter = CatchmentFilter::new(parse_config(&config).unwrap()).unwrap();

        let verdicts = filter.check_all(Direction::Push, &batch);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let admitted = runtime.block_on(store_admits(&batch, &scope));

        for ((resource, verdict), admitted) in batch.iter().zip(&verdicts).zip(&admitted) {
            prop_assert_eq!(
                *verdict == Verdict::Accept,
                *admitted,
                "{} {}: filter {:?}",
                resource.resource_type,
                resource.body,
                verdict
            );
        }
    }
}

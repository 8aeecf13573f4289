//! End-to-end tests of the default event filters and classifier: the real
//! `.wasm`, configured through the runtime, deciding on real events and
//! placing real resources; and a filter built against the first contract,
//! 0.1.0, still loading and deciding.

use sync_host_runtime::{
    Classifier, Direction, Document, EventFilter, Family, PluginRuntime, Resource, RuntimeConfig,
    Verdict,
};
use sync_host_tests::{event, load_classifier, load_filter, plugin_path};

const KIBERA_TAG: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><feedFilter><beanName>atomfeed.locationFeedFilterStrategy</beanName><filter>Kenya%Nairobi%null%Kibera%null</filter></feedFilter>"#;

fn is_reject(verdict: &Verdict, needle: &str) -> bool {
    matches!(verdict, Verdict::Reject(reason) if reason.contains(needle))
}

#[tokio::test]
async fn category_filter_allows_listed_categories_ignoring_case() {
    let filter = load_filter("filter-category", r#"{"allow":["Patient","encounter"]}"#)
        .await
        .unwrap();
    let events = vec![
        event("patient", "Patient", "p1", &[]),
        event("concept", "concept", "c1", &[]),
        event("Encounter", "Encounter", "e1", &[]),
    ];

    let verdicts = filter.accept(Direction::Pull, &events).await.unwrap();

    assert_eq!(verdicts[0], Verdict::Accept);
    assert!(is_reject(&verdicts[1], "allow list"), "{verdicts:?}");
    assert_eq!(verdicts[2], Verdict::Accept);
    let resource = Resource {
        resource_type: "Concept".into(),
        id: "c1".into(),
        version: None,
        body: "{}".into(),
        deleted: false,
    };
    let checked = filter.check(Direction::Pull, &[resource]).await.unwrap();
    assert!(is_reject(&checked[0], "allow list"));
}

#[tokio::test]
async fn category_filter_deny_list_and_bad_configuration() {
    let filter = load_filter("filter-category", r#"{"deny":["CONCEPT"]}"#)
        .await
        .unwrap();
    let verdicts = filter
        .accept(
            Direction::Push,
            &[
                event("concept", "concept", "c", &[]),
                event("patient", "Patient", "p", &[]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        verdicts,
        vec![
            Verdict::Reject("concept is in the deny list".into()),
            Verdict::Accept
        ]
    );

    let error = load_filter("filter-category", r#"{"allow":["a"],"deny":["b"]}"#)
        .await
        .err()
        .unwrap_or_default();
    assert!(error.contains("either allow or deny"), "{error}");
    let error = load_filter("filter-category", r#"{"alow":["a"]}"#)
        .await
        .err()
        .unwrap_or_default();
    assert!(error.contains("alow"), "{error}");
}

#[tokio::test]
async fn catchment_filter_matches_openmrs_feed_filter_tags() {
    let filter = load_filter(
        "filter-catchment",
        r#"{"patterns":["Kenya%Nairobi%*%*%*"],"untagged":"reject"}"#,
    )
    .await
    .unwrap();
    let mut kibera = event("patient", "Patient", "p1", &[]);
    kibera.tags = vec![KIBERA_TAG.into()];
    let mut mombasa = event("patient", "Patient", "p2", &[]);
    mombasa.tags = vec!["Kenya%Mombasa%null%Likoni%null".into()];
    let untagged = event("patient", "Patient", "p3", &[]);

    let verdicts = filter
        .accept(Direction::Pull, &[kibera, mombasa, untagged])
        .await
        .unwrap();

    assert_eq!(verdicts[0], Verdict::Accept);
    assert!(is_reject(&verdicts[1], "Mombasa"), "{verdicts:?}");
    assert!(is_reject(&verdicts[2], "no location tag"), "{verdicts:?}");
}

fn fixture_resource(resource_type: &str, id: &str, path: &str) -> Resource {
    Resource {
        resource_type: resource_type.into(),
        id: id.into(),
        version: None,
        body: sync_host_tests::fixture(path),
        deleted: false,
    }
}

#[tokio::test]
async fn catchment_filter_places_untagged_resources_by_content_both_ways() {
    let filter = load_filter("filter-catchment", r#"{"keys":["Organization/f001"]}"#)
        .await
        .unwrap();
    // The HL7 examples: Patient f001 is managed by Organization/f001, Observation f001 is
    // about that patient, Encounter f201 is about Patient f201 and was provided by
    // Organization/f201.
    let mut batch = vec![
        fixture_resource("Patient", "f001", "openmrs/fhir2/patient-example.json"),
        fixture_resource(
            "Observation",
            "f001",
            "openmrs/fhir2/observation-example.json",
        ),
        fixture_resource("Encounter", "f201", "openmrs/fhir2/encounter-example.json"),
    ];
    let verdicts = filter.check(Direction::Pull, &batch).await.unwrap();
    assert_eq!(verdicts[0], Verdict::Accept);
    assert_eq!(verdicts[1], Verdict::Accept, "follows its patient");
    assert_eq!(
        verdicts[2],
        Verdict::Accept,
        "its patient may be in the scope: unplaced accepts"
    );
    let strict = load_filter(
        "filter-catchment",
        r#"{"keys":["Organization/f001"],"unplaced":"reject"}"#,
    )
    .await
    .unwrap();
    let verdicts = strict.check(Direction::Push, &batch).await.unwrap();
    assert!(is_reject(&verdicts[2], "Patient/f201"), "{verdicts:?}");
    batch.push(Resource {
        resource_type: "Patient".into(),
        id: "f201".into(),
        version: None,
        body: r#"{"resourceType":"Patient","id":"f201",
            "managingOrganization":{"reference":"Organization/f201"}}"#
            .into(),
        deleted: false,
    });
    for direction in [Direction::Pull, Direction::Push] {
        let verdicts = filter.check(direction, &batch).await.unwrap();
        assert_eq!(&verdicts[..2], [Verdict::Accept, Verdict::Accept]);
        assert!(
            is_reject(&verdicts[2], "with Patient/f201"),
            "{direction:?}: {verdicts:?}"
        );
        assert!(is_reject(&verdicts[3], "Organization/f201"), "{verdicts:?}");
    }
    // A sync-host feed tags each entry with its keys: decided before anything is fetched.
    let mut elsewhere = event("encounter", "Encounter", "f201", &[]);
    elsewhere.tags = vec!["Organization/f201".into()];
    let untagged = event("encounter", "Encounter", "f202", &[]);
    let verdicts = filter
        .accept(Direction::Pull, &[elsewhere, untagged])
        .await
        .unwrap();
    assert!(
        is_reject(&verdicts[0], "outside the catchment"),
        "{verdicts:?}"
    );
    assert_eq!(verdicts[1], Verdict::Accept, "the content decides");
}

#[tokio::test]
async fn origin_filter_skips_listed_origins() {
    let filter = load_filter("filter-origin", r#"{"skip_origins":["clinic-7"]}"#)
        .await
        .unwrap();
    let mut from_seven = event("patient", "Patient", "p1", &[]);
    from_seven.origin = Some("clinic-7".into());
    let mut from_eight = event("patient", "Patient", "p2", &[]);
    from_eight.origin = Some("clinic-8".into());

    let verdicts = filter
        .accept(
            Direction::Push,
            &[
                from_seven,
                from_eight,
                event("patient", "Patient", "p3", &[]),
            ],
        )
        .await
        .unwrap();

    assert!(is_reject(&verdicts[0], "clinic-7"));
    assert_eq!(&verdicts[1..], &[Verdict::Accept, Verdict::Accept]);
    assert!(
        load_filter("filter-origin", "{}").await.is_err(),
        "skip_origins is required"
    );
}

#[tokio::test]
async fn a_filter_built_against_the_first_contract_still_loads_and_decides() {
    let runtime = PluginRuntime::new(RuntimeConfig::default()).unwrap();
    let plugin = runtime
        .load_file(&plugin_path("legacy-filter"))
        .await
        .unwrap();
    assert_eq!(plugin.wit_version(), "0.1.0");
    let filter = plugin.event_filter("{}").await.unwrap();
    let verdicts = filter
        .accept(
            Direction::Pull,
            &[
                event("patient", "Patient", "kept", &[]),
                event("patient", "Patient", "reject-me", &[]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(verdicts[0], Verdict::Accept);
    assert!(is_reject(&verdicts[1], "0.1.0 filter"), "{verdicts:?}");
    let resource = fixture_resource("Patient", "reject-p", "openmrs/fhir2/patient-example.json");
    let checked = filter.check(Direction::Push, &[resource]).await.unwrap();
    assert!(is_reject(&checked[0], "reject-p"), "{checked:?}");
}

#[tokio::test]
async fn the_path_classifier_places_the_hl7_examples_like_the_node() {
    let classifier = load_classifier("classifier-paths", "{}").await.unwrap();
    let documents = [
        ("Patient", "f001", "openmrs/fhir2/patient-example.json"),
        (
            "Observation",
            "f001",
            "openmrs/fhir2/observation-example.json",
        ),
        ("Encounter", "f201", "openmrs/fhir2/encounter-example.json"),
        ("Location", "1", "openmrs/fhir2/LocationWebTest_create.json"),
    ]
    .map(|(resource_type, id, path)| Document {
        family: Family::Fhir,
        resource: fixture_resource(resource_type, id, path),
    });
    let placed = classifier.classify(&documents).await.unwrap();
    assert_eq!(placed[0].keys, ["Organization/f001"]);
    assert_eq!(placed[1].owner.as_deref(), Some("Patient/f001"));
    assert!(
        placed[2].keys.contains(&"Organization/f201".to_owned()),
        "{placed:?}"
    );
    assert_eq!(placed[2].owner.as_deref(), Some("Patient/f201"));
    assert!(!placed[3].scoped, "a Location is shared reference data");

    let refused = load_classifier("classifier-paths", r#"{"fhir":{"Patient":[""]}}"#)
        .await
        .unwrap_err();
    assert!(refused.contains("fhir.Patient"), "{refused}");
}

//! Classification of FHIR resources and REST documents by the default rules.

use super::*;

fn classify(key: ResourceKey, body: &str) -> Classification {
    Classifier::new(&ClassifyConfig::default())
        .unwrap()
        .classify(&key, body)
}

fn keys(classification: &Classification) -> Vec<&str> {
    classification.keys.iter().map(String::as_str).collect()
}

#[test]
fn a_patient_belongs_to_its_managing_organization() {
    let patient = r#"{"resourceType":"Patient","id":"p1",
        "managingOrganization":{"reference":"Organization/kibera-hc"}}"#;
    let found = classify(ResourceKey::fhir("Patient", "p1"), patient);
    assert!(found.scoped);
    assert_eq!(keys(&found), ["Organization/kibera-hc"]);
    assert_eq!(found.owner, None);
}

#[test]
fn an_encounter_names_its_locations_and_its_patient() {
    let encounter = r##"{"resourceType":"Encounter","id":"e1",
        "subject":{"reference":"Patient/p1"},
        "location":[{"location":{"reference":"Location/ward-a"}},
                    {"location":{"reference":"https://x.example/fhir/Location/ward-b/_history/2"}}],
        "serviceProvider":{"reference":"#contained"}}"##;
    let found = classify(ResourceKey::fhir("Encounter", "e1"), encounter);
    assert_eq!(keys(&found), ["Location/ward-a", "Location/ward-b"]);
    assert_eq!(found.owner, Some(ResourceKey::fhir("Patient", "p1")));
}

#[test]
fn an_observation_follows_its_patient_and_a_group_subject_names_no_owner() {
    let observation =
        r#"{"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/p9"}}"#;
    let found = classify(ResourceKey::fhir("Observation", "o1"), observation);
    assert!(found.scoped);
    assert!(found.keys.is_empty());
    assert_eq!(found.owner, Some(ResourceKey::fhir("Patient", "p9")));
    let of_group = r#"{"resourceType":"Observation","id":"o2","subject":{"reference":"Group/g"}}"#;
    let found = classify(ResourceKey::fhir("Observation", "o2"), of_group);
    assert!(found.scoped && found.owner.is_none() && found.keys.is_empty());
}

#[test]
fn types_without_a_rule_are_shared() {
    let location = r#"{"resourceType":"Location","id":"l1","partOf":{"reference":"Location/x"}}"#;
    assert_eq!(
        classify(ResourceKey::fhir("Location", "l1"), location),
        Classification::default()
    );
}

#[test]
fn fields_of_an_unexpected_shape_name_no_key() {
    let odd = r#"{"resourceType":"Patient","managingOrganization":[[{"reference":"Organization/a"}]],
        "generalPractitioner":"x"}"#;
    let found = classify(ResourceKey::fhir("Patient", "p"), odd);
    assert!(found.scoped && found.keys.is_empty());
    let not_json = classify(ResourceKey::fhir("Patient", "p"), "[1,2]");
    assert!(not_json.scoped && not_json.keys.is_empty());
}

#[test]
fn rest_documents_name_locations_by_uuid_and_their_patient() {
    let encounter = r#"{"uuid":"e1","location":{"uuid":"loc-1","display":"Ward"},
        "patient":{"uuid":"pat-1"}}"#;
    let found = classify(ResourceKey::rest("encounter", "e1"), encounter);
    assert_eq!(keys(&found), ["Location/loc-1"]);
    assert_eq!(found.owner, Some(ResourceKey::rest("patient", "pat-1")));
    let patient =
        r#"{"uuid":"pat-1","identifiers":[{"location":"loc-2"},{"location":{"uuid":"loc-3"}}]}"#;
    let found = classify(ResourceKey::rest("patient", "pat-1"), patient);
    assert_eq!(keys(&found), ["Location/loc-2", "Location/loc-3"]);
}

#[test]
fn unusable_paths_are_refused_with_their_type() {
    let mut config = ClassifyConfig::default();
    config
        .fhir
        .insert("Flag".into(), vec!["author..reference".into()]);
    let error = Classifier::new(&config).unwrap_err();
    assert_eq!(error.resource_type, "Flag");
    assert!(error.to_string().contains("fhir.Flag"), "{error}");
    let mut config = ClassifyConfig::default();
    config
        .rest
        .insert("obs".into(), vec!["a.b.c.d.e.f.g.h.i".into()]);
    assert!(
        Classifier::new(&config)
            .unwrap_err()
            .problem
            .contains("steps")
    );
}

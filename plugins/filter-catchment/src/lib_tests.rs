//! The catchment filter's decisions on tags and on content.

use super::*;
use sync_plugin_sdk::filter::parse_config;

const FEED_FILTER: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><feedFilter><beanName>atomfeed.locationFeedFilterStrategy</beanName><filter>Kenya%Nairobi%null%Kibera%null</filter></feedFilter>"#;

fn filter(json: &str) -> CatchmentFilter {
    CatchmentFilter::new(parse_config(json).unwrap()).unwrap()
}

fn refused(json: &str) -> String {
    CatchmentFilter::new(parse_config(json).unwrap()).unwrap_err()
}

fn resource(resource_type: &str, id: &str, body: &str) -> Resource {
    Resource {
        resource_type: resource_type.into(),
        id: id.into(),
        version: None,
        body: body.into(),
        deleted: false,
    }
}

fn patient(id: &str, organization: &str) -> Resource {
    let body = format!(
        r#"{{"resourceType":"Patient","id":"{id}","managingOrganization":{{"reference":"Organization/{organization}"}}}}"#
    );
    resource("Patient", id, &body)
}

fn observation(id: &str, patient: &str) -> Resource {
    let body = format!(
        r#"{{"resourceType":"Observation","id":"{id}","subject":{{"reference":"Patient/{patient}"}}}}"#
    );
    resource("Observation", id, &body)
}

fn rejected(verdict: &Verdict, needle: &str) -> bool {
    matches!(verdict, Verdict::Reject(reason) if reason.contains(needle))
}

#[test]
fn wildcards_match_one_segment_each() {
    let f = filter(r#"{"patterns":["Kenya%Nairobi%*%*%*"]}"#);
    assert_eq!(f.decide(&[FEED_FILTER.to_string()]), Verdict::Accept);
    assert_eq!(f.decide(&["kenya%nairobi%a%b%c".into()]), Verdict::Accept);
    let other = f.decide(&["Kenya%Mombasa%null%Likoni%null".into()]);
    assert!(rejected(&other, "Mombasa"), "{other:?}");
    assert!(matches!(
        f.decide(&["Kenya%Nairobi".into()]),
        Verdict::Reject(_)
    ));
}

#[test]
fn untagged_events_follow_the_option() {
    assert_eq!(filter(r#"{"patterns":["*"]}"#).decide(&[]), Verdict::Accept);
    let strict = filter(r#"{"patterns":["*"],"untagged":"reject"}"#);
    assert!(matches!(strict.decide(&[]), Verdict::Reject(_)));
    // Scope keys are not location paths: a patterns-only filter treats them as no tag.
    assert!(matches!(
        strict.decide(&["Organization/a".into()]),
        Verdict::Reject(_)
    ));
}

#[test]
fn scope_key_tags_decide_before_fetching() {
    let f = filter(r#"{"keys":["Organization/district-a*"]}"#);
    let inside = f.decide(&["Organization/district-a-clinic".into()]);
    assert_eq!(inside, Verdict::Accept);
    let outside = f.decide(&["Organization/district-b".into()]);
    assert!(rejected(&outside, "Organization/district-b"), "{outside:?}");
    assert_eq!(f.decide(&[]), Verdict::Accept, "the content decides");
}

#[test]
fn resources_are_placed_by_content_and_compartments_follow_their_patient() {
    let f = filter(r#"{"keys":["Organization/a"]}"#);
    let batch = [
        patient("in", "a"),
        patient("out", "b"),
        observation("o-in", "in"),
        observation("o-out", "out"),
        resource(
            "Location",
            "shared",
            r#"{"resourceType":"Location","id":"shared"}"#,
        ),
    ];
    let verdicts = f.check_all(Direction::Push, &batch);
    assert_eq!(verdicts[0], Verdict::Accept);
    assert!(rejected(&verdicts[1], "Organization/b"), "{verdicts:?}");
    assert_eq!(verdicts[2], Verdict::Accept);
    assert!(rejected(&verdicts[3], "Patient/out"), "{verdicts:?}");
    assert_eq!(verdicts[4], Verdict::Accept, "a shared type");
}

#[test]
fn a_compartment_without_its_patient_follows_unplaced() {
    let lone = [observation("o", "elsewhere")];
    let lenient = filter(r#"{"keys":["Organization/a"]}"#);
    assert_eq!(lenient.check_all(Direction::Pull, &lone), [Verdict::Accept]);
    let strict = filter(r#"{"keys":["Organization/a"],"unplaced":"reject"}"#);
    let verdicts = strict.check_all(Direction::Pull, &lone);
    assert!(rejected(&verdicts[0], "not in this batch"), "{verdicts:?}");
    let mut gone = observation("o", "elsewhere");
    gone.deleted = true;
    assert_eq!(strict.check(Direction::Pull, &gone), Verdict::Accept);
}

#[test]
fn rest_documents_are_placed_by_their_location() {
    let f = filter(r#"{"keys":["Location/kibera"]}"#);
    let here = resource(
        "encounter",
        "e1",
        r#"{"uuid":"e1","location":{"uuid":"kibera"}}"#,
    );
    let there = resource(
        "encounter",
        "e2",
        r#"{"uuid":"e2","location":{"uuid":"likoni"}}"#,
    );
    let verdicts = f.check_all(Direction::Pull, &[here, there]);
    assert_eq!(verdicts[0], Verdict::Accept);
    assert!(rejected(&verdicts[1], "Location/likoni"), "{verdicts:?}");
}

#[test]
fn configured_rules_replace_the_defaults() {
    let f = filter(r#"{"keys":["Location/x"],"classify":{"fhir":{"Device":["location"]}}}"#);
    let device = resource(
        "Device",
        "d",
        r#"{"resourceType":"Device","location":{"reference":"Location/y"}}"#,
    );
    assert!(rejected(&f.check(Direction::Push, &device), "Location/y"));
    // Patients have no rule in this configuration: shared.
    assert_eq!(
        f.check(Direction::Push, &patient("p", "b")),
        Verdict::Accept
    );
}

#[test]
fn configuration_errors_are_reported() {
    assert!(parse_config::<Config>(r#"{"patterns":["x"],"untagged":"maybe"}"#).is_err());
    assert!(refused(r#"{"patterns":[]}"#).contains("patterns and keys are both empty"));
    assert!(refused(r#"{"keys":["*"]}"#).starts_with("keys: "));
    let bad_path = refused(r#"{"keys":["a"],"classify":{"fhir":{"Patient":["a..b"]}}}"#);
    assert!(bad_path.starts_with("classify.fhir.Patient"), "{bad_path}");
    assert!(refused(r#"{"patterns":["x"],"classify":{}}"#).contains("keys is empty"));
}

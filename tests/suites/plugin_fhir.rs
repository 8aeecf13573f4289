//! End-to-end tests of the FHIR client plugin: the real `.wasm` in the real
//! runtime against a loopback FHIR server serving the shared fixtures.

use std::time::{Duration, Instant};

use sync_host_runtime::{Failure, ResourceClient, WriteOutcome};
use sync_host_tests::{
    RecordedRequest, TestResponse, TestServer, event, fixture, load_client, parent, write,
};

const TIMEOUT: Duration = Duration::from_secs(5);

/// The observation fixture with a decimal that must keep its trailing zero
/// and non-ASCII text, inserted as text so the bytes are exactly known.
fn observation() -> String {
    fixture("openmrs/fhir2/observation-example.json").trim_end().replacen(
        "\"status\": \"final\",",
        "\"status\": \"final\",\n  \"valueQuantity\": {\"value\": 72.50, \"unit\": \"mmol/l\"},\n  \"note\": [{\"text\": \"Zoë – ✓ 血糖\"}],",
        1,
    )
}

/// The patient fixture under another id. The trailing newline of the file
/// is not part of the JSON value a Bundle entry embeds, so it is dropped.
fn patient(id: &str) -> String {
    fixture("openmrs/fhir2/patient-example.json")
        .trim_end()
        .replacen("\"id\": \"f001\"", &format!("\"id\": \"{id}\""), 1)
}

/// A searchset Bundle that embeds each body's text unchanged.
fn bundle(bodies: &[String]) -> String {
    let entries: Vec<String> = bodies
        .iter()
        .map(|b| {
            format!("{{\"fullUrl\":\"urn:x\",\"resource\":{b},\"search\":{{\"mode\":\"match\"}}}}")
        })
        .collect();
    format!(
        "{{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":{},\"entry\":[{}]}}",
        bodies.len(),
        entries.join(",\n")
    )
}

fn outcome(status: u16, diagnostics: &str) -> TestResponse {
    let body = format!(
        r#"{{"resourceType":"OperationOutcome","issue":[{{"severity":"error","code":"processing","diagnostics":"{diagnostics}"}}]}}"#
    );
    TestResponse::new(status, body).header("content-type", "application/fhir+json")
}

fn ids_of(request: &RecordedRequest) -> Vec<String> {
    let mut ids: Vec<String> = request
        .query_param("_id")
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn one_type_batch_is_one_search_and_bodies_pass_byte_for_byte() {
    let patients: Vec<String> = ["pa", "pb", "pc", "pd"]
        .iter()
        .map(|id| patient(id))
        .collect();
    let served = patients.clone();
    let server = TestServer::start(move |_| TestResponse::new(200, bundle(&served))).await;
    let client = load_client("fhir", &server.base_url(), TIMEOUT).await;
    let events: Vec<_> = ["pa", "pb", "pc", "pd"]
        .iter()
        .map(|id| {
            event(
                "patient",
                "Patient",
                id,
                &[("fhir", &format!("/ws/fhir2/R4/Patient/{id}"))],
            )
        })
        .collect();

    let results = client
        .fetch(&parent(&server.base_url()), &events)
        .await
        .unwrap();

    assert_eq!(server.request_count(), 1, "{:?}", server.requests());
    let search = &server.requests()[0];
    assert_eq!(search.path, "/ws/fhir2/R4/Patient");
    assert_eq!(ids_of(search), vec!["pa", "pb", "pc", "pd"]);
    assert_eq!(search.query_param("_count"), Some("4"));
    for (result, expected) in results.iter().zip(&patients) {
        let resource = result.as_ref().unwrap();
        assert_eq!(&resource.body, expected, "body changed on the way");
        assert!(!resource.deleted);
    }
    assert_eq!(results[2].as_ref().unwrap().id, "pc");
}

#[tokio::test]
async fn two_types_are_two_searches_and_decimals_and_unicode_survive() {
    let obs = observation();
    let (served_obs, served_patient) = (obs.clone(), patient("p1"));
    let server = TestServer::start(move |request| match request.path.as_str() {
        "/ws/fhir2/R4/Observation" => {
            TestResponse::new(200, bundle(std::slice::from_ref(&served_obs)))
        }
        _ => TestResponse::new(200, bundle(std::slice::from_ref(&served_patient))),
    })
    .await;
    let client = load_client("fhir", &server.base_url(), TIMEOUT).await;
    let events = vec![
        event(
            "patient",
            "Patient",
            "p1",
            &[("fhir", "/ws/fhir2/R4/Patient/p1")],
        ),
        event(
            "observation",
            "Observation",
            "f001",
            &[("fhir", "/ws/fhir2/R4/Observation/f001")],
        ),
    ];

    let results = client
        .fetch(&parent(&server.base_url()), &events)
        .await
        .unwrap();

    assert_eq!(server.request_count(), 2);
    let body = &results[1].as_ref().unwrap().body;
    assert_eq!(body, &obs);
    assert!(body.contains("72.50") && body.contains("Zoë – ✓ 血糖"));
    assert_eq!(results[0].as_ref().unwrap().body, patient("p1"));
}

#[tokio::test]
async fn ids_missing_from_the_search_are_read_to_tell_not_found_from_gone() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/ws/fhir2/R4/Patient" => TestResponse::new(200, bundle(&[patient("here")])),
        "/ws/fhir2/R4/Patient/missing" => {
            outcome(404, "Resource of type Patient with ID missing is not known")
        }
        "/ws/fhir2/R4/Patient/deleted" => TestResponse::new(410, "").header("etag", "W/\"3\""),
        other => TestResponse::new(500, format!("unexpected {other}")),
    })
    .await;
    let client = load_client("fhir", &server.base_url(), TIMEOUT).await;
    let events: Vec<_> = ["here", "missing", "deleted"]
        .iter()
        .map(|id| event("patient", "Patient", id, &[]))
        .collect();

    let results = client
        .fetch(&parent(&server.base_url()), &events)
        .await
        .unwrap();

    assert_eq!(server.request_count(), 3, "one search and two reads");
    assert_eq!(results[0].as_ref().unwrap().body, patient("here"));
    match &results[1] {
        Err(Failure::NotFound(detail)) => {
            assert_eq!(detail.status, Some(404));
            assert!(
                detail.message.contains("with ID missing is not known"),
                "{}",
                detail.message
            );
        }
        other => panic!("expected not-found, got {other:?}"),
    }
    let tombstone = results[2].as_ref().unwrap();
    assert!(tombstone.deleted && tombstone.body.is_empty());
}

#[tokio::test]
async fn server_errors_are_transient_with_the_outcome_text() {
    let server = TestServer::start(|_| outcome(503, "database is restarting")).await;
    let client = load_client("fhir", &server.base_url(), TIMEOUT).await;
    let events = vec![
        event("patient", "Patient", "p1", &[]),
        event("patient", "Patient", "p2", &[]),
    ];

    let results = client
        .fetch(&parent(&server.base_url()), &events)
        .await
        .unwrap();

    assert_eq!(
        server.request_count(),
        1,
        "a failed search is not retried per id"
    );
    for result in results {
        match result {
            Err(Failure::Transient(detail)) => {
                assert_eq!(detail.status, Some(503));
                assert_eq!(detail.message, "database is restarting");
            }
            other => panic!("expected transient, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_is_transient() {
    let server =
        TestServer::start(|_| TestResponse::new(200, bundle(&[])).delayed(Duration::from_secs(5)))
            .await;
    let client = load_client("fhir", &server.base_url(), Duration::from_millis(300)).await;
    let started = Instant::now();

    let results = client
        .fetch(
            &parent(&server.base_url()),
            &[event("patient", "Patient", "p1", &[])],
        )
        .await
        .unwrap();

    let elapsed = started.elapsed();
    println!("timed out after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    assert!(
        matches!(&results[0], Err(Failure::Transient(d)) if d.status.is_none()),
        "{results:?}"
    );
}

#[tokio::test]
async fn writes_are_conditional_puts_and_statuses_map_to_outcomes() {
    let server =
        TestServer::start(
            |request| match (request.method.as_str(), request.path.as_str()) {
                ("PUT", "/ws/fhir2/R4/Patient/new") => {
                    TestResponse::new(201, "").header("etag", "W/\"1\"")
                }
                ("PUT", "/ws/fhir2/R4/Patient/old") => TestResponse::new(
                    200,
                    r#"{"resourceType":"Patient","id":"old","meta":{"versionId":"8"}}"#,
                ),
                ("PUT", "/ws/fhir2/R4/Patient/stale") => {
                    outcome(412, "Version 2 is not the current version")
                }
                ("PUT", "/ws/fhir2/R4/Patient/bad") => outcome(422, "birthDate: invalid date"),
                ("PUT", "/ws/fhir2/R4/Patient/locked") => outcome(403, "not allowed"),
                ("DELETE", "/ws/fhir2/R4/Patient/gone") => TestResponse::new(204, ""),
                _ => outcome(500, "unexpected"),
            },
        )
        .await;
    let client = load_client("fhir", &server.base_url(), TIMEOUT).await;
    let body = patient("new");
    let mut stale = write("Patient", "stale", "{}");
    stale.expected_version = Some("2".into());
    stale.origin = Some("clinic-7".into());
    let writes = vec![
        write("Patient", "new", &body),
        write("Patient", "old", "{}"),
        stale,
        write("Patient", "bad", "{}"),
        write("Patient", "locked", "{}"),
        write("Patient", "gone", ""),
    ];

    let results = client
        .store(&parent(&server.base_url()), &writes)
        .await
        .unwrap();

    let created = results[0].as_ref().unwrap();
    assert_eq!(
        (created.outcome, created.version.as_deref()),
        (WriteOutcome::Created, Some("1"))
    );
    let updated = results[1].as_ref().unwrap();
    assert_eq!(
        (updated.outcome, updated.version.as_deref()),
        (WriteOutcome::Updated, Some("8"))
    );
    assert!(
        matches!(&results[2], Err(Failure::Conflict(d)) if d.message.contains("not the current version"))
    );
    assert!(matches!(&results[3], Err(Failure::Invalid(d)) if d.status == Some(422)));
    assert!(matches!(&results[4], Err(Failure::Unauthorized(_))));
    assert_eq!(results[5].as_ref().unwrap().outcome, WriteOutcome::Deleted);

    let requests = server.requests();
    assert_eq!(requests.len(), 6);
    let put_new = requests.iter().find(|r| r.path.ends_with("/new")).unwrap();
    assert_eq!(
        put_new.body_text(),
        body,
        "PUT body must be the resource unchanged"
    );
    assert_eq!(
        put_new.header("content-type"),
        Some("application/fhir+json")
    );
    assert_eq!(put_new.header("if-match"), None);
    let put_stale = requests
        .iter()
        .find(|r| r.path.ends_with("/stale"))
        .unwrap();
    assert_eq!(put_stale.header("if-match"), Some("W/\"2\""));
    assert_eq!(put_stale.header("x-sync-origin"), Some("clinic-7"));
}

#[tokio::test]
async fn a_feed_page_of_a_hundred_events_is_one_request() {
    let ids: Vec<String> = (0..100).map(|i| format!("p{i:03}")).collect();
    let bodies: Vec<String> = ids.iter().map(|id| patient(id)).collect();
    let served = bodies.clone();
    let server = TestServer::start(move |_| TestResponse::new(200, bundle(&served))).await;
    let client = load_client("fhir", &server.base_url(), TIMEOUT).await;
    let events: Vec<_> = ids
        .iter()
        .map(|id| event("patient", "Patient", id, &[]))
        .collect();

    let started = Instant::now();
    let results = client
        .fetch(&parent(&server.base_url()), &events)
        .await
        .unwrap();
    let elapsed = started.elapsed();

    println!(
        "fetched 100 patients ({} KiB) in {elapsed:?}",
        bodies.iter().map(String::len).sum::<usize>() / 1024
    );
    assert_eq!(server.request_count(), 1);
    assert_eq!(server.requests()[0].query_param("_count"), Some("100"));
    for (result, expected) in results.iter().zip(&bodies) {
        assert_eq!(&result.as_ref().unwrap().body, expected);
    }
}

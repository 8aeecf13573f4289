//! End-to-end tests of the OpenMRS REST client plugin: the real `.wasm` in
//! the real runtime against a loopback server answering like OpenMRS.

use std::time::Duration;

use sync_host_runtime::{Failure, ResourceClient, WriteOutcome};
use sync_host_tests::{TestResponse, TestServer, event, fixture, load_client, parent, write};

const TIMEOUT: Duration = Duration::from_secs(5);
const PATIENT: &str = "a65fc361-f6ac-40ba-8485-94749c061509";
const LOCATION: &str = "9a462730-d666-4518-b1d6-1c0620a9027c";

fn patient_json() -> String {
    fixture("openmrs/webservices.rest/create_patient_from_get.json")
}

fn location_json() -> String {
    fixture("openmrs/webservices.rest/create_location_from_get.json")
}

fn error_body(status: u16, message: &str) -> TestResponse {
    TestResponse::json(
        status,
        format!(r#"{{"error":{{"message":"{message}","code":"x"}}}}"#),
    )
}

#[tokio::test]
async fn json_links_fetch_full_documents_concurrently_byte_for_byte() {
    let server = TestServer::start(|request| match request.path.rsplit('/').next() {
        Some(PATIENT) => TestResponse::json(200, patient_json()),
        Some(LOCATION) => TestResponse::json(200, location_json()),
        _ => error_body(404, "Object with given uuid doesn't exist"),
    })
    .await;
    let client = load_client("rest", &server.base_url(), TIMEOUT).await;
    let patient_link = format!("/ws/rest/v1/patient/{PATIENT}?v=full");
    let location_link = format!("/ws/rest/v1/location/{LOCATION}");
    let events = vec![
        event(
            "patient",
            "patient",
            PATIENT,
            &[("rest", &patient_link), ("fhir", "/ws/fhir2/R4/Patient/x")],
        ),
        event(
            "location",
            "location",
            LOCATION,
            &[("rest", &location_link)],
        ),
        event("patient", "patient", "nobody", &[]),
    ];

    let results = client
        .fetch(&parent(&server.base_url()), &events)
        .await
        .unwrap();

    assert_eq!(results[0].as_ref().unwrap().body, patient_json());
    assert_eq!(results[1].as_ref().unwrap().body, location_json());
    assert_eq!(results[1].as_ref().unwrap().resource_type, "location");
    match &results[2] {
        Err(Failure::NotFound(detail)) => {
            assert_eq!(detail.message, "Object with given uuid doesn't exist")
        }
        other => panic!("expected not-found, got {other:?}"),
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "one GET per event");
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" && r.query_param("v") == Some("full"))
    );
    let mut paths: Vec<String> = requests.iter().map(|r| r.path.clone()).collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            format!("/ws/rest/v1/location/{LOCATION}"),
            format!("/ws/rest/v1/patient/{PATIENT}"),
            "/ws/rest/v1/patient/nobody".to_string(),
        ]
    );
}

#[tokio::test]
async fn bare_url_links_with_a_context_path_are_not_doubled() {
    let server = TestServer::start(|request| {
        if request.path == format!("/openmrs/ws/rest/v1/patient/{PATIENT}") {
            TestResponse::json(200, patient_json())
        } else {
            error_body(404, &format!("wrong path {}", request.path))
        }
    })
    .await;
    let base = server.url("/openmrs");
    let client = load_client("rest", &base, TIMEOUT).await;
    let bare = format!("/openmrs/ws/rest/v1/patient/{PATIENT}?v=full");
    let events = vec![event("patient", "patient", PATIENT, &[("rest", &bare)])];

    let results = client.fetch(&parent(&base), &events).await.unwrap();

    assert_eq!(results[0].as_ref().unwrap().body, patient_json());
    assert_eq!(
        server.requests()[0].path,
        format!("/openmrs/ws/rest/v1/patient/{PATIENT}")
    );
}

#[tokio::test]
async fn updates_fall_back_to_create_on_404_and_keep_the_uuid() {
    let server =
        TestServer::start(
            |request| match (request.method.as_str(), request.path.as_str()) {
                ("POST", p) if p == format!("/ws/rest/v1/location/{LOCATION}") => {
                    error_body(404, "Object not found")
                }
                ("POST", "/ws/rest/v1/location") => TestResponse::json(201, request.body.clone()),
                ("POST", p) if p == format!("/ws/rest/v1/patient/{PATIENT}") => {
                    TestResponse::json(200, request.body.clone()).header("etag", "W/\"4\"")
                }
                ("POST", "/ws/rest/v1/patient/invalid") => {
                    error_body(400, "Invalid Submission: name is required")
                }
                ("DELETE", "/ws/rest/v1/patient/old") => TestResponse::new(204, ""),
                _ => error_body(500, "unexpected request"),
            },
        )
        .await;
    let client = load_client("rest", &server.base_url(), TIMEOUT).await;
    let mut new_location = write("location", LOCATION, &location_json());
    new_location.origin = Some("clinic-3".into());
    let mut known_patient = write("patient", PATIENT, &patient_json());
    known_patient.expected_version = Some("3".into());
    let writes = vec![
        new_location,
        known_patient,
        write("patient", "invalid", "{}"),
        write("patient", "old", ""),
    ];

    let results = client
        .store(&parent(&server.base_url()), &writes)
        .await
        .unwrap();

    assert_eq!(results[0].as_ref().unwrap().outcome, WriteOutcome::Created);
    let updated = results[1].as_ref().unwrap();
    assert_eq!(
        (updated.outcome, updated.version.as_deref()),
        (WriteOutcome::Updated, Some("4"))
    );
    match &results[2] {
        Err(Failure::Invalid(detail)) => {
            assert_eq!(detail.status, Some(400));
            assert_eq!(detail.message, "Invalid Submission: name is required");
        }
        other => panic!("expected invalid, got {other:?}"),
    }
    assert_eq!(results[3].as_ref().unwrap().outcome, WriteOutcome::Deleted);

    let requests = server.requests();
    assert_eq!(requests.len(), 5, "four first attempts and one create");
    let create = requests
        .iter()
        .find(|r| r.path == "/ws/rest/v1/location")
        .unwrap();
    assert_eq!(
        create.body_text(),
        location_json(),
        "the create carries the document unchanged"
    );
    assert!(create.body_text().contains(LOCATION));
    assert_eq!(create.header("x-sync-origin"), Some("clinic-3"));
    let update = requests.iter().find(|r| r.path.ends_with(PATIENT)).unwrap();
    assert_eq!(update.header("if-match"), Some("W/\"3\""));
}

#[tokio::test]
async fn server_errors_are_transient() {
    let server = TestServer::start(|_| error_body(502, "upstream down")).await;
    let client = load_client("rest", &server.base_url(), TIMEOUT).await;

    let results = client
        .fetch(
            &parent(&server.base_url()),
            &[event("patient", "patient", PATIENT, &[])],
        )
        .await
        .unwrap();

    assert!(
        matches!(&results[0], Err(Failure::Transient(d)) if d.status == Some(502) && d.message == "upstream down"),
        "{results:?}"
    );
}

//! Bad input and bad credentials: each gets the right status and an error body saying what was
//! wrong, and the store is left unchanged.

mod common;

use common::{CHILD, READER, TestServer, WRITER, diagnostics, json, patient, start, start_with};
use reqwest::{Method, StatusCode};
use sync_host_store::config::ApiConfig;
use sync_host_store::store::ResourceKey;

/// One write attempt.
struct Attempt<'a> {
    method: Method,
    path: &'a str,
    content_type: &'a str,
    token: Option<&'a str>,
    body: String,
}

/// A FHIR write as the writer.
fn fhir_put(path: &str, body: String) -> Attempt<'_> {
    Attempt {
        method: Method::PUT,
        path,
        content_type: FHIR,
        token: Some(WRITER),
        body,
    }
}

/// Sends a write and checks status, OperationOutcome text, and that nothing was written.
async fn assert_rejected(
    server: &TestServer,
    attempt: Attempt<'_>,
    status: StatusCode,
    reason: &str,
) {
    let before = server.store.change_count(None).unwrap();
    let path = attempt.path;
    let response = server
        .request(attempt.method, path, attempt.token)
        .header("content-type", attempt.content_type)
        .body(attempt.body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), status, "{path}: {reason}");
    let outcome = json(response).await;
    let text = diagnostics(&outcome);
    assert!(text.contains(reason), "expected {reason:?} in {text:?}");
    assert_eq!(
        server.store.change_count(None).unwrap(),
        before,
        "store changed"
    );
}

const FHIR: &str = "application/fhir+json";

#[tokio::test]
async fn invalid_bodies_are_refused() {
    let server = start().await;
    let put = |id: &str| format!("/ws/fhir2/R4/Patient/{id}");
    let cases: Vec<(String, String, StatusCode, &str)> = vec![
        (
            put("p1"),
            "{\"resourceType\":\"Patient\",".into(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            put("p1"),
            "[1,2]".into(),
            StatusCode::BAD_REQUEST,
            "JSON object",
        ),
        (
            put("p1"),
            "{\"resourceType\":\"Observation\",\"id\":\"p1\"}".into(),
            StatusCode::BAD_REQUEST,
            "does not match",
        ),
        (
            put("p1"),
            patient("p2", "X"),
            StatusCode::BAD_REQUEST,
            "does not match the URL's id",
        ),
        (
            put("bad$id"),
            patient("bad$id", "X"),
            StatusCode::BAD_REQUEST,
            "invalid resource id",
        ),
        (
            put(&"x".repeat(65)),
            patient(&"x".repeat(65), "X"),
            StatusCode::BAD_REQUEST,
            "invalid resource id",
        ),
        (
            "/ws/fhir2/R4/Patientz/p1".into(),
            patient("p1", "X").replace("Patient", "Patientz"),
            StatusCode::BAD_REQUEST,
            "unknown resource type",
        ),
        (
            put("p1"),
            "{\"id\":\"p1\"}".into(),
            StatusCode::BAD_REQUEST,
            "no resourceType",
        ),
    ];
    for (path, body, status, reason) in cases {
        assert_rejected(&server, fhir_put(&path, body), status, reason).await;
    }
    let plain = Attempt {
        method: Method::POST,
        content_type: "text/plain",
        ..fhir_put("/ws/fhir2/R4/Patient", patient("p1", "X"))
    };
    assert_rejected(
        &server,
        plain,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "text/plain",
    )
    .await;
    let xml = Attempt {
        content_type: "application/xml",
        ..fhir_put("/ws/fhir2/R4/Patient/p1", patient("p1", "X"))
    };
    assert_rejected(
        &server,
        xml,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "not accepted",
    )
    .await;
    assert!(
        server
            .store
            .read(&ResourceKey::fhir("Patient", "p1"))
            .unwrap()
            .is_none()
    );
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let config = ApiConfig {
        max_body_bytes: 1024,
        ..ApiConfig::default()
    };
    let server = start_with(config).await;
    let big = format!(
        r#"{{"resourceType":"Patient","id":"p1","text":{{"div":"{}"}}}}"#,
        "x".repeat(2000)
    );
    let attempt = fhir_put("/ws/fhir2/R4/Patient/p1", big);
    assert_rejected(
        &server,
        attempt,
        StatusCode::PAYLOAD_TOO_LARGE,
        "1024 bytes",
    )
    .await;
    let small = server
        .send_fhir(Method::PUT, "/ws/fhir2/R4/Patient/p1", &patient("p1", "X"))
        .await;
    assert_eq!(small.status(), StatusCode::CREATED);
    server.stop().await;
}

#[tokio::test]
async fn credentials_are_required_and_scoped() {
    let server = start().await;
    let path = "/ws/fhir2/R4/Patient/p1";
    for token in [None, Some("wrong-token")] {
        let before = server.store.change_count(None).unwrap();
        let response = server
            .request(Method::PUT, path, token)
            .header("content-type", FHIR)
            .body(patient("p1", "X"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"sync-host\""
        );
        assert!(!diagnostics(&json(response).await).is_empty());
        assert_eq!(server.store.change_count(None).unwrap(), before);
    }
    let as_reader = Attempt {
        token: Some(READER),
        ..fhir_put(path, patient("p1", "X"))
    };
    assert_rejected(&server, as_reader, StatusCode::FORBIDDEN, "write").await;
    let read = server
        .request(Method::GET, path, Some(READER))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::NOT_FOUND, "reader may read");
    let feed = server
        .request(Method::GET, "/ws/atomfeed/all/recent", None)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), StatusCode::UNAUTHORIZED);
    let rest = server
        .request(Method::GET, "/ws/rest/v1/patient/abc", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), StatusCode::UNAUTHORIZED);
    assert!(json(rest).await["error"]["message"].is_string());
    let health = server
        .request(Method::GET, "/healthz", None)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn only_child_nodes_set_the_origin() {
    let server = start().await;
    let with_source = r#"{"resourceType":"Patient","id":"o1","meta":{"source":"clinic-7"}}"#;
    let send =
        |token: &'static str, id: &'static str, body: String, header: Option<&'static str>| {
            let mut request = server
                .request(
                    Method::PUT,
                    &format!("/ws/fhir2/R4/Patient/{id}"),
                    Some(token),
                )
                .header("content-type", FHIR)
                .body(body);
            if let Some(origin) = header {
                request = request.header("x-sync-origin", origin);
            }
            request.send()
        };
    send(WRITER, "o1", with_source.to_owned(), Some("clinic-9"))
        .await
        .unwrap();
    send(CHILD, "o2", with_source.replace("o1", "o2"), None)
        .await
        .unwrap();
    send(
        CHILD,
        "o3",
        with_source.replace("o1", "o3"),
        Some("clinic-9"),
    )
    .await
    .unwrap();
    let origin = |id: &str| {
        server
            .store
            .read(&ResourceKey::fhir("Patient", id))
            .unwrap()
            .unwrap()
            .origin
    };
    assert_eq!(origin("o1"), common::NODE);
    assert_eq!(origin("o2"), "clinic-7");
    assert_eq!(origin("o3"), "clinic-9");
    server.stop().await;
}

#[tokio::test]
async fn slow_requests_are_cut_off_with_503() {
    // Deliberately inconsistent (validate() would refuse it) so a long-poll outlives the timeout.
    let config = ApiConfig {
        request_timeout: std::time::Duration::from_secs(1),
        long_poll_max: std::time::Duration::from_secs(10),
        ..ApiConfig::default()
    };
    let server = start_with(config).await;
    let first = server.get("/ws/atomfeed/all/recent").await;
    let tag = first.headers()["etag"].to_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let response = server
        .request(Method::GET, "/ws/atomfeed/all/recent?wait=10", Some(WRITER))
        .header("if-none-match", tag)
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(diagnostics(&json(response).await).contains("longer than"));
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
    server.stop().await;
}

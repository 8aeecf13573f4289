//! Hostile input to a real store API on loopback: deeply nested JSON (far under the size cap)
//! in every kind of write, and unauthenticated requests with long paths and made-up methods.
//! Each is refused with a clear error, nothing is written, and the server goes on serving.

mod common;

use common::{TestServer, WRITER, diagnostics, json, patient, start};
use reqwest::{Method, StatusCode};
use sync_host_store::json::MAX_DEPTH;
use sync_host_store::store::ResourceKey;

/// A Patient whose `extension` nests `levels` arrays deep; the whole body is a few KB.
fn deep_patient(id: &str, levels: usize) -> String {
    format!(
        r#"{{"resourceType":"Patient","id":"{id}","extension":{}1{}}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

/// A Patient nesting `levels` objects deep.
fn deep_object_patient(id: &str, levels: usize) -> String {
    format!(
        r#"{{"resourceType":"Patient","id":"{id}","contained":{}null{}}}"#,
        r#"{"a":"#.repeat(levels),
        "}".repeat(levels)
    )
}

fn bundle(kind: &str, resource: &str) -> String {
    format!(
        r#"{{"resourceType":"Bundle","type":"{kind}","entry":[{{"resource":{resource},
            "request":{{"method":"PUT","url":"Patient/deep"}}}}]}}"#
    )
}

/// Sends `body` and checks: 400, an error naming the depth, and no change in the store.
async fn assert_too_deep(
    server: &TestServer,
    method: Method,
    path: &str,
    kind: &str,
    body: String,
) {
    let before = server.store.change_count(None).unwrap();
    let response = server
        .request(method, path, Some(WRITER))
        .header("content-type", kind)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    let reply = json(response).await;
    let text = if path.starts_with("/ws/rest/") {
        reply["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    } else {
        diagnostics(&reply)
    };
    assert!(
        text.contains(&format!("nested deeper than {MAX_DEPTH} levels")),
        "{path}: {text}"
    );
    assert_eq!(server.store.change_count(None).unwrap(), before, "{path}");
}

/// The server still serves: health, a read, and an ordinary write.
async fn assert_serving(server: &TestServer, id: &str) {
    let health = server.request(Method::GET, "/healthz", None).send().await;
    assert_eq!(health.unwrap().status(), StatusCode::OK);
    let path = format!("/ws/fhir2/R4/Patient/{id}");
    let put = server
        .send_fhir(Method::PUT, &path, &patient(id, "Alive"))
        .await;
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(server.get(&path).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_bodies_are_refused_everywhere() {
    let server = start().await;
    const FHIR: &str = "application/fhir+json";
    const REST: &str = "application/json";
    // Far deeper than any stack holds, and still only some 100 KB.
    let levels = 50_000;
    let cases = [
        (
            Method::PUT,
            "/ws/fhir2/R4/Patient/deep",
            FHIR,
            deep_patient("deep", levels),
        ),
        (
            Method::PUT,
            "/ws/fhir2/R4/Patient/deep",
            FHIR,
            deep_object_patient("deep", levels),
        ),
        (
            Method::POST,
            "/ws/fhir2/R4/Patient",
            FHIR,
            deep_patient("deep", levels),
        ),
        (
            Method::POST,
            "/ws/fhir2/R4",
            FHIR,
            bundle("batch", &deep_patient("deep", levels)),
        ),
        (
            Method::POST,
            "/ws/fhir2/R4",
            FHIR,
            bundle("transaction", &deep_patient("deep", levels)),
        ),
        (
            Method::POST,
            "/ws/rest/v1/location",
            REST,
            format!(
                r#"{{"uuid":"l1","tags":{}{}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            ),
        ),
        (
            Method::POST,
            "/ws/rest/v1/location/l1",
            REST,
            format!(
                r#"{{"uuid":"l1","x":{}1{}}}"#,
                "{\"y\":".repeat(levels),
                "}".repeat(levels)
            ),
        ),
        // One level over the limit is refused the same way.
        (
            Method::PUT,
            "/ws/fhir2/R4/Patient/deep",
            FHIR,
            deep_patient("deep", MAX_DEPTH),
        ),
    ];
    for (method, path, kind, body) in cases {
        assert!(body.len() < 1024 * 1024);
        assert_too_deep(&server, method, path, kind, body).await;
    }
    assert!(
        server
            .store
            .read(&ResourceKey::fhir("Patient", "deep"))
            .unwrap()
            .is_none()
    );
    assert_serving(&server, "after-deep").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_up_to_the_limit_and_brackets_in_strings_are_stored_whole() {
    let server = start().await;
    // The document itself is one level, so its extension may nest MAX_DEPTH - 1 deep.
    let at_limit = deep_patient("edge", MAX_DEPTH - 1);
    let put = server
        .send_fhir(Method::PUT, "/ws/fhir2/R4/Patient/edge", &at_limit)
        .await;
    assert_eq!(put.status(), StatusCode::CREATED);
    let brackets = format!(
        r#"{{"resourceType":"Patient","id":"str","text":{{"div":"{}"}}}}"#,
        "[{".repeat(20_000)
    );
    let put = server
        .send_fhir(Method::PUT, "/ws/fhir2/R4/Patient/str", &brackets)
        .await;
    assert_eq!(put.status(), StatusCode::CREATED);
    let read = server
        .get("/ws/fhir2/R4/Patient/str")
        .await
        .text()
        .await
        .unwrap();
    assert!(read.contains(&"[{".repeat(20_000)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_junk_is_refused_and_the_server_keeps_serving() {
    let server = start().await;
    let before = server.store.change_count(None).unwrap();
    let long_path = format!("/ws/fhir2/R4/Patient/{}", "x".repeat(8 * 1024));
    for n in 0..50 {
        let method = Method::from_bytes(format!("JUNK{n}").as_bytes()).unwrap();
        let response = server
            .request(method, &long_path, None)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let wrong = server
            .request(Method::GET, &long_path, Some("not-a-token"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    // An authenticated request to an unknown long path: the message quotes a bounded excerpt.
    let missing = server
        .get(&format!("/nowhere/{}", "y".repeat(8 * 1024)))
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let text = diagnostics(&json(missing).await);
    assert!(text.len() < 400, "{} bytes", text.len());
    assert_eq!(server.store.change_count(None).unwrap(), before);
    assert_serving(&server, "after-junk").await;
    server.stop().await;
}

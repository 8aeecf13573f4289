//! FHIR interactions over a real loopback server: status codes, ETag/If-Match, deletes, history,
//! conditional create and the CapabilityStatement.

mod common;

use common::{WRITER, diagnostics, json, patient, start};
use reqwest::{Method, StatusCode};

fn etag(response: &reqwest::Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn put_creates_then_updates_and_read_returns_stored_bytes() {
    let server = start().await;
    let path = "/ws/fhir2/R4/Patient/p1";
    let created = server
        .send_fhir(Method::PUT, path, &patient("p1", "Ant"))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(etag(&created), "W/\"1\"");
    assert_eq!(
        created.headers()["location"],
        "/ws/fhir2/R4/Patient/p1/_history/1"
    );
    assert!(
        created.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+json")
    );
    let created_body = created.text().await.unwrap();

    let read = server.get(path).await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(etag(&read), "W/\"1\"");
    assert!(read.headers().contains_key("last-modified"));
    let read_body = read.text().await.unwrap();
    assert_eq!(read_body, created_body);
    let stored = server
        .store
        .read(&sync_host_store::store::ResourceKey::fhir("Patient", "p1"))
        .unwrap()
        .unwrap();
    assert_eq!(stored.body.as_deref(), Some(read_body.as_str()));

    let updated = server
        .send_fhir(Method::PUT, path, &patient("p1", "Bee"))
        .await;
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(etag(&updated), "W/\"2\"");
    let body = json(updated).await;
    assert_eq!(body["meta"]["versionId"], "2");
    assert_eq!(body["name"][0]["family"], "Bee");

    let vread = server.get("/ws/fhir2/R4/Patient/p1/_history/1").await;
    assert_eq!(vread.status(), StatusCode::OK);
    assert_eq!(vread.text().await.unwrap(), created_body);
    let missing_version = server.get("/ws/fhir2/R4/Patient/p1/_history/9").await;
    assert_eq!(missing_version.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn post_assigns_a_server_id() {
    let server = start().await;
    let body = r#"{"resourceType":"Observation","id":"client-chosen","status":"final","valueQuantity":{"value":72.50}}"#;
    let created = server
        .send_fhir(Method::POST, "/ws/fhir2/R4/Observation", body)
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let text = created.text().await.unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = value["id"].as_str().unwrap();
    assert_ne!(id, "client-chosen");
    assert_eq!(
        location,
        format!("/ws/fhir2/R4/Observation/{id}/_history/1")
    );
    assert!(text.contains("72.50"), "decimal kept as written: {text}");
    let read = server.get(&format!("/ws/fhir2/R4/Observation/{id}")).await;
    assert_eq!(read.text().await.unwrap(), text);
    server.stop().await;
}

#[tokio::test]
async fn if_none_exist_returns_the_existing_match() {
    let server = start().await;
    server
        .send_fhir(
            Method::PUT,
            "/ws/fhir2/R4/Patient/p1",
            &patient("p1", "Ant"),
        )
        .await;
    let conditional = server
        .request(Method::POST, "/ws/fhir2/R4/Patient", Some(WRITER))
        .header("content-type", "application/fhir+json")
        .header("if-none-exist", "_id=p1")
        .body(patient("other", "Cat"))
        .send()
        .await
        .unwrap();
    assert_eq!(conditional.status(), StatusCode::OK);
    assert_eq!(json(conditional).await["id"], "p1");
    let fresh = server
        .request(Method::POST, "/ws/fhir2/R4/Patient", Some(WRITER))
        .header("content-type", "application/fhir+json")
        .header("if-none-exist", "_id=nobody")
        .body(patient("x", "Cat"))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::CREATED);
    server.stop().await;
}

#[tokio::test]
async fn if_match_guards_updates_and_deletes() {
    let server = start().await;
    let path = "/ws/fhir2/R4/Patient/p1";
    server
        .send_fhir(Method::PUT, path, &patient("p1", "Ant"))
        .await;
    let stale = server
        .request(Method::PUT, path, Some(WRITER))
        .header("content-type", "application/fhir+json")
        .header("if-match", "W/\"7\"")
        .body(patient("p1", "Bee"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let outcome = json(stale).await;
    assert!(diagnostics(&outcome).contains("p1"), "{outcome}");

    let current = server
        .request(Method::PUT, path, Some(WRITER))
        .header("content-type", "application/fhir+json")
        .header("if-match", "W/\"1\"")
        .body(patient("p1", "Bee"))
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), StatusCode::OK);

    let stale_delete = server
        .request(Method::DELETE, path, Some(WRITER))
        .header("if-match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale_delete.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(server.get(path).await.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn delete_leads_to_gone_and_shows_in_history() {
    let server = start().await;
    let path = "/ws/fhir2/R4/Patient/p1";
    server
        .send_fhir(Method::PUT, path, &patient("p1", "Ant"))
        .await;
    server
        .send_fhir(Method::PUT, path, &patient("p1", "Bee"))
        .await;
    let deleted = server
        .request(Method::DELETE, path, Some(WRITER))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(etag(&deleted), "W/\"3\"");

    let gone = server.get(path).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    assert!(diagnostics(&json(gone).await).contains("deleted"));
    let never = server
        .request(Method::DELETE, "/ws/fhir2/R4/Patient/never", Some(WRITER))
        .send()
        .await
        .unwrap();
    assert_eq!(never.status(), StatusCode::NOT_FOUND);

    let history = json(server.get("/ws/fhir2/R4/Patient/p1/_history").await).await;
    assert_eq!(history["type"], "history");
    let entries = history["entry"].as_array().unwrap();
    let methods: Vec<&str> = entries
        .iter()
        .map(|e| e["request"]["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["DELETE", "PUT", "POST"], "newest first");
    assert!(entries[0].get("resource").is_none());
    assert_eq!(entries[1]["resource"]["name"][0]["family"], "Bee");
    assert_eq!(entries[2]["response"]["etag"], "W/\"1\"");

    let limited = json(
        server
            .get("/ws/fhir2/R4/Patient/p1/_history?_count=1")
            .await,
    )
    .await;
    assert_eq!(limited["entry"].as_array().unwrap().len(), 1);

    let recreated = server
        .send_fhir(Method::PUT, path, &patient("p1", "Cat"))
        .await;
    assert_eq!(recreated.status(), StatusCode::CREATED);
    assert_eq!(etag(&recreated), "W/\"4\"");
    server.stop().await;
}

#[tokio::test]
async fn type_history_covers_all_resources_and_since() {
    let server = start().await;
    server
        .send_fhir(Method::PUT, "/ws/fhir2/R4/Patient/a", &patient("a", "A"))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let middle = time::OffsetDateTime::now_utc();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    server
        .send_fhir(Method::PUT, "/ws/fhir2/R4/Patient/b", &patient("b", "B"))
        .await;
    server
        .request(Method::DELETE, "/ws/fhir2/R4/Patient/a", Some(WRITER))
        .send()
        .await
        .unwrap();

    let all = json(server.get("/ws/fhir2/R4/Patient/_history").await).await;
    let urls: Vec<&str> = all["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request"]["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, ["Patient/a", "Patient", "Patient"], "newest first");

    let since = middle
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let path = format!(
        "/ws/fhir2/R4/Patient/_history?_since={}",
        since.replace('+', "%2B")
    );
    let recent = json(server.get(&path).await).await;
    assert_eq!(recent["entry"].as_array().unwrap().len(), 2, "{recent}");
    server.stop().await;
}

#[tokio::test]
async fn metadata_describes_the_server() {
    let server = start().await;
    let response = server.get("/ws/fhir2/R4/metadata").await;
    assert_eq!(response.status(), StatusCode::OK);
    let statement = json(response).await;
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    assert_eq!(statement["fhirVersion"], "4.0.1");
    let types: Vec<&str> = statement["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"Patient") && types.contains(&"Observation"));
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_with_an_outcome() {
    let server = start().await;
    let unknown = server.get("/nowhere").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(diagnostics(&json(unknown).await).contains("/nowhere"));
    let patch = server
        .request(Method::PATCH, "/ws/fhir2/R4/Patient/p1", Some(WRITER))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(diagnostics(&json(patch).await).contains("PATCH"));
    let health = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    server.stop().await;
}

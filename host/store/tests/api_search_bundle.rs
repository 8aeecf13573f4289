//! FHIR search with paging through `next` links, `_lastUpdated`, and batch/transaction Bundles
//! (a transaction with one failing entry changes nothing).

mod common;

use common::{WRITER, diagnostics, json, patient, start};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sync_host_store::store::ResourceKey;

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|link| link["relation"] == "next")
        .map(|link| link["url"].as_str().unwrap().to_owned())
}

fn entry_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["resource"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn id_search_pages_through_next_links() {
    let server = start().await;
    for index in 0..7 {
        let id = format!("p{index}");
        server
            .send_fhir(
                Method::PUT,
                &format!("/ws/fhir2/R4/Patient/{id}"),
                &patient(&id, "X"),
            )
            .await;
    }
    server
        .request(Method::DELETE, "/ws/fhir2/R4/Patient/p3", Some(WRITER))
        .send()
        .await
        .unwrap();

    let mut url = server.url("/ws/fhir2/R4/Patient?_id=p6,p0,p1,p2,p3,p4,nobody&_count=2");
    let mut pages = Vec::new();
    loop {
        let response = server
            .http
            .get(&url)
            .bearer_auth(WRITER)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bundle = json(response).await;
        assert_eq!(bundle["type"], "searchset");
        pages.push(entry_ids(&bundle));
        match next_link(&bundle) {
            Some(next) => url = next,
            None => break,
        }
    }
    assert_eq!(pages, [vec!["p0", "p1"], vec!["p2", "p4"], vec!["p6"]]);
    server.stop().await;
}

#[tokio::test]
async fn type_search_pages_and_filters_by_last_updated() {
    let server = start().await;
    for index in 0..5 {
        let id = format!("a{index}");
        server
            .send_fhir(
                Method::PUT,
                &format!("/ws/fhir2/R4/Patient/{id}"),
                &patient(&id, "X"),
            )
            .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cut = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    server
        .send_fhir(Method::PUT, "/ws/fhir2/R4/Patient/b0", &patient("b0", "Y"))
        .await;
    server
        .send_fhir(
            Method::PUT,
            "/ws/fhir2/R4/Patient/a1",
            &patient("a1", "changed"),
        )
        .await;

    let mut url = server.url("/ws/fhir2/R4/Patient?_count=4");
    let mut all = Vec::new();
    loop {
        let bundle = json(
            server
                .http
                .get(&url)
                .bearer_auth(WRITER)
                .send()
                .await
                .unwrap(),
        )
        .await;
        all.extend(entry_ids(&bundle));
        match next_link(&bundle) {
            Some(next) => url = next,
            None => break,
        }
    }
    assert_eq!(all, ["a0", "a1", "a2", "a3", "a4", "b0"]);

    let encoded = cut.replace(':', "%3A").replace('+', "%2B");
    let newer = json(
        server
            .get(&format!("/ws/fhir2/R4/Patient?_lastUpdated=gt{encoded}"))
            .await,
    )
    .await;
    assert_eq!(entry_ids(&newer), ["a1", "b0"]);
    let older = json(
        server
            .get(&format!("/ws/fhir2/R4/Patient?_lastUpdated=le{encoded}"))
            .await,
    )
    .await;
    assert_eq!(entry_ids(&older), ["a0", "a2", "a3", "a4"]);

    let unknown = server.get("/ws/fhir2/R4/Patient?name=x").await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert!(diagnostics(&json(unknown).await).contains("name"));
    server.stop().await;
}

fn bundle(kind: &str, entries: &[Value]) -> String {
    serde_json::json!({ "resourceType": "Bundle", "type": kind, "entry": entries }).to_string()
}

fn put_entry(id: &str, family: &str, if_match: Option<&str>) -> Value {
    let mut request = serde_json::json!({ "method": "PUT", "url": format!("Patient/{id}") });
    if let Some(tag) = if_match {
        request["ifMatch"] = Value::from(tag);
    }
    serde_json::json!({
        "resource": serde_json::from_str::<Value>(&patient(id, family)).unwrap(),
        "request": request,
    })
}

#[tokio::test]
async fn transaction_applies_all_entries() {
    let server = start().await;
    let body = bundle(
        "transaction",
        &[
            put_entry("t1", "One", None),
            put_entry("t2", "Two", None),
            serde_json::json!({ "resource": { "resourceType": "Observation", "status": "final" },
                             "request": { "method": "POST", "url": "Observation" } }),
        ],
    );
    let response = server.send_fhir(Method::POST, "/ws/fhir2/R4", &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let result = json(response).await;
    assert_eq!(result["type"], "transaction-response");
    let statuses: Vec<&str> = result["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["201 Created", "201 Created", "201 Created"]);
    assert_eq!(
        server.get("/ws/fhir2/R4/Patient/t2").await.status(),
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test]
async fn transaction_rolls_back_when_one_entry_fails() {
    let server = start().await;
    server
        .send_fhir(
            Method::PUT,
            "/ws/fhir2/R4/Patient/keep",
            &patient("keep", "Before"),
        )
        .await;
    let changes_before = server.store.change_count(None).unwrap();

    let stale = bundle(
        "transaction",
        &[
            put_entry("new1", "New", None),
            put_entry("keep", "After", Some("W/\"5\"")),
        ],
    );
    let response = server.send_fhir(Method::POST, "/ws/fhir2/R4", &stale).await;
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
    assert!(diagnostics(&json(response).await).contains("keep"));

    let invalid = bundle(
        "transaction",
        &[
            put_entry("new2", "New", None),
            serde_json::json!({ "resource": { "resourceType": "Patient", "id": "zz" },
                             "request": { "method": "PUT", "url": "Patient/other" } }),
        ],
    );
    let response = server
        .send_fhir(Method::POST, "/ws/fhir2/R4", &invalid)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(diagnostics(&json(response).await).contains("entry 1"));

    assert!(
        server
            .store
            .read(&ResourceKey::fhir("Patient", "new1"))
            .unwrap()
            .is_none()
    );
    assert!(
        server
            .store
            .read(&ResourceKey::fhir("Patient", "new2"))
            .unwrap()
            .is_none()
    );
    let kept = json(server.get("/ws/fhir2/R4/Patient/keep").await).await;
    assert_eq!(kept["name"][0]["family"], "Before");
    assert_eq!(server.store.change_count(None).unwrap(), changes_before);
    server.stop().await;
}

#[tokio::test]
async fn batch_applies_entries_independently() {
    let server = start().await;
    server
        .send_fhir(
            Method::PUT,
            "/ws/fhir2/R4/Patient/b1",
            &patient("b1", "One"),
        )
        .await;
    let body = bundle(
        "batch",
        &[
            put_entry("b2", "Two", None),
            put_entry("b1", "Stale", Some("W/\"9\"")),
            serde_json::json!({ "request": { "method": "GET", "url": "Patient/b1" } }),
            serde_json::json!({ "request": { "method": "DELETE", "url": "Patient/b2" } }),
            serde_json::json!({ "resource": { "resourceType": "Nonsense" },
                             "request": { "method": "POST", "url": "Nonsense" } }),
        ],
    );
    let response = server.send_fhir(Method::POST, "/ws/fhir2/R4", &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let result = json(response).await;
    assert_eq!(result["type"], "batch-response");
    let entries = result["entry"].as_array().unwrap();
    let statuses: Vec<&str> = entries
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "201 Created",
            "412 Precondition Failed",
            "200 OK",
            "200 OK",
            "400 Bad Request"
        ]
    );
    assert_eq!(entries[2]["resource"]["name"][0]["family"], "One");
    assert_eq!(
        entries[4]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(
        server.get("/ws/fhir2/R4/Patient/b2").await.status(),
        StatusCode::GONE
    );
    server.stop().await;
}

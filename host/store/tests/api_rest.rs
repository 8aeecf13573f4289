//! OpenMRS REST documents over a real loopback server: create with and without a uuid, update,
//! delete, error bodies, and voids showing up in the feed.

mod common;

use common::{WRITER, json, start};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn documents_are_created_updated_and_deleted() {
    let server = start().await;
    let created = server
        .send_rest(
            "/ws/rest/v1/encountertype",
            r#"{"name":"Visit","description":"x"}"#,
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let body = created.text().await.unwrap();
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    let uuid = value["uuid"].as_str().unwrap().to_owned();
    assert_eq!(
        body,
        format!(r#"{{"uuid":"{uuid}","name":"Visit","description":"x"}}"#)
    );

    let path = format!("/ws/rest/v1/encountertype/{uuid}");
    let updated = server.send_rest(&path, r#"{"name":"Visit 2"}"#).await;
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(updated.headers()["etag"], "W/\"2\"");
    let read = server.get(&format!("{path}?v=full")).await;
    assert_eq!(
        read.text().await.unwrap(),
        format!(r#"{{"uuid":"{uuid}","name":"Visit 2"}}"#)
    );

    let mismatch = server
        .send_rest(&path, r#"{"uuid":"other","name":"x"}"#)
        .await;
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
    assert!(
        json(mismatch).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("other")
    );

    let deleted = server
        .request(Method::DELETE, &path, Some(WRITER))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(server.get(&path).await.status(), StatusCode::GONE);
    let missing = server.get("/ws/rest/v1/encountertype/unknown-uuid").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(
        json(missing).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown-uuid")
    );
    server.stop().await;
}

#[tokio::test]
async fn rest_errors_use_the_openmrs_shape() {
    let server = start().await;
    let malformed = server.send_rest("/ws/rest/v1/patient", "{\"uuid\":").await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert!(
        json(malformed).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON")
    );
    let wrong_type = server
        .request(Method::POST, "/ws/rest/v1/patient", Some(WRITER))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(json(wrong_type).await["error"]["message"].is_string());
    assert_eq!(server.store.change_count(None).unwrap(), 0);
    server.stop().await;
}

#[tokio::test]
async fn voiding_a_document_is_published_as_voided() {
    let server = start().await;
    let path = "/ws/rest/v1/patient/a65fc361-f6ac-40ba-8485-94749c061509";
    server
        .send_rest(path, r#"{"display":"A","voided":false}"#)
        .await;
    server
        .send_rest(path, r#"{"display":"A","voided":true}"#)
        .await;
    server
        .send_rest(path, r#"{"display":"A","voided":false}"#)
        .await;
    let feed = server.get("/ws/atomfeed/patient/recent").await;
    assert_eq!(feed.status(), StatusCode::OK);
    let xml = feed.text().await.unwrap();
    let parsed = feed_rs::parser::parse(xml.as_bytes()).unwrap();
    let actions: Vec<Vec<String>> = parsed
        .entries
        .iter()
        .map(|entry| entry.categories.iter().map(|c| c.term.clone()).collect())
        .collect();
    assert_eq!(actions.len(), 3);
    for (terms, action) in actions.iter().zip(["CREATED", "VOIDED", "UNVOIDED"]) {
        assert!(
            terms.contains(&action.to_owned()),
            "{terms:?} lacks {action}"
        );
        assert!(terms.contains(&"patient".to_owned()));
    }
    assert!(xml.contains("/ws/rest/v1/patient/a65fc361-f6ac-40ba-8485-94749c061509?v=full"));
    server.stop().await;
}

//! Lossless round trip of every FHIR and REST fixture through the HTTP API: what is read back
//! is byte-for-byte what was sent, apart from the server meta of FHIR resources.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{fixtures_dir, start};
use reqwest::{Method, StatusCode};
use sync_host_store::json::{string_field, with_server_meta};

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("fixtures at {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn every_fhir_fixture_round_trips() {
    let server = start().await;
    let files = json_files(&fixtures_dir().join("fhir2"));
    assert!(files.len() >= 4, "fixtures missing: {files:?}");
    for file in files {
        let original = fs::read_to_string(&file).unwrap();
        let resource_type = string_field(&original, "resourceType").unwrap().unwrap();
        let (response, sent) = match string_field(&original, "id").unwrap() {
            Some(id) => {
                let path = format!("/ws/fhir2/R4/{resource_type}/{id}");
                (
                    server.send_fhir(Method::PUT, &path, &original).await,
                    original.clone(),
                )
            }
            None => {
                let path = format!("/ws/fhir2/R4/{resource_type}");
                let response = server.send_fhir(Method::POST, &path, &original).await;
                (response, String::new())
            }
        };
        assert_eq!(response.status(), StatusCode::CREATED, "{}", file.display());
        let written = response.text().await.unwrap();
        let id = string_field(&written, "id").unwrap().unwrap();
        let sent = if sent.is_empty() {
            // A POSTed resource gets its server id right after resourceType.
            let marker = format!("\"resourceType\": \"{resource_type}\"");
            original.replacen(
                &marker,
                &format!("{marker},\"id\":{}", serde_json::Value::from(id.as_str())),
                1,
            )
        } else {
            sent
        };
        let read = server
            .get(&format!("/ws/fhir2/R4/{resource_type}/{id}"))
            .await;
        assert_eq!(read.status(), StatusCode::OK);
        let returned = read.text().await.unwrap();
        assert_eq!(returned, written, "{}", file.display());
        let meta: serde_json::Value = serde_json::from_str(&returned).unwrap();
        let version = meta["meta"]["versionId"].as_str().unwrap();
        let updated = meta["meta"]["lastUpdated"].as_str().unwrap();
        let expected = with_server_meta(&sent, version, updated).unwrap();
        assert_eq!(
            returned,
            expected,
            "{} changed beyond server meta",
            file.display()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn every_rest_fixture_round_trips() {
    let server = start().await;
    let mut files = json_files(&fixtures_dir().join("webservices.rest"));
    files.extend(json_files(&fixtures_dir().join("commcare-hq")));
    assert!(files.len() >= 3, "fixtures missing: {files:?}");
    for file in files {
        let original = fs::read_to_string(&file).unwrap();
        let resource = if file.to_string_lossy().contains("location") {
            "location"
        } else {
            "patient"
        };
        let uuid = string_field(&original, "uuid")
            .unwrap()
            .expect("REST fixtures carry a uuid");
        let created = server
            .send_rest(&format!("/ws/rest/v1/{resource}"), &original)
            .await;
        assert_eq!(created.status(), StatusCode::CREATED, "{}", file.display());
        assert_eq!(created.text().await.unwrap(), original);
        let read = server
            .get(&format!("/ws/rest/v1/{resource}/{uuid}?v=full"))
            .await;
        assert_eq!(read.status(), StatusCode::OK);
        assert_eq!(read.headers()["content-type"], "application/json");
        assert_eq!(
            read.text().await.unwrap(),
            original,
            "{} changed",
            file.display()
        );
    }
    server.stop().await;
}

//! The router dispatched in process, without a socket (how a node serves its own plugins):
//! same answers, and links stay relative when the request carries no `Host`.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use sync_host_store::api::{ApiState, router};
use sync_host_store::auth::{Client, Clients, Scope, Secret};
use sync_host_store::config::ApiConfig;
use sync_host_store::store::{Store, StoreConfig};
use tower::ServiceExt;

const TOKEN: &str = "in-process-token";

fn state(dir: &tempfile::TempDir) -> ApiState {
    let store = Store::open(
        &dir.path().join("store"),
        StoreConfig {
            node_id: "local".into(),
            history_retention: 0,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let clients = Clients::new(vec![Client {
        name: "plugins".into(),
        token: Secret::new(TOKEN),
        scopes: [Scope::Read, Scope::Write].into(),
        is_child_node: false,
        data_scope: None,
    }])
    .unwrap();
    ApiState {
        store,
        config: ApiConfig::default(),
        clients: Arc::new(clients),
        long_polls: Default::default(),
        pages: Default::default(),
        refusals: None,
    }
}

async fn body_text(response: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn requests_are_served_without_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(state(&dir));
    let body = r#"{"resourceType":"Patient","id":"local-1","active":true}"#;
    let put = Request::put("/ws/fhir2/R4/Patient/local-1")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/fhir+json")
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(put).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let search = Request::get("/ws/fhir2/R4/Patient?_id=local-1")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let bundle: serde_json::Value =
        serde_json::from_str(&body_text(app.clone().oneshot(search).await.unwrap()).await).unwrap();
    assert_eq!(
        bundle["entry"][0]["fullUrl"],
        "/ws/fhir2/R4/Patient/local-1"
    );

    let feed = Request::get("/ws/atomfeed/patient/recent")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let xml = body_text(app.clone().oneshot(feed).await.unwrap()).await;
    assert!(xml.contains("href=\"/ws/atomfeed/patient/1\""), "{xml}");

    let anonymous = Request::get("/ws/fhir2/R4/Patient/local-1")
        .body(Body::empty())
        .unwrap();
    let refused = app.oneshot(anonymous).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

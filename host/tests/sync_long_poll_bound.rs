//! A child long-polling a parent that is at its bound of long-polls: the parent answers at
//! once, and the child waits out its interval instead of asking again straight away.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sync_host::sync::reader::FeedReader;
use sync_host::sync::transport::HttpTransport;
use sync_host_runtime::Credentials;
use sync_host_store::api::{ApiState, router, serve};
use sync_host_store::auth::{Client, Clients, Scope, Secret};
use sync_host_store::config::ApiConfig;
use sync_host_store::store::{Precondition, ResourceKey, Store, StoreConfig, WriteRequest};

const HOLDER: &str = "holder-token-0123456789abcdef0123456789";
const CHILD: &str = "child-token-0123456789abcdef01234567890";

fn client(name: &str, token: &str) -> Client {
    Client {
        name: name.into(),
        token: Secret::new(token),
        scopes: [Scope::Read].into(),
        is_child_node: true,
        data_scope: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_waits_out_its_interval_when_the_parent_answers_a_long_poll_at_once()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(
        &dir.path().join("store"),
        StoreConfig {
            node_id: "parent".into(),
            history_retention: 0,
            ..StoreConfig::default()
        },
    )?;
    let body = r#"{"resourceType":"Patient","id":"p1"}"#;
    store
        .write(WriteRequest {
            key: ResourceKey::fhir("Patient", "p1"),
            body: Some(body.into()),
            precondition: Precondition::Any,
            origin: None,
        })
        .await?;
    let config = ApiConfig {
        long_poll_max_waiters: 1,
        ..ApiConfig::default()
    };
    let state = ApiState {
        store,
        config,
        clients: Arc::new(Clients::new(vec![
            client("holder", HOLDER),
            client("child", CHILD),
        ])?),
        long_polls: Default::default(),
        pages: Default::default(),
        refusals: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(listener, router(state), std::future::pending()));

    let recent = format!("{base}/ws/atomfeed/all/recent");
    let http = reqwest::Client::new();
    let tag = http
        .get(&recent)
        .bearer_auth(HOLDER)
        .send()
        .await?
        .headers()["etag"]
        .to_str()?
        .to_owned();
    // Another client takes the node's only place.
    let held = tokio::spawn({
        let (http, recent, tag) = (http.clone(), recent.clone(), tag.clone());
        async move {
            http.get(format!("{recent}?wait=20"))
                .bearer_auth(HOLDER)
                .header("if-none-match", tag)
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let transport = HttpTransport::new(
        Some(Credentials::Bearer(CHILD.into())),
        Duration::from_secs(60),
        64 * 1024 * 1024,
    )?;
    let feed_base = format!("{base}/ws/atomfeed");
    let reader = FeedReader::new(
        "all",
        &feed_base,
        Arc::new(transport),
        Some(Duration::from_secs(20)),
    );
    // The first wait learns the page's tag; the second is answered at once by the parent.
    assert!(reader.wait_for_change(Duration::from_secs(2)).await);
    let started = Instant::now();
    let changed = reader.wait_for_change(Duration::from_secs(2)).await;
    let waited = started.elapsed();
    assert!(!changed);
    assert!(
        waited >= Duration::from_millis(1900),
        "asked again after {waited:?} instead of waiting out the interval"
    );
    held.abort();
    Ok(())
}

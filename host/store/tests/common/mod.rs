//! Shared setup for the API tests: a real store in a temporary directory served on an
//! ephemeral loopback port, three clients with their own tokens, and request helpers.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::{Method, RequestBuilder, Response};
use sync_host_store::api::feed::RenderedPages;
use sync_host_store::api::{ApiState, router, serve};
use sync_host_store::auth::{Client, Clients, Scope, Secret};
use sync_host_store::config::ApiConfig;
use sync_host_store::store::{Store, StoreConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Token of a client with read and write scopes (not a child node).
pub const WRITER: &str = "writer-token-0123456789";
/// Token of a child node with read and write scopes.
pub const CHILD: &str = "child-token-0123456789";
/// Token of a client that may only read.
pub const READER: &str = "reader-token-0123456789";
/// This node's id.
pub const NODE: &str = "district-1";

/// A running API server on 127.0.0.1.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The store behind the server, for setup and for checking it was not changed.
    pub store: Store,
    /// The API configuration in use.
    pub config: ApiConfig,
    /// A plain HTTP client.
    pub http: reqwest::Client,
    /// The feed pages the server rendered, shared with it.
    pub pages: Arc<RenderedPages>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

fn client(name: &str, token: &str, scopes: &[Scope], is_child_node: bool) -> Client {
    Client {
        name: name.into(),
        token: Secret::new(token),
        scopes: scopes.iter().copied().collect(),
        is_child_node,
        data_scope: None,
    }
}

/// Starts a server with the default API configuration.
pub async fn start() -> TestServer {
    start_with(ApiConfig::default()).await
}

/// Starts a server with `config`.
pub async fn start_with(config: ApiConfig) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(
        &dir.path().join("store"),
        StoreConfig {
            node_id: NODE.into(),
            history_retention: 0,
            ..StoreConfig::default()
        },
    )
    .expect("open store");
    let clients = Clients::new(vec![
        client("writer", WRITER, &[Scope::Read, Scope::Write], false),
        client("child", CHILD, &[Scope::Read, Scope::Write], true),
        client("reader", READER, &[Scope::Read], false),
    ])
    .expect("clients");
    let pages = Arc::new(RenderedPages::default());
    let state = ApiState {
        store: store.clone(),
        config: config.clone(),
        clients: Arc::new(clients),
        long_polls: Default::default(),
        pages: Arc::clone(&pages),
        refusals: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, router(state), async move {
        let _ = stopped.await;
    }));
    TestServer {
        base,
        store,
        config,
        http: reqwest::Client::new(),
        pages,
        shutdown: Some(shutdown),
        task: Some(task),
        _dir: dir,
    }
}

impl TestServer {
    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path` with `token` (none when `None`).
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.http.request(method, self.url(path));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// `GET path` as the writer.
    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, Some(WRITER))
            .send()
            .await
            .expect("GET")
    }

    /// A FHIR write (`PUT`/`POST`) of `body` as the writer.
    pub async fn send_fhir(&self, method: Method, path: &str, body: &str) -> Response {
        self.request(method, path, Some(WRITER))
            .header("content-type", "application/fhir+json")
            .body(body.to_owned())
            .send()
            .await
            .expect("FHIR write")
    }

    /// A REST write (`POST`) of `body` as the writer.
    pub async fn send_rest(&self, path: &str, body: &str) -> Response {
        self.request(Method::POST, path, Some(WRITER))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("REST write")
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }
}

/// Reads a response body as JSON.
pub async fn json(response: Response) -> serde_json::Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

/// The fixtures directory shared by the repository's tests.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/openmrs")
}

/// A minimal FHIR Patient with `id` and a family name.
pub fn patient(id: &str, family: &str) -> String {
    format!(r#"{{"resourceType":"Patient","id":"{id}","name":[{{"family":"{family}"}}]}}"#)
}

/// The first issue's diagnostics of an OperationOutcome body.
pub fn diagnostics(outcome: &serde_json::Value) -> String {
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    outcome["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

//! The plugin sandbox against a purpose-built hostile plugin: deadlines, memory
//! cap, traps, the HTTP allow-list, credentials the plugin never sees, and no
//! environment. Real `.wasm`, real HTTP servers on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use sync_host_runtime::{
    Action, AllowedEndpoint, Credentials, Endpoint, Event, Failure, HttpAccess, Link, LocalService,
    PluginError, PluginRuntime, Resource, ResourceClient, Role, RuntimeConfig, WasmResourceClient,
};

const TOKEN: &str = "tok-3c1f9a-never-shown-to-plugins";
const SESSION_COOKIE: &str = "JSESSIONID=session-7f2e-secret";

/// The headers of one request, in order.
type Headers = Vec<(String, String)>;

/// Headers one test server received, one list per request.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Headers>>>);

impl Seen {
    fn record(&self, headers: &HeaderMap) {
        let pairs = headers
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        self.0.lock().unwrap().push(pairs);
    }

    fn requests(&self) -> Vec<Headers> {
        self.0.lock().unwrap().clone()
    }
}

/// A server that records request headers and answers `{}` with a session cookie.
async fn recording_server() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let recorder = seen.clone();
    let app = Router::new().fallback(move |headers: HeaderMap| {
        let recorder = recorder.clone();
        async move {
            recorder.record(&headers);
            (
                StatusCode::OK,
                [
                    ("content-type", "application/json"),
                    ("set-cookie", SESSION_COOKIE),
                ],
                "{}",
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

fn test_config() -> RuntimeConfig {
    RuntimeConfig {
        memory_limit_bytes: 16 * 1024 * 1024,
        call_timeout: Duration::from_secs(1),
        cache_dir: None,
        http: sync_host_runtime::HttpLimits {
            request_timeout: Duration::from_secs(5),
            max_response_bytes: 1024 * 1024,
        },
    }
}

async fn hostile_client(access: HttpAccess) -> WasmResourceClient {
    client_with(test_config(), access).await
}

fn granted(addr: SocketAddr, credentials: Option<Credentials>) -> HttpAccess {
    HttpAccess {
        endpoints: vec![AllowedEndpoint {
            base_url: format!("http://{addr}").parse().unwrap(),
            credentials,
            in_process: false,
        }],
        local_service: None,
    }
}

fn event(category: &str, href: &str) -> Event {
    Event {
        id: format!("urn:uuid:{category}-0001"),
        sequence: Some(1),
        category: category.into(),
        action: Action::Updated,
        resource_type: "Patient".into(),
        resource_id: "8d2f4c1e".into(),
        links: vec![Link {
            client: "fhir".into(),
            href: href.into(),
        }],
        tags: vec![],
        origin: None,
        version: None,
        content_hash: None,
        raw: String::new(),
    }
}

fn source(addr: SocketAddr) -> Endpoint {
    Endpoint {
        role: Role::Parent,
        base_url: format!("http://{addr}"),
    }
}

async fn fetch_one(
    client: &WasmResourceClient,
    addr: SocketAddr,
    ev: Event,
) -> Result<Resource, Failure> {
    let mut results = client.fetch(&source(addr), &[ev]).await.unwrap();
    assert_eq!(results.len(), 1);
    results.remove(0)
}

/// After a hostile call, the same client still works (on a fresh instance).
async fn assert_recovers(client: &WasmResourceClient, addr: SocketAddr) {
    let ok = event("ok", "");
    let resource = fetch_one(client, addr, ok.clone()).await.unwrap();
    assert!(
        format!("{resource:?}").contains(&ok.id),
        "the ok call should echo the event id: {resource:?}"
    );
}

fn assert_names_plugin(client: &WasmResourceClient, error: &PluginError) {
    let message = error.to_string();
    println!("{message}");
    assert!(message.contains(&client.info().name), "{message}");
    assert!(message.contains(&client.info().version), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_loop_hits_the_deadline_and_the_next_call_works() {
    let (addr, _) = recording_server().await;
    let client = hostile_client(granted(addr, None)).await;
    let started = Instant::now();
    let error = client
        .fetch(&source(addr), &[event("loop", "")])
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    println!("loop stopped after {elapsed:?} (deadline 1 s)");
    assert!(
        matches!(error, PluginError::DeadlineExceeded { .. }),
        "{error}"
    );
    assert_names_plugin(&client, &error);
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert_recovers(&client, addr).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unbounded_allocation_hits_the_memory_cap_and_the_next_call_works() {
    let (addr, _) = recording_server().await;
    let client = hostile_client(granted(addr, None)).await;
    let error = client
        .fetch(&source(addr), &[event("alloc", "")])
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::OutOfMemory { limit, .. } if limit == 16 * 1024 * 1024),
        "{error}"
    );
    assert_names_plugin(&client, &error);
    assert_recovers(&client, addr).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_is_a_trap_of_that_call_only() {
    let (addr, _) = recording_server().await;
    let client = hostile_client(granted(addr, None)).await;
    let error = client
        .fetch(&source(addr), &[event("trap", "")])
        .await
        .unwrap_err();
    assert!(matches!(error, PluginError::Trap { .. }), "{error}");
    assert_names_plugin(&client, &error);
    assert!(error.to_string().contains("fetch"), "{error}");
    // The panic message the plugin printed explains the trap.
    assert!(error.to_string().contains("panicked"), "{error}");
    assert_recovers(&client, addr).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_outside_the_allow_list_is_denied_and_never_reached() {
    let (granted_addr, _) = recording_server().await;
    let (other_addr, other_seen) = recording_server().await;
    let client = hostile_client(granted(granted_addr, None)).await;
    let target = format!("http://{other_addr}/ws/fhir2/R4/Patient/8d2f4c1e");
    let failure = fetch_one(&client, granted_addr, event("http-denied", &target))
        .await
        .unwrap_err();
    let Failure::Invalid(detail) = failure else {
        panic!("expected an invalid failure, got {failure:?}");
    };
    assert!(
        detail
            .message
            .contains("is not an endpoint this plugin may reach"),
        "{}",
        detail.message
    );
    assert!(
        detail.message.contains(&other_addr.to_string()),
        "{}",
        detail.message
    );
    assert!(
        other_seen.requests().is_empty(),
        "the second server must not be contacted"
    );
    assert_recovers(&client, granted_addr).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_sees_no_host_environment() {
    static SET_SECRET: Once = Once::new();
    // SAFETY: set once, before any plugin runs, and no other test reads or writes `SECRET`.
    SET_SECRET.call_once(|| unsafe { std::env::set_var("SECRET", "host-side-secret") });
    let (addr, _) = recording_server().await;
    let client = hostile_client(granted(addr, None)).await;
    let resource = fetch_one(&client, addr, event("env", "")).await.unwrap();
    assert_eq!(resource.body, "<unset>");
    assert_recovers(&client, addr).await;
}

/// Runs the echo-headers case and returns (what the server saw, what the plugin returned).
async fn echo_headers(credentials: Credentials) -> (Vec<(String, String)>, String) {
    let (addr, seen) = recording_server().await;
    let client = hostile_client(granted(addr, Some(credentials))).await;
    let href = format!("http://{addr}/ws/fhir2/R4/Patient/8d2f4c1e");
    let resource = fetch_one(&client, addr, event("echo-headers", &href))
        .await
        .unwrap();
    let requests = seen.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    (requests[0].clone(), resource.body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_credentials_are_added_by_the_host_and_never_shown_to_the_plugin() {
    let (server_saw, plugin_saw) = echo_headers(Credentials::Bearer(TOKEN.into())).await;
    assert_eq!(
        header(&server_saw, "authorization"),
        vec![format!("Bearer {TOKEN}").as_str()]
    );
    assert_eq!(header(&server_saw, "x-plugin"), vec!["1"]);
    assert!(
        !format!("{server_saw:?}").contains("plugin-forged"),
        "{server_saw:?}"
    );
    assert!(
        !plugin_saw.contains(TOKEN),
        "the plugin saw the token: {plugin_saw}"
    );
    assert!(
        !plugin_saw.contains("session-7f2e-secret"),
        "the plugin saw the cookie: {plugin_saw}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&plugin_saw).expect("a JSON list of headers");
    assert!(listed.is_array(), "{plugin_saw}");
    assert!(
        plugin_saw.contains("x-plugin"),
        "its own headers are listed: {plugin_saw}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_credentials_are_added_by_the_host() {
    let credentials = Credentials::Basic {
        username: "admin".into(),
        password: "Admin123".into(),
    };
    let (server_saw, plugin_saw) = echo_headers(credentials).await;
    // base64("admin:Admin123")
    assert_eq!(
        header(&server_saw, "authorization"),
        vec!["Basic YWRtaW46QWRtaW4xMjM="]
    );
    assert!(!plugin_saw.contains("YWRtaW46QWRtaW4xMjM="), "{plugin_saw}");
    assert!(!plugin_saw.contains("Admin123"), "{plugin_saw}");
}

/// Records what reached the in-process service.
struct LocalRecorder(Seen);

impl LocalService for LocalRecorder {
    fn call<'a, 'b>(
        &'a self,
        request: axum::http::Request<axum::body::Bytes>,
    ) -> std::pin::Pin<Box<dyn Future<Output = axum::http::Response<axum::body::Bytes>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async move {
            self.0.record(request.headers());
            axum::http::Response::new(axum::body::Bytes::from_static(b"{}"))
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn in_process_endpoints_are_served_without_a_socket() {
    let seen = Seen::default();
    // Nothing listens on this port: only the in-process service can answer.
    let base = "http://127.0.0.1:9/local-store";
    let access = HttpAccess {
        endpoints: vec![AllowedEndpoint {
            base_url: base.parse().unwrap(),
            credentials: Some(Credentials::Bearer(TOKEN.into())),
            in_process: true,
        }],
        local_service: Some(Arc::new(LocalRecorder(seen.clone()))),
    };
    let client = hostile_client(access).await;
    let local = Endpoint {
        role: Role::Local,
        base_url: base.into(),
    };
    let href = format!("{base}/Patient/8d2f4c1e");
    let mut results = client
        .fetch(&local, &[event("echo-headers", &href)])
        .await
        .unwrap();
    let body = results.remove(0).unwrap().body;
    let requests = seen.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        header(&requests[0], "authorization"),
        vec![format!("Bearer {TOKEN}").as_str()]
    );
    assert!(!body.contains(TOKEN), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_looping_call_does_not_hold_up_other_calls_on_the_same_client() {
    let (addr, _) = recording_server().await;
    // A long deadline, so that "the ok calls finished first" is not a race.
    let config = RuntimeConfig {
        call_timeout: Duration::from_secs(5),
        ..test_config()
    };
    let client = client_with(config, granted(addr, None)).await;
    let looping = {
        let client = client.clone();
        tokio::spawn(async move { client.fetch(&source(addr), &[event("loop", "")]).await })
    };
    let started = Instant::now();
    for _ in 0..3 {
        assert_recovers(&client, addr).await;
    }
    println!(
        "three ok calls took {:?} beside a looping call",
        started.elapsed()
    );
    assert!(
        !looping.is_finished(),
        "the ok calls waited for the looping one"
    );
    let loop_result = looping.await.unwrap();
    assert!(matches!(
        loop_result,
        Err(PluginError::DeadlineExceeded { .. })
    ));
}

/// A server whose `/slow` answers after `delay`, whose `/big` answers 2 MiB,
/// and whose `/redirect` answers 302 to `redirect_to`.
async fn limits_server(delay: Duration, redirect_to: String) -> SocketAddr {
    let app = Router::new()
        .route(
            "/redirect",
            axum::routing::get(move || async move {
                (StatusCode::FOUND, [("location", redirect_to)], "")
            }),
        )
        .route(
            "/slow",
            axum::routing::get(move || async move {
                tokio::time::sleep(delay).await;
                "{}"
            }),
        )
        .route(
            "/big",
            axum::routing::get(|| async { vec![b'x'; 2 * 1024 * 1024] }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn client_with(config: RuntimeConfig, access: HttpAccess) -> WasmResourceClient {
    let runtime = PluginRuntime::new(config).unwrap();
    let plugin = runtime
        .load_file(&sync_host_tests::plugin_path("hostile"))
        .await
        .unwrap();
    plugin.resource_client(access).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_http_is_not_charged_to_the_plugin_deadline() {
    let addr = limits_server(Duration::from_millis(1500), String::new()).await;
    // 1 s of plugin time, 5 s per request: the 1.5 s wait must not trip the deadline.
    let client = client_with(test_config(), granted(addr, None)).await;
    let started = Instant::now();
    let href = format!("http://{addr}/slow");
    let resource = fetch_one(&client, addr, event("http-denied", &href))
        .await
        .unwrap();
    println!("a call waiting 1.5 s on HTTP took {:?}", started.elapsed());
    assert_eq!(resource.body, r#"{"status":200}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_endpoint_is_a_timeout_for_the_plugin() {
    let addr = limits_server(Duration::from_secs(3), String::new()).await;
    let mut config = test_config();
    config.http.request_timeout = Duration::from_millis(500);
    let client = client_with(config, granted(addr, None)).await;
    let href = format!("http://{addr}/slow");
    let failure = fetch_one(&client, addr, event("http-denied", &href))
        .await
        .unwrap_err();
    assert!(
        failure.detail().message.starts_with("timeout: "),
        "{failure:?}"
    );
    assert!(failure.detail().message.contains(&href), "{failure:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_response_is_cut_off() {
    let addr = limits_server(Duration::ZERO, String::new()).await;
    // The test configuration caps responses at 1 MiB; `/big` sends 2 MiB.
    let client = client_with(test_config(), granted(addr, None)).await;
    let href = format!("http://{addr}/big");
    let failure = fetch_one(&client, addr, event("http-denied", &href))
        .await
        .unwrap_err();
    assert!(
        failure.detail().message.starts_with("response too large: "),
        "{failure:?}"
    );
    assert_recovers(&client, addr).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_returned_not_followed() {
    let (other_addr, other_seen) = recording_server().await;
    let addr = limits_server(Duration::ZERO, format!("http://{other_addr}/elsewhere")).await;
    let client = client_with(test_config(), granted(addr, None)).await;
    let href = format!("http://{addr}/redirect");
    let resource = fetch_one(&client, addr, event("http-denied", &href))
        .await
        .unwrap();
    assert_eq!(resource.body, r#"{"status":302}"#);
    assert!(
        other_seen.requests().is_empty(),
        "the redirect must not be followed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_reads_files_is_refused_at_load() {
    let runtime = PluginRuntime::new(test_config()).unwrap();
    let path = sync_host_tests::plugin_path("hostile-fs");
    let error = runtime.load_file(&path).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, PluginError::Inspect { .. }), "{message}");
    assert!(message.contains("wasi:filesystem"), "{message}");
    assert!(message.contains("sync:plugin/http"), "{message}");
}

//! The plugin sandbox against a purpose-built hostile plugin: deadlines, memory
//! cap, traps (a panic, a stack overflow), the HTTP allow-list, credentials the
//! plugin never sees, and no environment. Real `.wasm`, real HTTP servers on
//! 127.0.0.1.

use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use sync_host_runtime::{
    Action, AllowedEndpoint, Credentials, Endpoint, Event, Failure, HttpAccess, Link, LocalService,
    PluginError, PluginRuntime, Resource, ResourceClient, Role, RuntimeConfig, WasmResourceClient,
    Write,
};
use sync_host_tests::{TestResponse, TestServer};

const TOKEN: &str = "tok-3c1f9a-never-shown-to-plugins";
const SESSION_COOKIE: &str = "JSESSIONID=session-7f2e-secret";

/// The headers of one request, in order.
type Headers = Vec<(String, String)>;

/// Answers `{}` with a session cookie the plugin must not see, and 2 MiB on `/big`.
async fn server() -> TestServer {
    TestServer::start(|request| match request.path.as_str() {
        "/big" => TestResponse::new(200, vec![b'x'; 2 * 1024 * 1024]),
        _ => TestResponse::json(200, "{}").header("set-cookie", SESSION_COOKIE),
    })
    .await
}

/// Answers `{}` after `delay`.
async fn slow_server(delay: Duration) -> TestServer {
    TestServer::start(move |_| TestResponse::json(200, "{}").delayed(delay)).await
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

fn granted(server: &TestServer, credentials: Option<Credentials>) -> HttpAccess {
    HttpAccess {
        endpoints: vec![AllowedEndpoint {
            base_url: server.base_url().parse().unwrap(),
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

fn source(server: &TestServer) -> Endpoint {
    Endpoint {
        role: Role::Parent,
        base_url: server.base_url(),
    }
}

async fn fetch_one(
    client: &WasmResourceClient,
    server: &TestServer,
    ev: Event,
) -> Result<Resource, Failure> {
    let mut results = client.fetch(&source(server), &[ev]).await.unwrap();
    assert_eq!(results.len(), 1);
    results.remove(0)
}

/// After a hostile call, the same client still works (on a fresh instance).
async fn assert_recovers(client: &WasmResourceClient, server: &TestServer) {
    let ok = event("ok", "");
    let resource = fetch_one(client, server, ok.clone()).await.unwrap();
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
    let server = server().await;
    let client = hostile_client(granted(&server, None)).await;
    let started = Instant::now();
    let error = client
        .fetch(&source(&server), &[event("loop", "")])
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
    assert_recovers(&client, &server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unbounded_allocation_hits_the_memory_cap_and_the_next_call_works() {
    let server = server().await;
    let client = hostile_client(granted(&server, None)).await;
    let error = client
        .fetch(&source(&server), &[event("alloc", "")])
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::OutOfMemory { limit, .. } if limit == 16 * 1024 * 1024),
        "{error}"
    );
    assert_names_plugin(&client, &error);
    assert_recovers(&client, &server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_is_a_trap_of_that_call_only() {
    let server = server().await;
    let client = hostile_client(granted(&server, None)).await;
    let error = client
        .fetch(&source(&server), &[event("trap", "")])
        .await
        .unwrap_err();
    assert!(matches!(error, PluginError::Trap { .. }), "{error}");
    assert_names_plugin(&client, &error);
    assert!(error.to_string().contains("fetch"), "{error}");
    // The panic message the plugin printed explains the trap.
    assert!(error.to_string().contains("panicked"), "{error}");
    assert_recovers(&client, &server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_overflow_is_a_trap_of_that_call_only() {
    let server = server().await;
    let client = hostile_client(granted(&server, None)).await;
    let error = client
        .fetch(&source(&server), &[event("recurse", "")])
        .await
        .unwrap_err();
    assert!(matches!(error, PluginError::Trap { .. }), "{error}");
    assert_names_plugin(&client, &error);
    assert_recovers(&client, &server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_outside_the_allow_list_is_denied_and_never_reached() {
    let server = server().await;
    let other = self::server().await;
    let client = hostile_client(granted(&server, None)).await;
    let target = other.url("/ws/fhir2/R4/Patient/8d2f4c1e");
    let failure = fetch_one(&client, &server, event("http-denied", &target))
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
        detail.message.contains(&other.base_url()),
        "{}",
        detail.message
    );
    assert_eq!(
        other.request_count(),
        0,
        "the second server must not be contacted"
    );
    assert_recovers(&client, &server).await;
}

#[tokio::test(flavor = "multi_thread")]
#[allow(
    unsafe_code,
    reason = "setting a process environment variable is unsafe since 2024"
)]
async fn the_plugin_sees_no_host_environment() {
    static SET_SECRET: Once = Once::new();
    // SAFETY: set once, before any plugin runs, and no other test reads or writes `SECRET`.
    SET_SECRET.call_once(|| unsafe { std::env::set_var("SECRET", "host-side-secret") });
    let server = server().await;
    let client = hostile_client(granted(&server, None)).await;
    let resource = fetch_one(&client, &server, event("env", "")).await.unwrap();
    assert_eq!(resource.body, "<unset>");
    assert_recovers(&client, &server).await;
}

/// Runs the echo-headers case and returns (what the server saw, what the plugin returned).
async fn echo_headers(credentials: Credentials) -> (Headers, String) {
    let server = server().await;
    let client = hostile_client(granted(&server, Some(credentials))).await;
    let href = server.url("/ws/fhir2/R4/Patient/8d2f4c1e");
    let resource = fetch_one(&client, &server, event("echo-headers", &href))
        .await
        .unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    (requests[0].headers.clone(), resource.body)
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

/// Records the headers of what reached the in-process service.
#[derive(Default)]
struct LocalRecorder(Mutex<Vec<Headers>>);

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
            let headers = request
                .headers()
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            self.0.lock().unwrap().push(headers);
            axum::http::Response::new(axum::body::Bytes::from_static(b"{}"))
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn in_process_endpoints_are_served_without_a_socket() {
    let recorder = Arc::new(LocalRecorder::default());
    // Nothing listens on this port: only the in-process service can answer.
    let base = "http://127.0.0.1:9/local-store";
    let access = HttpAccess {
        endpoints: vec![AllowedEndpoint {
            base_url: base.parse().unwrap(),
            credentials: Some(Credentials::Bearer(TOKEN.into())),
            in_process: true,
        }],
        local_service: Some(recorder.clone()),
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
    let requests = recorder.0.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        header(&requests[0], "authorization"),
        vec![format!("Bearer {TOKEN}").as_str()]
    );
    assert!(!body.contains(TOKEN), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_looping_call_does_not_hold_up_other_calls_on_the_same_client() {
    let server = server().await;
    // A long deadline, so that "the ok calls finished first" is not a race.
    let config = RuntimeConfig {
        call_timeout: Duration::from_secs(5),
        ..test_config()
    };
    let client = client_with(config, granted(&server, None)).await;
    let looping = {
        let client = client.clone();
        let source = source(&server);
        tokio::spawn(async move { client.fetch(&source, &[event("loop", "")]).await })
    };
    let started = Instant::now();
    for _ in 0..3 {
        assert_recovers(&client, &server).await;
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
    let server = slow_server(Duration::from_millis(1500)).await;
    // 1 s of plugin time, 5 s per request: the 1.5 s wait must not trip the deadline.
    let client = client_with(test_config(), granted(&server, None)).await;
    let started = Instant::now();
    let href = server.url("/slow");
    let resource = fetch_one(&client, &server, event("http-denied", &href))
        .await
        .unwrap();
    println!("a call waiting 1.5 s on HTTP took {:?}", started.elapsed());
    assert_eq!(resource.body, r#"{"status":200}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_endpoint_is_a_timeout_for_the_plugin() {
    let server = slow_server(Duration::from_secs(3)).await;
    let mut config = test_config();
    config.http.request_timeout = Duration::from_millis(500);
    let client = client_with(config, granted(&server, None)).await;
    let href = server.url("/slow");
    let failure = fetch_one(&client, &server, event("http-denied", &href))
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
    let server = server().await;
    // The test configuration caps responses at 1 MiB; `/big` sends 2 MiB.
    let client = client_with(test_config(), granted(&server, None)).await;
    let href = server.url("/big");
    let failure = fetch_one(&client, &server, event("http-denied", &href))
        .await
        .unwrap_err();
    assert!(
        failure.detail().message.starts_with("response too large: "),
        "{failure:?}"
    );
    assert_recovers(&client, &server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_returned_not_followed() {
    let other = server().await;
    let location = other.url("/elsewhere");
    let server =
        TestServer::start(move |_| TestResponse::new(302, "").header("location", &location)).await;
    let client = client_with(test_config(), granted(&server, None)).await;
    let href = server.url("/redirect");
    let resource = fetch_one(&client, &server, event("http-denied", &href))
        .await
        .unwrap();
    assert_eq!(resource.body, r#"{"status":302}"#);
    assert_eq!(
        other.request_count(),
        0,
        "the redirect must not be followed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_in_store_is_contained_too() {
    let server = server().await;
    let client = hostile_client(granted(&server, None)).await;
    let write = |resource_type: &str| Write {
        resource: Resource {
            resource_type: resource_type.into(),
            id: "8d2f4c1e".into(),
            version: None,
            body: "{}".into(),
            deleted: false,
        },
        expected_version: None,
        origin: None,
    };
    let error = client
        .store(&source(&server), &[write("trap")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            PluginError::Trap {
                function: "store",
                ..
            }
        ),
        "{error}"
    );
    assert_names_plugin(&client, &error);
    let stored = client
        .store(&source(&server), &[write("Patient")])
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].as_ref().unwrap().id, "8d2f4c1e");
}

#[tokio::test(flavor = "multi_thread")]
async fn many_concurrent_calls_on_one_client_all_succeed() {
    let server = server().await;
    let client = hostile_client(granted(&server, None)).await;
    let calls: Vec<_> = (0..24)
        .map(|i| {
            let client = client.clone();
            let source = source(&server);
            let mut ok = event("ok", "");
            ok.id = format!("urn:uuid:ok-{i}");
            tokio::spawn(async move { (ok.id.clone(), client.fetch(&source, &[ok]).await) })
        })
        .collect();
    for call in calls {
        let (id, result) = call.await.unwrap();
        let resource = result.unwrap().remove(0).unwrap();
        assert!(resource.body.contains(&id), "{id}: {}", resource.body);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_reads_files_is_refused_at_load() {
    let runtime = PluginRuntime::new(test_config()).unwrap();
    let path = sync_host_tests::plugin_path("hostile-fs");
    let error = runtime.load_file(&path).await.unwrap_err();
    // The error names the file; its cause says what the component imports.
    let message = sync_host::error_chain::chain(&error);
    assert!(matches!(error, PluginError::Inspect { .. }), "{message}");
    assert!(message.contains("wasi:filesystem"), "{message}");
    assert!(message.contains("sync:plugin/http"), "{message}");
}

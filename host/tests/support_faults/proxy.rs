//! A reverse proxy on loopback between a child and its parent that injects faults: one request
//! in N answered 500, one in M delayed (drawn from a seeded generator, so no request pattern can
//! line up with the fault pattern), all requests answered 502 while the upstream is "down", or
//! the listener closed altogether (connection refused) and reopened on its port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Which faults are active; change them at any time.
#[derive(Default)]
pub struct Faults {
    /// Answer one request in N with 500; 0 disables.
    pub fail_one_in: AtomicUsize,
    /// Delay one request in M by `delay_ms`; 0 disables.
    pub delay_one_in: AtomicUsize,
    pub delay_ms: AtomicU64,
    /// Answer 502 to everything, as a proxy whose upstream is down does.
    pub upstream_down: AtomicBool,
    /// Go "down" after this many more forwarded requests; 0 disables.
    pub down_after: AtomicUsize,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    faults: Faults,
    dice: std::sync::Mutex<StdRng>,
    requests: AtomicUsize,
    failed: AtomicUsize,
    delayed: AtomicUsize,
    forwarded: AtomicUsize,
}

/// A running (or stopped) proxy that keeps its port across restarts.
pub struct FaultProxy {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<(CancellationToken, tokio::task::JoinHandle<()>)>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (a base URL without trailing slash).
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            faults: Faults::default(),
            dice: std::sync::Mutex::new(StdRng::seed_from_u64(0x5eed)),
            requests: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            delayed: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let proxy = Self {
            address: listener.local_addr()?,
            shared,
            running: Mutex::new(None),
        };
        proxy.serve(listener).await;
        Ok(proxy)
    }

    /// The proxy's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The fault switches.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// (requests seen, answered 500/502 by the proxy, delayed, forwarded upstream).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let s = &self.shared;
        (
            s.requests.load(Ordering::SeqCst),
            s.failed.load(Ordering::SeqCst),
            s.delayed.load(Ordering::SeqCst),
            s.forwarded.load(Ordering::SeqCst),
        )
    }

    async fn serve(&self, listener: tokio::net::TcpListener) {
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let app = Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&self.shared));
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(e) = serving.await {
                eprintln!("proxy stopped: {e}");
            }
        });
        *self.running.lock().await = Some((cancel, task));
    }

    /// Closes the listener: new connections are refused until [`FaultProxy::restart`].
    pub async fn stop(&self) {
        if let Some((cancel, task)) = self.running.lock().await.take() {
            cancel.cancel();
            // The listening socket is closed once the server task has ended.
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&self) -> anyhow::Result<()> {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.address).await {
                Ok(listener) => break listener,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("rebinding {}: {e}; retrying", self.address);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.serve(listener).await;
        Ok(())
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let faults = &shared.faults;
    if faults.upstream_down.load(Ordering::SeqCst) {
        shared.failed.fetch_add(1, Ordering::SeqCst);
        return canned(502, "upstream is down");
    }
    if shared.roll(&faults.fail_one_in) {
        shared.failed.fetch_add(1, Ordering::SeqCst);
        return canned(500, "injected failure");
    }
    if shared.roll(&faults.delay_one_in) {
        shared.delayed.fetch_add(1, Ordering::SeqCst);
        let delay = faults.delay_ms.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let response = match relay(&shared, request).await {
        Ok(response) => response,
        Err(e) => canned(502, &format!("upstream failed: {e}")),
    };
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    let left = faults.down_after.load(Ordering::SeqCst);
    if left > 0 && faults.down_after.fetch_sub(1, Ordering::SeqCst) == 1 {
        faults.upstream_down.store(true, Ordering::SeqCst);
    }
    response
}

impl Shared {
    /// True with probability 1/n (never when n is 0).
    fn roll(&self, one_in: &AtomicUsize) -> bool {
        let n = one_in.load(Ordering::SeqCst);
        let mut dice = self.dice.lock().unwrap_or_else(|e| e.into_inner());
        n > 0 && dice.random_range(0..n) == 0
    }
}

async fn relay(shared: &Shared, request: Request) -> anyhow::Result<Response> {
    let (parts, body) = request.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), |p| p.to_string());
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024).await?;
    let mut outbound = shared
        .client
        .request(parts.method, format!("{}{target}", shared.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if !is_hop_header(name.as_str()) {
            outbound = outbound.header(name, value);
        }
    }
    let answer = outbound.send().await?;
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if !is_hop_header(name.as_str()) {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await?;
    Ok(response.body(Body::from(bytes))?)
}

fn is_hop_header(name: &str) -> bool {
    matches!(
        name,
        "host" | "connection" | "content-length" | "transfer-encoding" | "keep-alive"
    )
}

fn canned(status: u16, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(Body::from(message.to_string()))
        .unwrap_or_default()
}

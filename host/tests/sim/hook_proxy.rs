//! The link from a child to its parent in the simulation: a reverse proxy on loopback that can
//! fail the next few requests (503), or hold one chosen request until the simulation has done
//! something else (an edit, another run, a crash) and then forward or fail it. Its upstream can
//! move, so a parent restarted on a new port is still reached at the same address.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// The body of every failure the proxy injects, so the checks can tell them from real ones.
pub const INJECTED: &str = "simulated link failure";

/// What to do with a held request.
pub enum Release {
    /// Forward it; `done` is told once the parent has answered, and the answer goes back
    /// only once `hold` (if any) is told.
    Forward {
        done: Option<oneshot::Sender<()>>,
        hold: Option<oneshot::Receiver<()>>,
    },
    /// Answer 503 without forwarding.
    Fail,
}

/// A held request, waiting for its release.
pub struct Paused {
    pub release: oneshot::Sender<Release>,
}

struct Armed {
    /// Requests to let through before holding one.
    remaining: usize,
    paused: oneshot::Sender<Paused>,
}

struct Shared {
    upstream: Mutex<String>,
    client: reqwest::Client,
    fail_next: AtomicUsize,
    armed: Mutex<Option<Armed>>,
    injected: AtomicUsize,
}

/// A running proxy; stopped when dropped.
pub struct HookProxy {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Drop for HookProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl HookProxy {
    /// Starts a proxy in front of `upstream` (a base URL).
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream.trim_end_matches('/').to_string()),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            fail_next: AtomicUsize::new(0),
            armed: Mutex::new(None),
            injected: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let stop = CancellationToken::new();
        let app = Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&shared));
        let stopped = stop.clone();
        tokio::spawn(async move {
            let serving =
                axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned());
            if let Err(e) = serving.await {
                eprintln!("simulation proxy stopped: {e}");
            }
        });
        Ok(Self {
            address,
            shared,
            stop,
        })
    }

    /// The proxy's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Points the proxy at a new upstream base URL.
    pub fn set_upstream(&self, upstream: &str) {
        *lock(&self.shared.upstream) = upstream.trim_end_matches('/').to_string();
    }

    /// Fails the next `count` requests with 503.
    pub fn fail_next(&self, count: usize) {
        self.shared.fail_next.store(count, Ordering::SeqCst);
    }

    /// Holds the `at`-th request from now (1-based); the receiver hears when it is held.
    pub fn arm(&self, at: usize) -> oneshot::Receiver<Paused> {
        let (paused, receiver) = oneshot::channel();
        *lock(&self.shared.armed) = Some(Armed {
            remaining: at.saturating_sub(1),
            paused,
        });
        receiver
    }

    /// Forgets an armed hold that never fired.
    pub fn disarm(&self) {
        lock(&self.shared.armed).take();
    }

    /// Failures injected so far.
    pub fn injected(&self) -> usize {
        self.shared.injected.load(Ordering::SeqCst)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if std::env::var_os("SIM_TRACE").is_some() {
        eprintln!("  proxy: {} {}", request.method(), request.uri());
    }
    let failing = shared
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return injected(&shared);
    }
    let Some(paused) = take_if_due(&shared) else {
        return relay_or_502(&shared, request).await;
    };
    let (release, released) = oneshot::channel();
    if paused.send(Paused { release }).is_err() {
        return relay_or_502(&shared, request).await;
    }
    match released.await {
        Ok(Release::Forward { done, hold }) => {
            let response = relay_or_502(&shared, request).await;
            if let Some(done) = done {
                let _ = done.send(());
            }
            if let Some(hold) = hold {
                let _ = hold.await;
            }
            response
        }
        Ok(Release::Fail) | Err(_) => injected(&shared),
    }
}

/// The armed hold's sender when this request is the one to hold.
fn take_if_due(shared: &Shared) -> Option<oneshot::Sender<Paused>> {
    let mut armed = lock(&shared.armed);
    let due = armed.as_mut()?;
    if due.remaining > 0 {
        due.remaining -= 1;
        return None;
    }
    armed.take().map(|a| a.paused)
}

fn injected(shared: &Shared) -> Response {
    shared.injected.fetch_add(1, Ordering::SeqCst);
    canned(503, INJECTED)
}

async fn relay_or_502(shared: &Shared, request: Request) -> Response {
    match relay(shared, request).await {
        Ok(response) => response,
        // The simulation takes a parent down only on purpose (a kill), so this is injected too.
        Err(e) => {
            shared.injected.fetch_add(1, Ordering::SeqCst);
            canned(502, &format!("{INJECTED}: upstream unreachable: {e}"))
        }
    }
}

async fn relay(shared: &Shared, request: Request) -> anyhow::Result<Response> {
    let (parts, body) = request.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), |p| p.to_string());
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024).await?;
    let upstream = lock(&shared.upstream).clone();
    let mut outbound = shared
        .client
        .request(parts.method, format!("{upstream}{target}"))
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

//! A reverse proxy in front of a parent node that races a parent change against a child's
//! conditional write, and a child node started by hand with its parent URL pointing at it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sync_host::config::NodeConfig;
use sync_host::network::{NodeSpec, node_toml, sample};
use sync_host::node::RunningNode;
use sync_host_store::store::Store;
use tokio_util::sync::CancellationToken;

use sync_host::sync::conflict::{Direction, Policy};

use super::{TestNet, run_direction, share_plugin_cache};

/// A reverse proxy in front of the parent that, the first time it sees the child's write of
/// `trap_id`, first writes `trap_body` to the parent: the race between the child's read of
/// the parent and its conditional write, made deterministic.
#[derive(Clone)]
pub struct RacingProxy {
    pub upstream: String,
    pub client: reqwest::Client,
    pub parent: Store,
    pub trap_id: String,
    /// The Patient body the parent is given just before the child's write arrives.
    pub trap_body: String,
    pub armed: Arc<AtomicBool>,
    /// Statuses the parent answered to writes, in order.
    pub write_statuses: Arc<std::sync::Mutex<Vec<u16>>>,
}

async fn forward(
    axum::extract::State(proxy): axum::extract::State<RacingProxy>,
    request: axum::extract::Request,
) -> axum::response::Response {
    match proxy.forward(request).await {
        Ok(response) => response,
        Err(e) => {
            let mut response = axum::response::Response::new(axum::body::Body::from(e.to_string()));
            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
            response
        }
    }
}

impl RacingProxy {
    async fn forward(
        &self,
        request: axum::extract::Request,
    ) -> anyhow::Result<axum::response::Response> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await?;
        let is_write = parts.method == http::Method::PUT;
        let trap = format!("/Patient/{}", self.trap_id);
        if is_write && parts.uri.path().ends_with(&trap) && self.armed.swap(false, Ordering::SeqCst)
        {
            let body = self.trap_body.clone();
            sample::put_fhir(&self.parent, "Patient", &self.trap_id, body).await?;
        }
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut outbound = self
            .client
            .request(parts.method.clone(), format!("{}{path}", self.upstream));
        for (name, value) in &parts.headers {
            if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
                outbound = outbound.header(name, value);
            }
        }
        let answer = outbound.body(body).send().await?;
        if is_write {
            self.write_statuses
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .push(answer.status().as_u16());
        }
        let mut response = axum::response::Response::builder().status(answer.status());
        for (name, value) in answer.headers() {
            if name != http::header::TRANSFER_ENCODING && name != http::header::CONTENT_LENGTH {
                response = response.header(name, value);
            }
        }
        Ok(response.body(axum::body::Body::from(answer.bytes().await?))?)
    }
}

/// Starts `proxy` on an ephemeral loopback port; returns its base URL.
pub async fn serve_proxy(proxy: RacingProxy, cancel: CancellationToken) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move {
        let stopped = cancel.cancelled_owned();
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            eprintln!("proxy stopped: {e}");
        }
    });
    Ok(url)
}

/// A child node `edge` whose parent URL is `parent_url`, holding the credential the network
/// issued to `credential_of` (a child of `parent` that stays idle).
pub async fn start_edge(
    t: &TestNet,
    credential_of: &str,
    parent_url: &str,
    policy: Policy,
) -> anyhow::Result<RunningNode> {
    let dir = t.dir.path().join("edge");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("admin.token"),
        sync_host::config::token::generate(),
    )?;
    std::fs::copy(
        t.dir.path().join(credential_of).join("parent.token"),
        dir.join("parent.token"),
    )?;
    let mut spec = NodeSpec::new("edge", Some("root"));
    spec.policy = policy;
    share_plugin_cache(&mut spec);
    let text = node_toml(&spec, &dir, &[], Some(parent_url));
    let path = dir.join("node.toml");
    std::fs::write(&path, &text)?;
    Ok(RunningNode::start(NodeConfig::parse(&text, &path)?).await?)
}

/// A race played out: `root` behind a racing proxy, and `edge` (child of `root` through the
/// proxy) having pulled `race-1`, edited it, and pushed while the parent changed it too.
pub struct Race {
    pub t: TestNet,
    pub edge: RunningNode,
    /// Statuses the parent answered to the edge's writes.
    pub write_statuses: Vec<u16>,
    cancel: CancellationToken,
}

/// Plays the race with `policy` on the edge.
pub async fn race_push(policy: Policy) -> anyhow::Result<Race> {
    race(policy, true).await
}

/// The race of two creates: the edge creates `race-1` (the parent has none when the edge
/// reads it) and pushes, while the parent gets its own `race-1` just before the edge's write.
pub async fn race_create(policy: Policy) -> anyhow::Result<Race> {
    race(policy, false).await
}

/// The race, with `race-1` first created at the root and pulled when `existing`.
async fn race(policy: Policy, existing: bool) -> anyhow::Result<Race> {
    let mut idle = NodeSpec::new("idle", Some("root"));
    (idle.pull, idle.push) = (false, false);
    let t = TestNet::start(vec![NodeSpec::new("root", None), idle]).await?;
    let statuses = Arc::new(std::sync::Mutex::new(Vec::new()));
    let patient = |family| sample::patient("race-1", "Imani", family, "1988-08-08");
    let proxy = RacingProxy {
        upstream: t.handle("root").base_url.clone(),
        client: reqwest::Client::new(),
        parent: t.store("root").clone(),
        trap_id: "race-1".into(),
        trap_body: patient("RacingParentEdit"),
        armed: Arc::new(AtomicBool::new(true)),
        write_statuses: Arc::clone(&statuses),
    };
    let cancel = CancellationToken::new();
    let proxy_url = serve_proxy(proxy, cancel.clone()).await?;
    let edge = start_edge(&t, "idle", &proxy_url, policy).await?;
    let edge_store = edge.handle.store.clone().expect("edge has a store");
    if existing {
        sample::put_fhir(t.store("root"), "Patient", "race-1", patient("Original")).await?;
        run_direction(&edge.handle, Direction::Pull).await?;
    }
    sample::put_fhir(&edge_store, "Patient", "race-1", patient("EdgeEdit")).await?;
    run_direction(&edge.handle, Direction::Push).await?;
    let write_statuses = statuses
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    Ok(Race {
        t,
        edge,
        write_statuses,
        cancel,
    })
}

impl Race {
    /// The body of `race-1` on the root.
    pub fn at_root(&self) -> String {
        self.t
            .body("root", &super::fhir("Patient", "race-1"))
            .unwrap_or_default()
    }

    /// The edge's open conflicts.
    pub fn open_conflicts(&self) -> anyhow::Result<Vec<sync_host::state::ConflictRecord>> {
        let open = sync_host::state::ConflictFilter::Open;
        Ok(self.edge.handle.state.conflicts(open, 10)?)
    }

    /// The body of `race-1` on the edge.
    pub fn at_edge(&self) -> String {
        let store = self.edge.handle.store.as_ref().expect("edge has a store");
        let record = store.read(&super::fhir("Patient", "race-1")).ok().flatten();
        record.and_then(|r| r.body).unwrap_or_default()
    }

    /// Stops the edge, the proxy and the network.
    pub async fn shutdown(self) {
        self.edge.shutdown().await;
        self.cancel.cancel();
        self.t.shutdown().await;
    }
}

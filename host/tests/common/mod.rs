//! Helpers shared by the end-to-end sync tests: a network of real nodes in a temporary
//! directory, store and audit access by node id, counting audit records, and a proxy that
//! races a parent change against a child's conditional write.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sync_host::audit::{AuditQuery, AuditRecord, Outcome, OutcomeKind, SkipReason};
use sync_host::config::NodeConfig;
use sync_host::network::{Network, NodeSpec, differences, node_toml, sample, toml_string};
use sync_host::node::{NodeHandle, RunningNode};
use sync_host::state::{ConflictFilter, ConflictRecord};
use sync_host::sync::conflict::Direction;
use sync_host::sync::service::RunReport;
use sync_host_store::store::{Kind, ResourceKey, Store};
use tokio_util::sync::CancellationToken;

/// Every resource type the tests write.
pub const TYPES: &[(Kind, &str)] = &[
    (Kind::Fhir, "Patient"),
    (Kind::Fhir, "Encounter"),
    (Kind::Fhir, "Observation"),
    (Kind::Rest, "location"),
    (Kind::Rest, "visit"),
];

/// Most rounds a test waits for a network to settle; a healthy tree needs two or three.
pub const MAX_ROUNDS: usize = 8;

/// A started network and the temporary directory holding its files. The network is declared
/// first so it is dropped before the directory is removed.
pub struct TestNet {
    pub net: Network,
    pub dir: tempfile::TempDir,
}

impl TestNet {
    /// Starts `specs` (parents first) in a fresh temporary directory.
    pub async fn start(mut specs: Vec<NodeSpec>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("sync-e2e-").tempdir()?;
        for spec in &mut specs {
            share_plugin_cache(spec);
        }
        let net = Network::start(dir.path(), specs).await?;
        Ok(Self { net, dir })
    }

    /// The handle of node `id`; panics when the test names a node it did not start.
    pub fn handle(&self, id: &str) -> &NodeHandle {
        match self.net.node(id) {
            Some(node) => &node.running.handle,
            None => panic!("no node `{id}` in this network"),
        }
    }

    /// The embedded store of node `id`.
    pub fn store(&self, id: &str) -> &Store {
        match &self.handle(id).store {
            Some(store) => store,
            None => panic!("node `{id}` has no embedded store"),
        }
    }

    /// The live body of `key` on node `id`; `None` when absent or deleted.
    pub fn body(&self, id: &str, key: &ResourceKey) -> Option<String> {
        match self.store(id).read(key) {
            Ok(record) => record.and_then(|r| r.body),
            Err(e) => panic!("reading {key:?} on `{id}` failed: {e}"),
        }
    }

    /// Which of `nodes` hold a live copy of `key`.
    pub fn holders(&self, key: &ResourceKey) -> Vec<String> {
        self.net
            .nodes
            .iter()
            .filter(|n| self.body(&n.spec.id, key).is_some())
            .map(|n| n.spec.id.clone())
            .collect()
    }

    /// Runs rounds until one writes nothing; fails when the network never settles.
    pub async fn settle(&self) -> anyhow::Result<usize> {
        let rounds = self.net.sync_until_quiet(MAX_ROUNDS).await?;
        anyhow::ensure!(
            rounds < MAX_ROUNDS,
            "the network still wrote resources after {MAX_ROUNDS} rounds"
        );
        Ok(rounds)
    }

    /// Asserts every node holds the same live resources with the same content.
    pub fn assert_converged(&self) {
        let diffs = differences(&self.net, TYPES).expect("stores are readable");
        assert!(diffs.is_empty(), "nodes differ:\n  {}", diffs.join("\n  "));
    }

    /// Every audit record of node `id`, oldest first.
    pub fn audit(&self, id: &str) -> Vec<AuditRecord> {
        let query = AuditQuery {
            limit: 1_000_000,
            ..AuditQuery::default()
        };
        let page = self
            .handle(id)
            .state
            .audit()
            .query(&query)
            .expect("audit log is readable");
        page.entries.into_iter().rev().map(|e| e.record).collect()
    }

    /// The audit records of node `id` about one resource in one direction.
    pub fn audit_for(&self, id: &str, direction: Direction, resource_id: &str) -> Vec<AuditRecord> {
        self.audit(id)
            .into_iter()
            .filter(|r| r.direction == direction && r.resource_id == resource_id)
            .collect()
    }

    /// Per node, how many records about `resource_id` in `direction` have outcome `kind`.
    pub fn counts(
        &self,
        direction: Direction,
        resource_id: &str,
        kind: OutcomeKind,
    ) -> BTreeMap<String, usize> {
        self.net
            .nodes
            .iter()
            .map(|n| {
                let count = self
                    .audit_for(&n.spec.id, direction, resource_id)
                    .iter()
                    .filter(|r| r.outcome.kind() == kind)
                    .count();
                (n.spec.id.clone(), count)
            })
            .collect()
    }

    /// Every conflict record of node `id`, open and resolved.
    pub fn conflicts(&self, id: &str) -> Vec<ConflictRecord> {
        self.handle(id)
            .state
            .conflicts(ConflictFilter::All, 1_000)
            .expect("conflicts are readable")
    }

    /// Runs one direction of node `id` once, as its scheduler would.
    pub async fn run(&self, id: &str, direction: Direction) -> anyhow::Result<RunReport> {
        run_direction(self.handle(id), direction).await
    }

    /// The HTTP requests node `id` served whose labels include all of `labels` (such as
    /// `method="PUT"`), summed from its Prometheus `/metrics`, read with its admin token.
    pub async fn http_requests(&self, id: &str, labels: &[&str]) -> anyhow::Result<u64> {
        let node = self
            .net
            .node(id)
            .ok_or_else(|| anyhow::anyhow!("no node `{id}`"))?;
        let text = reqwest::Client::new()
            .get(format!("{}/metrics", node.running.base_url()))
            .bearer_auth(&node.admin_token)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with("sync_host_http_requests_total{"))
            .filter(|l| labels.iter().all(|label| l.contains(label)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum())
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        self.net.shutdown().await;
    }

    /// Stops every node but keeps their files (configs, tokens, data) for another run.
    pub async fn stop_keeping_files(self) -> tempfile::TempDir {
        self.net.shutdown().await;
        self.dir
    }
}

/// Runs one direction of a node once, as its scheduler would.
pub async fn run_direction(handle: &NodeHandle, direction: Direction) -> anyhow::Result<RunReport> {
    let id = &handle.node_id;
    let services = handle
        .services
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("node `{id}` has no sync services"))?;
    let service = match direction {
        Direction::Pull => services.pull.as_ref(),
        Direction::Push => services.push.as_ref(),
    };
    let (service, _) =
        service.ok_or_else(|| anyhow::anyhow!("node `{id}` has no {direction:?} service"))?;
    Ok(service.run_once(&CancellationToken::new()).await?)
}

/// Points the node at one compiled-plugin cache shared by every test node, so each default
/// plugin is compiled once per build instead of once per node (writes to it are atomic).
pub fn share_plugin_cache(spec: &mut NodeSpec) {
    if spec.extra_toml.contains("[plugins]") {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-plugin-cache");
    let dir = toml_string(&dir.display().to_string());
    spec.extra_toml
        .push_str(&format!("\n[plugins]\ncache_dir = {dir}\n"));
}

/// True when `record` is a skip for `reason`.
pub fn is_skip(record: &AuditRecord, reason: SkipReason) -> bool {
    record.outcome == Outcome::Skipped { reason }
}

/// A FHIR key.
pub fn fhir(resource_type: &str, id: &str) -> ResourceKey {
    ResourceKey::fhir(resource_type, id)
}

/// A REST document key.
pub fn rest(resource: &str, uuid: &str) -> ResourceKey {
    ResourceKey::rest(resource, uuid)
}

/// Deletes a REST document as a local change of `store`'s node.
pub async fn delete_rest(store: &Store, resource: &str, uuid: &str) -> anyhow::Result<()> {
    let request = sync_host_store::store::WriteRequest {
        key: ResourceKey::rest(resource, uuid),
        body: None,
        if_match: None,
        origin: None,
    };
    store.write(request).await?;
    Ok(())
}

/// An OpenMRS-style REST visit document with a `voided` flag.
pub fn visit(uuid: &str, note: &str, voided: bool) -> String {
    format!(
        r#"{{"uuid":"{uuid}","display":"Visit {uuid}","visitType":"Outpatient","note":"{note}","voided":{voided}}}"#
    )
}

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
) -> anyhow::Result<RunningNode> {
    let dir = t.dir.path().join("edge");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("admin.token"), "edge-admin-token-for-tests")?;
    std::fs::copy(
        t.dir.path().join(credential_of).join("parent.token"),
        dir.join("parent.token"),
    )?;
    let mut spec = NodeSpec::new("edge", Some("root"));
    share_plugin_cache(&mut spec);
    let text = node_toml(&spec, &dir, &[], Some(parent_url));
    let path = dir.join("node.toml");
    std::fs::write(&path, &text)?;
    Ok(RunningNode::start(NodeConfig::parse(&text, &path)?).await?)
}

//! End-to-end conflicts between a parent and a child that both edited a record: each policy
//! settles it with the winner on both sides and the loser kept in the conflict record; the
//! manual policy waits for an operator; a parent change that lands between the child's read
//! and its write is refused with 412 and becomes a conflict instead of an overwrite.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestNet, fhir, run_direction, share_plugin_cache};
use sync_host::audit::Outcome;
use sync_host::config::NodeConfig;
use sync_host::network::{NodeSpec, node_toml, sample};
use sync_host::node::RunningNode;
use sync_host::node::resolve::{Resolve, resolve_conflict};
use sync_host::state::{ConflictRecord, ConflictStatus};
use sync_host::sync::conflict::{Direction, Policy, Side};
use sync_host_store::store::Store;
use tokio_util::sync::CancellationToken;

async fn pair(policy: Policy) -> anyhow::Result<TestNet> {
    let mut child = NodeSpec::new("child", Some("root"));
    child.policy = policy;
    TestNet::start(vec![NodeSpec::new("root", None), child]).await
}

async fn put(store: &Store, id: &str, family: &str) -> anyhow::Result<()> {
    let body = sample::patient(id, "Imani", family, "1988-08-08");
    sample::put_fhir(store, "Patient", id, body).await?;
    Ok(())
}

fn edit_of(node: &str) -> &'static str {
    if node == "root" {
        "ParentEdit"
    } else {
        "ChildEdit"
    }
}

/// Creates `ids` at the root and syncs them to the child.
async fn create_synced(t: &TestNet, ids: &[&str]) -> anyhow::Result<()> {
    for id in ids {
        put(t.store("root"), id, "Original").await?;
    }
    t.settle().await?;
    Ok(())
}

/// Edits `id` on both sides without syncing: `first` edits, and a moment later (so
/// `meta.lastUpdated` differs) the other node does.
async fn edit_both(t: &TestNet, id: &str, first: &str) -> anyhow::Result<()> {
    let second = if first == "root" { "child" } else { "root" };
    put(t.store(first), id, edit_of(first)).await?;
    tokio::time::sleep(Duration::from_millis(30)).await;
    put(t.store(second), id, edit_of(second)).await?;
    Ok(())
}

fn conflict_of(t: &TestNet, id: &str) -> ConflictRecord {
    let mut found: Vec<_> = t
        .conflicts("child")
        .into_iter()
        .filter(|c| c.resource_id == id)
        .collect();
    assert_eq!(found.len(), 1, "one conflict record for {id}: {found:?}");
    found.remove(0)
}

/// Both nodes hold the winner's edit; the conflict record is resolved by `policy` with the
/// loser's body kept; the child's audit shows the conflict and its winner.
fn assert_settled(t: &TestNet, id: &str, winner: Side, policy: Policy, policy_name: &str) {
    let (win, lose) = match winner {
        Side::Parent => ("ParentEdit", "ChildEdit"),
        Side::Child => ("ChildEdit", "ParentEdit"),
    };
    for node in ["root", "child"] {
        let body = t.body(node, &fhir("Patient", id)).unwrap_or_default();
        assert!(body.contains(win), "{node}: {id} should hold {win}: {body}");
    }
    let record = conflict_of(t, id);
    assert_eq!(record.status, ConflictStatus::Resolved);
    let resolution = record
        .resolution
        .as_ref()
        .expect("a resolved conflict says how");
    assert_eq!(resolution.winner, winner);
    assert_eq!(resolution.by, format!("policy:{policy_name}"));
    let (winning, losing) = match winner {
        Side::Parent => (&record.parent, &record.child),
        Side::Child => (&record.child, &record.parent),
    };
    assert!(winning.body.contains(win), "winner body: {}", winning.body);
    assert!(
        losing.body.contains(lose),
        "the loser must be kept: {}",
        losing.body
    );
    let audited = t.audit("child").into_iter().any(|r| {
        r.resource_id == id
            && r.outcome
                == Outcome::Conflict {
                    conflict_id: record.id,
                    policy,
                    winner: Some(winner),
                }
    });
    assert!(
        audited,
        "the child's audit records the {policy_name} conflict on {id}"
    );
    t.assert_converged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_wins_keeps_the_childs_version_in_the_record() -> anyhow::Result<()> {
    let t = pair(Policy::ParentWins).await?;
    create_synced(&t, &["pw-1"]).await?;
    edit_both(&t, "pw-1", "root").await?;
    t.settle().await?;
    assert_settled(&t, "pw-1", Side::Parent, Policy::ParentWins, "parent-wins");
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_wins_keeps_the_parents_version_in_the_record() -> anyhow::Result<()> {
    let t = pair(Policy::ChildWins).await?;
    create_synced(&t, &["cw-1"]).await?;
    edit_both(&t, "cw-1", "child").await?;
    t.settle().await?;
    assert_settled(&t, "cw-1", Side::Child, Policy::ChildWins, "child-wins");
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_wins_picks_the_later_edit_on_either_side() -> anyhow::Result<()> {
    let t = pair(Policy::NewestWins).await?;
    // The child edits last here, the parent last there.
    create_synced(&t, &["nw-child", "nw-parent"]).await?;
    edit_both(&t, "nw-child", "root").await?;
    edit_both(&t, "nw-parent", "child").await?;
    t.settle().await?;
    assert_settled(
        &t,
        "nw-child",
        Side::Child,
        Policy::NewestWins,
        "newest-wins",
    );
    assert_settled(
        &t,
        "nw-parent",
        Side::Parent,
        Policy::NewestWins,
        "newest-wins",
    );
    t.shutdown().await;
    Ok(())
}

fn assert_holds(t: &TestNet, node: &str, id: &str, text: &str) {
    let body = t.body(node, &fhir("Patient", id)).unwrap_or_default();
    assert!(
        body.contains(text),
        "{node}: {id} should hold {text}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_waits_for_an_operator_to_pick_a_side_or_merge() -> anyhow::Result<()> {
    let t = pair(Policy::Manual).await?;
    create_synced(&t, &["m-side", "m-merge"]).await?;
    edit_both(&t, "m-side", "root").await?;
    edit_both(&t, "m-merge", "child").await?;

    // The child pushes first: the parent's concurrent edit is detected, not overwritten.
    t.run("child", Direction::Push).await?;
    assert_holds(&t, "root", "m-side", "ParentEdit");
    assert_holds(&t, "root", "m-merge", "ParentEdit");
    for id in ["m-side", "m-merge"] {
        let record = conflict_of(&t, id);
        assert_eq!(
            (record.direction, record.status),
            (Direction::Push, ConflictStatus::Open)
        );
    }

    // More syncing changes nothing on either side until someone decides.
    t.settle().await?;
    t.net.sync_round().await?;
    for id in ["m-side", "m-merge"] {
        assert_holds(&t, "root", id, "ParentEdit");
        assert_holds(&t, "child", id, "ChildEdit");
        let record = conflict_of(&t, id);
        assert_eq!(record.status, ConflictStatus::Open);
        assert!(
            record.parent.body.contains("ParentEdit") && record.child.body.contains("ChildEdit")
        );
        let parked = t.audit("child").into_iter().any(|r| {
            r.resource_id == id
                && matches!(
                    r.outcome,
                    Outcome::Conflict {
                        winner: None,
                        policy: Policy::Manual,
                        ..
                    }
                )
        });
        assert!(
            parked,
            "the child's audit records the parked conflict on {id}"
        );
    }

    let child = t.handle("child");
    let pick = Resolve {
        side: Some(Side::Parent),
        body: None,
        by: "nurse-amina".into(),
    };
    resolve_conflict(child, conflict_of(&t, "m-side").id, pick).await?;
    let merged =
        serde_json::from_str(&sample::patient("m-merge", "Imani", "Merged", "1988-08-18"))?;
    let merge = Resolve {
        side: None,
        body: Some(merged),
        by: "nurse-amina".into(),
    };
    resolve_conflict(child, conflict_of(&t, "m-merge").id, merge).await?;
    t.settle().await?;

    for node in ["root", "child"] {
        assert_holds(&t, node, "m-side", "ParentEdit");
        assert_holds(&t, node, "m-merge", "Merged");
        assert_holds(&t, node, "m-merge", "1988-08-18");
    }
    t.assert_converged();
    for (id, winner) in [("m-side", Side::Parent), ("m-merge", Side::Child)] {
        let record = conflict_of(&t, id);
        assert_eq!(record.status, ConflictStatus::Resolved);
        let resolution = record.resolution.as_ref().expect("resolved");
        assert!(resolution.by.starts_with("nurse-amina"), "{resolution:?}");
        assert!(
            record.child.body.contains("ChildEdit"),
            "the child's version stays on record"
        );
        let audited = t.audit("child").into_iter().any(|r| {
            r.resource_id == id
                && r.outcome
                    == Outcome::Conflict {
                        conflict_id: record.id,
                        policy: Policy::Manual,
                        winner: Some(winner),
                    }
        });
        assert!(
            audited,
            "the audit records the operator's resolution of {id}"
        );
    }
    t.shutdown().await;
    Ok(())
}

/// A reverse proxy in front of the parent that, the first time it sees the child's write of
/// `trap_id`, first makes its own change on the parent: the race between the child's read of
/// the parent and its conditional write, made deterministic.
#[derive(Clone)]
struct RacingProxy {
    upstream: String,
    client: reqwest::Client,
    parent: Store,
    trap_id: String,
    armed: Arc<AtomicBool>,
    /// Statuses the parent answered to writes, in order.
    write_statuses: Arc<std::sync::Mutex<Vec<u16>>>,
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
            put(&self.parent, &self.trap_id, "RacingParentEdit").await?;
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
async fn serve_proxy(proxy: RacingProxy, cancel: CancellationToken) -> anyhow::Result<String> {
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
async fn start_edge(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_change_between_read_and_write_is_refused_and_parked() -> anyhow::Result<()> {
    let mut idle = NodeSpec::new("idle", Some("root"));
    (idle.pull, idle.push) = (false, false);
    let t = TestNet::start(vec![NodeSpec::new("root", None), idle]).await?;
    let statuses = Arc::new(std::sync::Mutex::new(Vec::new()));
    let proxy = RacingProxy {
        upstream: t.handle("root").base_url.clone(),
        client: reqwest::Client::new(),
        parent: t.store("root").clone(),
        trap_id: "race-1".into(),
        armed: Arc::new(AtomicBool::new(true)),
        write_statuses: Arc::clone(&statuses),
    };
    let cancel = CancellationToken::new();
    let proxy_url = serve_proxy(proxy, cancel.clone()).await?;
    let edge = start_edge(&t, "idle", &proxy_url).await?;
    let edge_store = edge.handle.store.clone().expect("edge has a store");

    put(t.store("root"), "race-1", "Original").await?;
    run_direction(&edge.handle, Direction::Pull).await?;
    put(&edge_store, "race-1", "EdgeEdit").await?;
    run_direction(&edge.handle, Direction::Push).await?;

    let written = statuses
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    assert_eq!(
        written,
        [412],
        "the parent must refuse the stale conditional write"
    );
    let at_root = t
        .body("root", &fhir("Patient", "race-1"))
        .unwrap_or_default();
    assert!(
        at_root.contains("RacingParentEdit"),
        "the parent's change survives: {at_root}"
    );
    let at_edge = edge_store
        .read(&fhir("Patient", "race-1"))?
        .and_then(|r| r.body);
    assert!(at_edge.unwrap_or_default().contains("EdgeEdit"));
    let conflicts = edge
        .handle
        .state
        .conflicts(sync_host::state::ConflictFilter::Open, 10)?;
    let [record] = conflicts.as_slice() else {
        panic!("one open conflict expected: {conflicts:?}");
    };
    assert_eq!(
        (record.direction, record.resource_id.as_str()),
        (Direction::Push, "race-1")
    );
    assert!(
        record.parent.body.contains("RacingParentEdit"),
        "{}",
        record.parent.body
    );
    assert!(
        record.child.body.contains("EdgeEdit"),
        "{}",
        record.child.body
    );
    edge.shutdown().await;
    cancel.cancel();
    t.shutdown().await;
    Ok(())
}

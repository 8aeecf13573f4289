//! Helpers shared by the end-to-end sync tests: a network of real nodes in a temporary
//! directory, store and audit access by node id, counting audit records and served requests;
//! conflict scenarios and a racing proxy live in the submodules.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

pub mod conflict;
pub mod openmrs;
pub mod proxy;
pub mod reports;

use std::collections::BTreeMap;

use sync_host::audit::{AuditQuery, AuditRecord, Outcome, OutcomeKind, SkipReason};
use sync_host::network::{Network, NodeSpec, differences, toml_string};
use sync_host::node::NodeHandle;
use sync_host::state::{ConflictFilter, ConflictRecord};
use sync_host::sync::conflict::Direction;
use sync_host::sync::service::RunReport;
use sync_host_store::store::{Kind, Precondition, ResourceKey, Store};
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
        Ok(node.http_requests(labels).await?)
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
        precondition: Precondition::Any,
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

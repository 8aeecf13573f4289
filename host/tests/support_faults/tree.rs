//! A parent and a child with a fault proxy between them, the parent's writes during a test
//! (many patients, and one "hot" patient updated again and again), and the checks every fault
//! test ends with: the tree converged, nothing was lost, nothing was applied out of order, and
//! every failure the audit recorded was later settled.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sync_host::audit::{Outcome, Timestamp};
use sync_host::network::{Network, NodeSpec, differences, sample};
use sync_host::node::NodeHandle;
use sync_host::state::ConflictFilter;
use sync_host::sync::retry::FailureKind;
use sync_host_store::store::{Kind, ResourceKey, Store};

use super::nodes::{applied_on_pull, audit, audit_of, describe, handle, node, point_parent_at};
use super::proxy::FaultProxy;

/// What the fault tests compare between nodes.
pub const TYPES: &[(Kind, &str)] = &[(Kind::Fhir, "Patient")];
/// The id of the patient the parent keeps updating.
pub const HOT: &str = "hot";

/// The specs of a parent with small feed pages (served five at a time to a catching-up child)
/// and a pull-only child keeping all history.
pub fn parent_and_child(child_interval_secs: u64) -> Vec<NodeSpec> {
    let mut parent = NodeSpec::new("national", None);
    parent.page_size = Some(5);
    parent.catch_up_page_max = Some(25);
    let mut child = NodeSpec::new("clinic", Some("national"));
    child.push = false;
    child.history_retention = 0;
    child.interval_secs = child_interval_secs;
    vec![parent, child]
}

/// A parent and a child driven by hand, the child reaching its parent through a fault proxy;
/// `push` lets the child's own changes travel up as well.
pub async fn tree_behind_proxy(
    dir: &std::path::Path,
    push: bool,
) -> anyhow::Result<(Network, FaultProxy)> {
    let mut specs = parent_and_child(0);
    specs[1].push = push;
    let mut network = Network::start(dir, specs).await?;
    let proxy = FaultProxy::start(node(&network, "national").running.base_url()).await?;
    point_parent_at(&mut network, "clinic", &proxy.url()).await?;
    Ok((network, proxy))
}

/// The parent's writes, numbered so the final state is known.
#[derive(Default)]
pub struct ParentWriter {
    patients: u64,
    hot: u32,
}

impl ParentWriter {
    /// Adds `count` new patients, updating the hot patient after every `hot_every` of them
    /// (0: never).
    pub async fn add_patients(
        &mut self,
        store: &Store,
        count: u64,
        hot_every: u64,
    ) -> anyhow::Result<()> {
        for _ in 0..count {
            let id = format!("p{:05}", self.patients);
            let body = sample::patient(
                &id,
                "Neema",
                &format!("Family-{}", self.patients),
                "1990-05-01",
            );
            sample::put_fhir(store, "Patient", &id, body).await?;
            self.patients += 1;
            if hot_every > 0 && self.patients.is_multiple_of(hot_every) {
                self.update_hot(store).await?;
            }
        }
        Ok(())
    }

    /// Writes the next version of the hot patient.
    pub async fn update_hot(&mut self, store: &Store) -> anyhow::Result<()> {
        self.hot += 1;
        let body = sample::patient(HOT, "Hot", &hot_family(self.hot), "1980-01-01");
        sample::put_fhir(store, "Patient", HOT, body).await?;
        Ok(())
    }

    /// The last version of the hot patient written.
    pub fn hot_version(&self) -> u32 {
        self.hot
    }

    /// Patients written besides the hot one.
    pub fn patients(&self) -> u64 {
        self.patients
    }
}

fn hot_family(version: u32) -> String {
    format!("Version-{version:05}")
}

/// The hot patient's version number in a body.
fn hot_version_in(body: &str) -> Option<u32> {
    let at = body.find("Version-")? + "Version-".len();
    body.get(at..at + 5)?.parse().ok()
}

/// The hot patient's versions as the child's store history has them, oldest first.
pub fn hot_history(store: &Store) -> Vec<u32> {
    let key = ResourceKey::fhir("Patient", HOT);
    let mut history = store.history(&key, None, 100_000).expect("history read");
    history.reverse();
    history
        .iter()
        .filter_map(|v| v.body.as_deref().and_then(hot_version_in))
        .collect()
}

/// The feed sequence of a parent entry id (`urn:sync-host:<node>:change:<n>`).
fn sequence_of(event_id: &str) -> Option<u64> {
    event_id.rsplit(':').next()?.parse().ok()
}

/// The child ends with the parent's last hot version, its history only ever moved forward,
/// and its audit never applied an older parent change after a newer one.
pub fn assert_in_order(child: &NodeHandle, last_hot: u32) {
    let store = child.store.as_ref().expect("child store");
    let history = hot_history(store);
    assert_eq!(history.last(), Some(&last_hot), "child history {history:?}");
    assert!(
        history.windows(2).all(|w| w[0] < w[1]),
        "an older version replaced a newer one on the child: {history:?}"
    );
    let applied: Vec<u64> = audit_of(child, "Patient", HOT)
        .iter()
        .filter(|r| applied_on_pull(r))
        .filter_map(|r| r.event_id.as_deref().and_then(sequence_of))
        .collect();
    assert!(!applied.is_empty());
    assert!(
        applied.windows(2).all(|w| w[0] < w[1]),
        "applied parent changes out of order: {applied:?}"
    );
}

/// No feed entry was applied twice on the child: a replayed page (after a crash, say) finds
/// its effects in place and writes nothing again.
pub fn assert_applied_once(child: &NodeHandle) {
    let mut seen = BTreeSet::new();
    for record in audit(child).iter().filter(|r| applied_on_pull(r)) {
        let entry = (record.resource_id.clone(), record.event_id.clone());
        assert!(seen.insert(entry.clone()), "applied twice: {entry:?}");
    }
}

/// Every resource that failed was later synced, nothing is queued, parked or in conflict,
/// and each failure was settled in the audit. Returns the number of failed records.
pub fn assert_failures_settled(child: &NodeHandle) -> usize {
    let records = audit(child);
    let failed: BTreeSet<(String, String)> = records
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
        .map(|r| (r.resource_type.clone(), r.resource_id.clone()))
        .collect();
    for (resource_type, id) in &failed {
        let of: Vec<_> = records
            .iter()
            .filter(|r| &r.resource_type == resource_type && &r.resource_id == id)
            .collect();
        let last_failure = of
            .iter()
            .rposition(|r| matches!(r.outcome, Outcome::Failed { .. }))
            .unwrap_or(0);
        assert!(
            of[last_failure..]
                .iter()
                .any(|r| matches!(r.outcome, Outcome::Settled { .. })),
            "{resource_type}/{id} failed and was never settled:\n  {}",
            describe(&of.into_iter().cloned().collect::<Vec<_>>())
        );
    }
    let state = &child.state;
    assert!(
        state.retry_queue().expect("queue").is_empty(),
        "retries left"
    );
    assert!(
        state.dead_letters(100).expect("dead").is_empty(),
        "dead letters"
    );
    let open = state
        .conflicts(ConflictFilter::Open, 100)
        .expect("conflicts");
    assert!(open.is_empty(), "open conflicts: {open:?}");
    records
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
        .count()
}

/// Runs rounds (errors allowed) until the nodes hold the same patients and the child has
/// nothing left to retry; returns the rounds run.
pub async fn converge(network: &Network, limit: Duration) -> anyhow::Result<usize> {
    converge_with(network, limit, |_| Ok(())).await
}

/// [`converge`], with `operator` run on the network after every round.
pub async fn converge_with(
    network: &Network,
    limit: Duration,
    operator: impl Fn(&Network) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let mut rounds = 0;
    loop {
        let result = network.sync_round().await;
        rounds += 1;
        operator(network)?;
        let diffs = differences(network, TYPES)?;
        let state = &handle(network, "clinic").state;
        let queued = state.retry_queue()?.len() + state.dead_letters(100)?.len();
        if diffs.is_empty() && queued == 0 {
            return Ok(rounds);
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "not converged after {rounds} rounds: {} differences (first {:?}), {queued} queued \
             or parked, last run {:?}",
            diffs.len(),
            diffs.first(),
            result.err().map(|e| e.to_string())
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What an operator does about events that ran out of retries while the parent kept failing:
/// checks each was a transient failure that used its whole budget, and requeues it. Returns
/// how many were requeued.
pub fn requeue_exhausted(child: &NodeHandle, max_attempts: u32) -> anyhow::Result<usize> {
    for dead in child.state.dead_letters(1000)? {
        anyhow::ensure!(
            dead.last_failure.kind == FailureKind::Transient && dead.attempt >= max_attempts,
            "parked for another reason: {dead:?}"
        );
    }
    Ok(child.state.requeue_all_dead_letters(Timestamp::now())?)
}

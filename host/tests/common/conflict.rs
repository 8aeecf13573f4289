//! Conflict scenarios between a parent `root` and a child `child`: both edit (or one deletes)
//! the same record, and assertions on where the winner ends up and what the record kept.

use std::time::Duration;

use sync_host::audit::Outcome;
use sync_host::network::{NodeSpec, sample};
use sync_host::state::{ConflictRecord, ConflictStatus};
use sync_host::sync::conflict::{Policy, Side};
use sync_host_store::store::Store;

use super::{TestNet, fhir};

pub async fn pair(policy: Policy) -> anyhow::Result<TestNet> {
    let mut child = NodeSpec::new("child", Some("root"));
    child.policy = policy;
    TestNet::start(vec![NodeSpec::new("root", None), child]).await
}

pub async fn put(store: &Store, id: &str, family: &str) -> anyhow::Result<()> {
    let body = sample::patient(id, "Imani", family, "1988-08-08");
    sample::put_fhir(store, "Patient", id, body).await?;
    Ok(())
}

pub fn edit_of(node: &str) -> &'static str {
    if node == "root" {
        "ParentEdit"
    } else {
        "ChildEdit"
    }
}

/// Creates `ids` at the root and syncs them to the child.
pub async fn create_synced(t: &TestNet, ids: &[&str]) -> anyhow::Result<()> {
    for id in ids {
        put(t.store("root"), id, "Original").await?;
    }
    t.settle().await?;
    Ok(())
}

/// Edits `id` on both sides without syncing: `first` edits, and a moment later (so
/// `meta.lastUpdated` differs) the other node does.
pub async fn edit_both(t: &TestNet, id: &str, first: &str) -> anyhow::Result<()> {
    let second = if first == "root" { "child" } else { "root" };
    put(t.store(first), id, edit_of(first)).await?;
    tokio::time::sleep(Duration::from_millis(30)).await;
    put(t.store(second), id, edit_of(second)).await?;
    Ok(())
}

/// The parent deletes `id` while the child edits it.
pub async fn delete_against_edit(t: &TestNet, id: &str) -> anyhow::Result<()> {
    sample::delete_fhir(t.store("root"), "Patient", id).await?;
    put(t.store("child"), id, "ChildEdit").await
}

/// Asserts the conflict on `id` kept the parent's deletion and the child's edit.
pub fn assert_delete_kept_against_edit(t: &TestNet, id: &str, winner: Side) {
    let record = conflict_of(t, id);
    assert_eq!(record.resolution.map(|r| r.winner), Some(winner));
    assert!(record.parent.deleted, "the parent's side is the deletion");
    assert!(
        record.child.body.contains("ChildEdit"),
        "{}",
        record.child.body
    );
}

pub fn conflict_of(t: &TestNet, id: &str) -> ConflictRecord {
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
pub fn assert_settled(t: &TestNet, id: &str, winner: Side, policy: Policy, policy_name: &str) {
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

pub fn assert_holds(t: &TestNet, node: &str, id: &str, text: &str) {
    let body = t.body(node, &fhir("Patient", id)).unwrap_or_default();
    assert!(
        body.contains(text),
        "{node}: {id} should hold {text}: {body}"
    );
}

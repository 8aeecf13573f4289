//! An operator's resolution is announced with write intents like any sync write, and a
//! resolution that died between its first write and its commit can simply be tried again: the
//! side that already holds the chosen content counts as written, and nothing is refused as
//! stale or parked anew.

mod common;

use std::sync::{Arc, Mutex};

use common::TestNet;
use common::conflict::{assert_holds, conflict_of, create_synced, edit_both, pair};
use sync_host::network::sample;
use sync_host::node::resolve::{Resolve, resolve_conflict};
use sync_host::state::{ConflictStatus, DurablePoint, FailureKey, StepHook, SyncState};
use sync_host::sync::conflict::{Direction, Policy, Side};

fn intent_key(direction: Direction, id: &str) -> FailureKey {
    FailureKey {
        direction,
        resource_type: "Patient".into(),
        resource_id: id.into(),
    }
}

fn keep_child() -> Resolve {
    Resolve {
        side: Some(Side::Child),
        body: None,
        by: "clerk".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolution_interrupted_after_its_parent_write_succeeds_when_tried_again()
-> anyhow::Result<()> {
    let t: TestNet = pair(Policy::Manual).await?;
    create_synced(&t, &["again"]).await?;
    edit_both(&t, "again", "root").await?;
    t.settle().await?;
    let parked = conflict_of(&t, "again");
    let chosen = parked.child.body.clone();
    // The first attempt announced its writes and wrote the parent, then the node died.
    let child = t.handle("child");
    let intended = vec![
        (
            intent_key(Direction::Push, "again"),
            parked.child.content_hash.clone(),
        ),
        (
            intent_key(Direction::Pull, "again"),
            parked.child.content_hash.clone(),
        ),
    ];
    child.state.record_intents(&intended, &[]).await?;
    sample::put_fhir(t.store("root"), "Patient", "again", chosen).await?;

    // The parent's version moved past the one in the record, but it holds the choice itself.
    let resolved = resolve_conflict(child, parked.id, keep_child()).await?;
    assert_eq!(resolved.status, ConflictStatus::Resolved);
    for (key, _) in &intended {
        assert!(
            child.state.intents(key)?.is_empty(),
            "the commit clears the resolution's intents: {key:?}"
        );
    }
    t.settle().await?;
    assert!(
        t.conflicts("child")
            .iter()
            .all(|c| c.status == ConflictStatus::Resolved)
    );
    assert_holds(&t, "root", "again", "ChildEdit");
    assert_holds(&t, "child", "again", "ChildEdit");
    t.assert_converged();
    t.shutdown().await;
    Ok(())
}

/// Reads the intents of one resource when the run reaches `AfterIntents`, before its writes.
struct SeeIntents {
    state: SyncState,
    id: String,
    seen: Mutex<Vec<Vec<String>>>,
}

#[async_trait::async_trait]
impl StepHook for SeeIntents {
    async fn reached(&self, point: DurablePoint) {
        if point != DurablePoint::AfterIntents {
            return;
        }
        let mut seen = self.seen.lock().expect("hook lock");
        for direction in [Direction::Push, Direction::Pull] {
            let key = intent_key(direction, &self.id);
            seen.push(self.state.intents(&key).expect("intents readable"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolution_announces_its_writes_and_its_commit_clears_them() -> anyhow::Result<()> {
    let t: TestNet = pair(Policy::Manual).await?;
    create_synced(&t, &["announced"]).await?;
    edit_both(&t, "announced", "root").await?;
    t.settle().await?;
    let parked = conflict_of(&t, "announced");
    let child = t.handle("child");
    let hook = Arc::new(SeeIntents {
        state: child.state.clone(),
        id: "announced".into(),
        seen: Mutex::default(),
    });
    child.state.set_step_hook(Some(hook.clone()));
    resolve_conflict(child, parked.id, keep_child()).await?;
    child.state.set_step_hook(None);
    let seen = hook.seen.lock().expect("hook lock").clone();
    let chosen = parked.child.content_hash.clone();
    assert_eq!(
        seen,
        vec![vec![chosen], vec![]],
        "before its writes the resolution announces the chosen content for the parent, and \
         none for this node, which already holds it"
    );
    for direction in [Direction::Push, Direction::Pull] {
        assert!(
            child
                .state
                .intents(&intent_key(direction, "announced"))?
                .is_empty()
        );
    }
    t.settle().await?;
    assert_holds(&t, "root", "announced", "ChildEdit");
    t.assert_converged();
    t.shutdown().await;
    Ok(())
}

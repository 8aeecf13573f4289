//! Model check of the retry queue: after any sequence of schedules, dead letters, settles and
//! requeues, `due_retries` answers exactly what a plain list would, and the due index is
//! rebuilt if it goes missing.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sync_host::audit::Timestamp;
use sync_host::state::{BatchCommit, FailureKey, LastFailure, RetryEntry, RetryUpdate, SyncState};
use sync_host::sync::conflict::Direction;
use sync_host::sync::retry::FailureKind;

#[derive(Debug, Clone)]
enum Op {
    Schedule { resource: u8, next_at: u64 },
    DeadLetter { resource: u8 },
    Settle { resource: u8 },
    Requeue { resource: u8, now: u64 },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..5, 0u64..50).prop_map(|(resource, next_at)| Op::Schedule { resource, next_at }),
        (0u8..5).prop_map(|resource| Op::DeadLetter { resource }),
        (0u8..5).prop_map(|resource| Op::Settle { resource }),
        (0u8..5, 0u64..50).prop_map(|(resource, now)| Op::Requeue { resource, now }),
    ]
}

fn key(resource: u8) -> FailureKey {
    FailureKey {
        direction: Direction::Push,
        resource_type: "Obs".into(),
        resource_id: format!("o{resource}"),
    }
}

fn entry(resource: u8, next_at: u64) -> RetryEntry {
    RetryEntry {
        id: u64::from(resource),
        key: key(resource),
        event_id: format!("e{resource}"),
        event: serde_json::Value::Null,
        attempt: 1,
        next_at: Timestamp::from_millis(next_at),
        first_failed_at: Timestamp::from_millis(0),
        last_failure: LastFailure {
            kind: FailureKind::Transient,
            status: None,
            message: "timeout".into(),
            at: Timestamp::from_millis(0),
        },
        dead_reason: None,
    }
}

/// The model: resource -> (queued next_at, or None when dead).
type Model = BTreeMap<u8, Option<u64>>;

async fn apply(
    state: &SyncState,
    model: &mut Model,
    op: &Op,
) -> Result<(), sync_host::state::StateError> {
    let batch = match *op {
        Op::Schedule { resource, next_at } => {
            model.insert(resource, Some(next_at));
            BatchCommit {
                retries: vec![RetryUpdate::Schedule(entry(resource, next_at))],
                ..BatchCommit::default()
            }
        }
        Op::DeadLetter { resource } => {
            model.insert(resource, None);
            BatchCommit {
                retries: vec![RetryUpdate::DeadLetter(entry(resource, 0))],
                ..BatchCommit::default()
            }
        }
        Op::Settle { resource } => {
            model.remove(&resource);
            BatchCommit {
                settled: vec![key(resource)],
                ..BatchCommit::default()
            }
        }
        Op::Requeue { resource, now } => {
            if model.get(&resource) == Some(&None) {
                model.insert(resource, Some(now));
            }
            state.requeue_dead_letter(&key(resource), Timestamp::from_millis(now))?;
            return Ok(());
        }
    };
    state.commit_batch(batch).await.map(|_| ())
}

fn expected_due(model: &Model, now: u64) -> Vec<String> {
    let mut due: Vec<(u64, Vec<u8>, String)> = model
        .iter()
        .filter_map(|(r, at)| {
            at.filter(|at| *at <= now)
                .map(|at| (at, key(*r).to_bytes(), format!("o{r}")))
        })
        .collect();
    due.sort();
    due.into_iter().map(|(_, _, id)| id).collect()
}

fn due_ids(state: &SyncState, now: u64) -> Result<Vec<String>, sync_host::state::StateError> {
    Ok(state
        .due_retries(Timestamp::from_millis(now), usize::MAX)?
        .into_iter()
        .map(|e| e.key.resource_id)
        .collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn due_retries_match_the_model(ops in proptest::collection::vec(arb_op(), 1..25), now in 0u64..60) {
        let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| fail(&e))?;
        let dir = tempfile::tempdir().map_err(|e| fail(&e))?;
        let db = sled::open(dir.path()).map_err(|e| fail(&e))?;
        let state = SyncState::open(&db).map_err(|e| fail(&e))?;
        let mut model = Model::new();
        for op in &ops {
            runtime.block_on(apply(&state, &mut model, op)).map_err(|e| fail(&e))?;
        }
        prop_assert_eq!(due_ids(&state, now).map_err(|e| fail(&e))?, expected_due(&model, now));
        let counts = state.counts(Timestamp::from_millis(now)).map_err(|e| fail(&e))?;
        prop_assert_eq!(counts.retries_due, expected_due(&model, now).len());
        prop_assert_eq!(counts.dead_letters, model.values().filter(|v| v.is_none()).count());
        prop_assert_eq!(counts.retries, model.values().filter(|v| v.is_some()).count());

        // Lose the index: opening the state again rebuilds it.
        db.open_tree("sync.retry_due").and_then(|t| t.clear()).map_err(|e| fail(&e))?;
        let reopened = SyncState::open(&db).map_err(|e| fail(&e))?;
        // The counts kept while writing are the ones counted afresh at open.
        prop_assert_eq!(reopened.counts(Timestamp::from_millis(now)).map_err(|e| fail(&e))?, counts);
        prop_assert_eq!(due_ids(&reopened, now).map_err(|e| fail(&e))?, expected_due(&model, now));
    }
}

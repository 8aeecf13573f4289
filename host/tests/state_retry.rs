//! Retry queue and dead letters against a real sled database: due order, parking after the
//! policy gives up, operator requeues.

use rand::SeedableRng;
use rand::rngs::StdRng;
use sync_host::audit::Timestamp;
use sync_host::state::{BatchCommit, FailureKey, LastFailure, RetryEntry, RetryUpdate, SyncState};
use sync_host::sync::conflict::Direction;
use sync_host::sync::retry::{FailureKind, RetryDecision, RetryPolicy};

fn key(direction: Direction, id: &str) -> FailureKey {
    FailureKey {
        direction,
        resource_type: "Encounter".into(),
        resource_id: id.into(),
    }
}

fn entry(state: &SyncState, key: FailureKey, next_at: u64) -> anyhow::Result<RetryEntry> {
    Ok(RetryEntry {
        id: state.new_id()?,
        event_id: format!("urn:uuid:{}", key.resource_id),
        event: serde_json::json!({ "resource_id": key.resource_id }),
        key,
        attempt: 1,
        next_at: Timestamp::from_millis(next_at),
        first_failed_at: Timestamp::from_millis(0),
        last_failure: LastFailure {
            kind: FailureKind::Transient,
            status: Some(502),
            message: "Bad Gateway".into(),
            at: Timestamp::from_millis(0),
        },
        dead_reason: None,
    })
}

fn open() -> anyhow::Result<(tempfile::TempDir, SyncState)> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    Ok((dir, SyncState::open(&db)?))
}

#[tokio::test]
async fn due_retries_come_earliest_first_and_only_when_due() -> anyhow::Result<()> {
    let (_dir, state) = open()?;
    let updates = [("e1", 300), ("e2", 100), ("e3", 200), ("e4", 900)]
        .into_iter()
        .map(|(id, at)| {
            Ok(RetryUpdate::Schedule(entry(
                &state,
                key(Direction::Push, id),
                at,
            )?))
        })
        .collect::<anyhow::Result<_>>()?;
    state
        .commit_batch(BatchCommit {
            retries: updates,
            ..BatchCommit::default()
        })
        .await?;

    let due = state.due_retries(Timestamp::from_millis(300), 10)?;
    let ids: Vec<_> = due.iter().map(|e| e.key.resource_id.as_str()).collect();
    assert_eq!(ids, ["e2", "e3", "e1"]);
    assert_eq!(state.due_retries(Timestamp::from_millis(300), 2)?.len(), 2);
    assert!(
        state
            .due_retries(Timestamp::from_millis(99), 10)?
            .is_empty()
    );
    assert_eq!(state.retry_queue()?.len(), 4);
    Ok(())
}

#[tokio::test]
async fn one_entry_per_resource_and_direction() -> anyhow::Result<()> {
    let (_dir, state) = open()?;
    let first = entry(&state, key(Direction::Pull, "e1"), 100)?;
    let mut later = entry(&state, key(Direction::Pull, "e1"), 500)?;
    later.attempt = 2;
    let other_direction = entry(&state, key(Direction::Push, "e1"), 100)?;
    let batch = BatchCommit {
        retries: vec![
            RetryUpdate::Schedule(first),
            RetryUpdate::Schedule(later.clone()),
            RetryUpdate::Schedule(other_direction),
        ],
        ..BatchCommit::default()
    };
    state.commit_batch(batch).await?;
    assert_eq!(state.retry_queue()?.len(), 2);
    assert_eq!(state.retry_entry(&key(Direction::Pull, "e1"))?, Some(later));
    Ok(())
}

/// Drives one resource through the policy until it is parked, committing each step, then
/// requeues it as an operator would.
#[tokio::test]
async fn exhausted_retries_become_dead_letters_and_can_be_requeued() -> anyhow::Result<()> {
    let (_dir, state) = open()?;
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let mut rng = StdRng::seed_from_u64(11);
    let k = key(Direction::Pull, "e9");
    let mut current = entry(&state, k.clone(), 0)?;
    let mut now = Timestamp::from_millis(1_000);
    for failed in 1..=3 {
        current.attempt = failed;
        let update = match policy.decide(FailureKind::Transient, k.direction, failed, now, &mut rng)
        {
            RetryDecision::RetryAt { next_at, .. } => {
                current.next_at = next_at;
                RetryUpdate::Schedule(current.clone())
            }
            RetryDecision::DeadLetter { reason } => {
                current.dead_reason = Some(reason);
                RetryUpdate::DeadLetter(current.clone())
            }
            RetryDecision::Conflict => anyhow::bail!("transient failures never conflict"),
        };
        state
            .commit_batch(BatchCommit {
                retries: vec![update],
                ..BatchCommit::default()
            })
            .await?;
        now = current
            .next_at
            .saturating_add(std::time::Duration::from_millis(1));
    }
    assert!(
        state.retry_queue()?.is_empty(),
        "parked entries leave the queue"
    );
    let dead = state.dead_letters(10)?;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempt, 3);
    assert!(
        dead[0]
            .dead_reason
            .as_deref()
            .is_some_and(|r| r.contains("3 attempts")),
        "{dead:?}"
    );

    let requeued = state
        .requeue_dead_letter(&k, now)?
        .expect("a dead letter was there");
    assert_eq!(
        (requeued.attempt, requeued.next_at, requeued.dead_reason),
        (0, now, None)
    );
    assert!(state.dead_letter(&k)?.is_none());
    assert_eq!(state.due_retries(now, 10)?.len(), 1);
    assert!(
        state.requeue_dead_letter(&k, now)?.is_none(),
        "nothing left to requeue"
    );
    Ok(())
}

#[tokio::test]
async fn requeue_all_moves_every_dead_letter() -> anyhow::Result<()> {
    let (_dir, state) = open()?;
    let parked = ["a", "b", "c"]
        .into_iter()
        .map(|id| {
            let mut e = entry(&state, key(Direction::Push, id), 0)?;
            e.dead_reason = Some("Invalid failures on Push are permanent".into());
            Ok(RetryUpdate::DeadLetter(e))
        })
        .collect::<anyhow::Result<_>>()?;
    state
        .commit_batch(BatchCommit {
            retries: parked,
            ..BatchCommit::default()
        })
        .await?;
    let counts = state.counts(Timestamp::from_millis(0))?;
    assert_eq!((counts.dead_letters, counts.retries), (3, 0));

    assert_eq!(
        state.requeue_all_dead_letters(Timestamp::from_millis(50))?,
        3
    );
    let counts = state.counts(Timestamp::from_millis(50))?;
    assert_eq!(
        (counts.dead_letters, counts.retries, counts.retries_due),
        (0, 3, 3)
    );
    Ok(())
}

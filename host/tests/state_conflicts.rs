//! Conflicts against a real sled database: detected by the pure decision, parked or decided
//! by policy, listed, shown and resolved with both versions kept.

use sync_host::audit::{AuditQuery, AuditRecord, Outcome, Timestamp};
use sync_host::state::{
    BaseKey, BaseUpdate, BatchCommit, ConflictFilter, ConflictRecord, ConflictStatus,
    ConflictVersion, StateError, SyncState,
};
use sync_host::sync::conflict::{
    Decision, Direction, Policy, PolicySet, Resolution, Side, SyncBase, VersionState, decide,
    resolve,
};

fn version(hash: &str, v: &str, millis: u64) -> VersionState {
    VersionState {
        content_hash: hash.into(),
        version: Some(v.into()),
        last_updated: Some(Timestamp::from_millis(millis)),
        deleted: false,
    }
}

fn body(id: &str, family: &str) -> String {
    format!(r#"{{"resourceType":"Patient","id":"{id}","name":[{{"family":"{family}"}}]}}"#)
}

/// What the engine does on pull for one resource: decide, resolve by policy, and build the
/// conflict record and audit record that go into the batch.
fn pull_conflict(
    state: &SyncState,
    policies: &PolicySet,
    id: &str,
) -> anyhow::Result<(ConflictRecord, AuditRecord)> {
    let base = SyncBase {
        content_hash: "h-base".into(),
        parent_version: Some("1".into()),
        child_version: None,
        left_scope: false,
    };
    let local = version("h-child", "c2", 2_000);
    let incoming = version("h-parent", "2", 3_000);
    assert_eq!(
        decide(Direction::Pull, Some(&base), Some(&local), &incoming),
        Decision::Conflict
    );
    let policy = policies.policy_for("patient");
    let resolution = resolve(Direction::Pull, policy, &local, &incoming);
    let id_num = state.new_id()?;
    let record = ConflictRecord {
        id: id_num,
        direction: Direction::Pull,
        category: "patient".into(),
        resource_type: "Patient".into(),
        resource_id: id.into(),
        event_id: Some(format!("urn:uuid:{id}")),
        detected_at: Timestamp::from_millis(4_000),
        policy,
        parent: ConflictVersion::from_state(&incoming, body(id, "Parent")),
        child: ConflictVersion::from_state(&local, body(id, "Child")),
        status: match resolution {
            Resolution::Parked { .. } => ConflictStatus::Open,
            Resolution::Decided { .. } => ConflictStatus::Resolved,
        },
        resolution: resolution
            .winner()
            .map(|winner| sync_host::state::ConflictResolution {
                winner,
                by: format!("policy:{policy:?}"),
                at: Timestamp::from_millis(4_000),
            }),
    };
    let audit = AuditRecord {
        time: Timestamp::from_millis(4_000),
        node: "clinic-1".into(),
        direction: Direction::Pull,
        action: "updated".into(),
        category: "patient".into(),
        resource_type: "Patient".into(),
        resource_id: id.into(),
        event_id: record.event_id.clone(),
        source_url: None,
        target_url: None,
        plugin: None,
        outcome: Outcome::Conflict {
            conflict_id: id_num,
            policy,
            winner: resolution.winner(),
        },
        duration_ms: 1,
    };
    Ok((record, audit))
}

#[tokio::test]
async fn manual_conflicts_park_and_an_operator_resolves_them() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let state = SyncState::open(&db)?;
    let policies = PolicySet::default();
    let (first, audit_first) = pull_conflict(&state, &policies, "p1")?;
    let (second, audit_second) = pull_conflict(&state, &policies, "p2")?;
    let batch = BatchCommit {
        audit: vec![audit_first, audit_second],
        conflicts: vec![first.clone(), second.clone()],
        ..BatchCommit::default()
    };
    state.commit_batch(batch).await?;

    assert_eq!(
        state.conflicts(ConflictFilter::Open, 10)?,
        vec![second.clone(), first.clone()]
    );
    assert_eq!(
        state.conflicts(ConflictFilter::Open, 1)?,
        vec![second.clone()]
    );
    assert_eq!(
        state.open_conflicts_for("Patient", "p1")?,
        vec![first.clone()]
    );

    let resolved = state.resolve_conflict(
        first.id,
        Side::Child,
        "operator:amina",
        Timestamp::from_millis(9),
    )?;
    assert_eq!(resolved.status, ConflictStatus::Resolved);
    assert_eq!(
        resolved.loser().map(|v| v.body.as_str()),
        Some(body("p1", "Parent").as_str())
    );
    assert_eq!(state.conflict(first.id)?, Some(resolved.clone()));
    assert_eq!(
        state.conflicts(ConflictFilter::Resolved, 10)?,
        vec![resolved]
    );
    assert_eq!(state.conflicts(ConflictFilter::Open, 10)?, vec![second]);

    let again = state.resolve_conflict(
        first.id,
        Side::Parent,
        "operator:ben",
        Timestamp::from_millis(10),
    );
    assert!(matches!(again, Err(StateError::ConflictAlreadyResolved { id }) if id == first.id));
    let missing = state.resolve_conflict(
        424_242,
        Side::Parent,
        "operator:ben",
        Timestamp::from_millis(10),
    );
    assert!(matches!(
        missing,
        Err(StateError::ConflictNotFound { id: 424_242 })
    ));

    let counts = state.counts(Timestamp::from_millis(10))?;
    assert_eq!((counts.open_conflicts, counts.resolved_conflicts), (1, 1));
    Ok(())
}

#[tokio::test]
async fn decided_conflicts_keep_the_loser_and_are_audited() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let state = SyncState::open(&db)?;
    let mut policies = PolicySet::default();
    policies
        .per_category
        .insert("patient".into(), Policy::NewestWins);
    let (record, audit) = pull_conflict(&state, &policies, "p7")?;
    // The parent's state is newer (3 000 ms against 2 000 ms), so it wins and the base moves.
    let new_base = SyncBase {
        content_hash: "h-parent".into(),
        parent_version: Some("2".into()),
        child_version: None,
        left_scope: false,
    };
    let key = BaseKey {
        resource_type: "Patient".into(),
        resource_id: "p7".into(),
    };
    let batch = BatchCommit {
        audit: vec![audit],
        conflicts: vec![record.clone()],
        bases: vec![BaseUpdate {
            key: key.clone(),
            replaces: None,
            base: new_base.clone(),
            agreed: true,
        }],
        ..BatchCommit::default()
    };
    state.commit_batch(batch).await?;

    assert!(state.conflicts(ConflictFilter::Open, 10)?.is_empty());
    let stored = state.conflict(record.id)?.expect("stored");
    assert_eq!(
        stored.resolution.as_ref().map(|r| r.winner),
        Some(Side::Parent)
    );
    assert_eq!(
        stored.loser().map(|v| v.body.clone()),
        Some(body("p7", "Child"))
    );
    assert_eq!(state.base(&key)?, Some(new_base));
    let page = state.audit().query(&AuditQuery::default())?;
    let outcome = &page.entries[0].record.outcome;
    assert_eq!(
        outcome,
        &Outcome::Conflict {
            conflict_id: record.id,
            policy: Policy::NewestWins,
            winner: Some(Side::Parent)
        }
    );
    Ok(())
}

/// A commit that sets the sync base of a resource with an open conflict closes the conflict:
/// both sides hold the same content again. The record keeps both versions, names the side
/// whose content the base is, and the index of open conflicts is rebuilt when the state opens.
#[tokio::test]
async fn a_base_set_on_a_conflicted_resource_closes_its_open_conflicts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let key = BaseKey {
        resource_type: "Patient".into(),
        resource_id: "p3".into(),
    };
    let db = sled::open(dir.path())?;
    let (parked, other) = {
        let state = SyncState::open(&db)?;
        let policies = PolicySet::default();
        let (parked, audit) = pull_conflict(&state, &policies, "p3")?;
        let (other, other_audit) = pull_conflict(&state, &policies, "p4")?;
        let batch = BatchCommit {
            audit: vec![audit, other_audit],
            conflicts: vec![parked.clone(), other.clone()],
            ..BatchCommit::default()
        };
        state.commit_batch(batch).await?;
        (parked, other)
    };
    // Opened again, the state finds the open conflicts in the stored records.
    let state = SyncState::open(&db)?;
    assert_eq!(
        state.open_conflicts_for("Patient", "p3")?,
        vec![parked.clone()]
    );

    // A base that only steers the next decision (the winner stayed on one side) leaves the
    // conflict open.
    let steering = BatchCommit {
        bases: vec![BaseUpdate {
            key: key.clone(),
            replaces: None,
            base: SyncBase {
                content_hash: "h-child".into(),
                parent_version: Some("1".into()),
                child_version: Some("c2".into()),
                left_scope: false,
            },
            agreed: false,
        }],
        ..BatchCommit::default()
    };
    state.commit_batch(steering).await?;
    assert_eq!(
        state.open_conflicts_for("Patient", "p3")?,
        vec![parked.clone()]
    );
    let steered = state.base(&key)?;

    // The child took the parent's content by hand: the next sync finds both sides equal.
    let agreed = SyncBase {
        content_hash: "h-parent".into(),
        parent_version: Some("2".into()),
        child_version: Some("c3".into()),
        left_scope: false,
    };
    let batch = BatchCommit {
        bases: vec![BaseUpdate {
            key: key.clone(),
            replaces: steered,
            base: agreed.clone(),
            agreed: true,
        }],
        ..BatchCommit::default()
    };
    state.commit_batch(batch).await?;

    assert!(state.open_conflicts_for("Patient", "p3")?.is_empty());
    let closed = state.conflict(parked.id)?.expect("kept");
    assert_eq!(closed.status, ConflictStatus::Resolved);
    let how = closed.resolution.clone().expect("resolved");
    assert_eq!(
        (how.winner, how.by.as_str()),
        (Side::Parent, "sync:sides-agree")
    );
    assert_eq!(
        (closed.parent.clone(), closed.child.clone()),
        (parked.parent, parked.child)
    );
    assert_eq!(state.base(&key)?, Some(agreed));
    // Another resource's conflict is untouched.
    assert_eq!(state.conflicts(ConflictFilter::Open, 10)?, vec![other]);
    Ok(())
}

/// A batch that resolves one record of a resource closes the resource's other open records
/// with the same decision, naming the record that carried it.
#[tokio::test]
async fn other_open_records_of_a_resource_take_the_resolution_of_the_one_resolved()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let state = SyncState::open(&db)?;
    let policies = PolicySet::default();
    let (first, audit_first) = pull_conflict(&state, &policies, "p5")?;
    let (second, audit_second) = pull_conflict(&state, &policies, "p5")?;
    state
        .commit_batch(BatchCommit {
            audit: vec![audit_first, audit_second],
            conflicts: vec![first.clone(), second.clone()],
            ..BatchCommit::default()
        })
        .await?;

    let mut decided = second.clone();
    decided.status = ConflictStatus::Resolved;
    decided.resolution = Some(sync_host::state::ConflictResolution {
        winner: Side::Child,
        by: "operator:amina:child".into(),
        at: Timestamp::from_millis(9_000),
    });
    let batch = BatchCommit {
        conflicts: vec![decided.clone()],
        bases: vec![BaseUpdate {
            key: BaseKey {
                resource_type: "Patient".into(),
                resource_id: "p5".into(),
            },
            replaces: None,
            base: SyncBase {
                content_hash: "h-child".into(),
                parent_version: Some("3".into()),
                child_version: Some("c2".into()),
                left_scope: false,
            },
            agreed: true,
        }],
        ..BatchCommit::default()
    };
    state.commit_batch(batch).await?;

    assert!(state.open_conflicts_for("Patient", "p5")?.is_empty());
    assert_eq!(state.conflict(second.id)?, Some(decided));
    let other = state.conflict(first.id)?.expect("kept");
    let how = other.resolution.expect("resolved");
    assert_eq!(how.winner, Side::Child);
    assert_eq!(
        how.by,
        format!("operator:amina:child (with conflict {})", second.id)
    );
    Ok(())
}

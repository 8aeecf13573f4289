//! Batch commits against a real sled database: all effects visible together, durable across
//! a reopen, and nothing at all when the transaction aborts.

use sync_host::audit::{AuditQuery, AuditRecord, Outcome, OutcomeKind, PluginRef, Timestamp};
use sync_host::state::{
    BaseKey, BaseUpdate, BatchCommit, ConflictFilter, ConflictRecord, ConflictStatus,
    ConflictVersion, FailureKey, LastFailure, Marker, MarkerKey, RetryEntry, RetryUpdate,
    StateError, SyncState,
};
use sync_host::sync::conflict::{Direction, Policy, SyncBase};
use sync_host::sync::retry::FailureKind;

fn audit(resource_id: &str, outcome: Outcome) -> AuditRecord {
    AuditRecord {
        time: Timestamp::from_millis(1_700_000_000_000),
        node: "clinic-1".into(),
        direction: Direction::Pull,
        action: "updated".into(),
        category: "patient".into(),
        resource_type: "Patient".into(),
        resource_id: resource_id.into(),
        event_id: Some(format!("urn:uuid:{resource_id}")),
        source_url: Some("http://127.0.0.1:9/ws/fhir2/R4".into()),
        target_url: Some("embedded".into()),
        plugin: Some(PluginRef {
            name: "fhir".into(),
            version: "0.1.0".into(),
        }),
        outcome,
        duration_ms: 12,
    }
}

fn marker_key() -> MarkerKey {
    MarkerKey {
        parent_node: "district-7".into(),
        feed: "patient".into(),
    }
}

fn marker(entry: &str) -> Marker {
    Marker {
        entry_id: entry.into(),
        sequence: Some(42),
        page: None,
        updated_at: Timestamp::from_millis(5),
    }
}

fn failure_key(id: &str) -> FailureKey {
    FailureKey {
        direction: Direction::Pull,
        resource_type: "Patient".into(),
        resource_id: id.into(),
    }
}

fn retry_entry(state: &SyncState, id: &str) -> anyhow::Result<RetryEntry> {
    Ok(RetryEntry {
        id: state.new_id()?,
        key: failure_key(id),
        event_id: format!("urn:uuid:{id}"),
        event: serde_json::json!({ "id": format!("urn:uuid:{id}"), "resource_id": id }),
        attempt: 1,
        next_at: Timestamp::from_millis(100),
        first_failed_at: Timestamp::from_millis(50),
        last_failure: LastFailure {
            kind: FailureKind::Transient,
            status: Some(503),
            message: "Service Unavailable".into(),
            at: Timestamp::from_millis(50),
        },
        dead_reason: None,
    })
}

fn conflict(state: &SyncState, id: &str) -> anyhow::Result<ConflictRecord> {
    let version = |v: &str, body: &str| ConflictVersion {
        version: Some(v.into()),
        content_hash: format!("hash-{body}"),
        last_updated: None,
        deleted: false,
        body: format!(r#"{{"resourceType":"Patient","id":"{id}","gender":"{body}"}}"#),
    };
    Ok(ConflictRecord {
        id: state.new_id()?,
        direction: Direction::Pull,
        category: "patient".into(),
        resource_type: "Patient".into(),
        resource_id: id.into(),
        event_id: None,
        detected_at: Timestamp::from_millis(7),
        policy: Policy::Manual,
        parent: version("3", "female"),
        child: version("2", "male"),
        status: ConflictStatus::Open,
        resolution: None,
    })
}

/// Opens the database at `path`, waiting while sled's background flusher of a just-dropped
/// handle still holds the file lock.
fn reopen(path: &std::path::Path) -> anyhow::Result<sled::Db> {
    for _ in 0..100 {
        match sled::open(path) {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(sled::open(path)?)
}

fn base(hash: &str) -> SyncBase {
    SyncBase {
        content_hash: hash.into(),
        parent_version: Some("1".into()),
        child_version: Some("1".into()),
        left_scope: false,
    }
}

/// The first base of resource `id`.
fn first_base(id: &str, hash: &str) -> BaseUpdate {
    BaseUpdate {
        key: base_key(id),
        replaces: None,
        base: base(hash),
        agreed: true,
    }
}

fn base_key(id: &str) -> BaseKey {
    BaseKey {
        resource_type: "Patient".into(),
        resource_id: id.into(),
    }
}

#[tokio::test]
async fn every_effect_of_a_batch_is_visible_after_commit() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let state = SyncState::open(&db)?;
    let parked = conflict(&state, "p3")?;
    let batch = BatchCommit {
        audit: vec![
            audit("p1", Outcome::Applied),
            audit("p2", Outcome::Unchanged),
        ],
        bases: vec![first_base("p1", "h1"), first_base("p2", "h2")],
        retries: vec![RetryUpdate::Schedule(retry_entry(&state, "p4")?)],
        conflicts: vec![parked.clone()],
        settled: vec![],
        marker: Some((marker_key(), marker("urn:uuid:entry-9"))),
    };
    let report = state.commit_batch(batch).await?;
    assert_eq!(report.audit_keys.len(), 2);
    assert!(report.settled.is_empty());

    assert_eq!(
        state.marker(&marker_key())?,
        Some(marker("urn:uuid:entry-9"))
    );
    assert_eq!(state.base(&base_key("p1"))?, Some(base("h1")));
    assert_eq!(state.base(&base_key("p2"))?, Some(base("h2")));
    assert_eq!(
        state.retry_entry(&failure_key("p4"))?.map(|e| e.attempt),
        Some(1)
    );
    assert_eq!(state.conflicts(ConflictFilter::Open, 10)?, vec![parked]);
    assert_eq!(
        state.audit().query(&AuditQuery::default())?.entries.len(),
        2
    );

    let counts = state.counts(Timestamp::from_millis(1_000))?;
    assert_eq!(
        (
            counts.markers,
            counts.bases,
            counts.retries,
            counts.retries_due
        ),
        (1, 2, 1, 1)
    );
    assert_eq!((counts.open_conflicts, counts.audit_records), (1, 2));
    Ok(())
}

#[tokio::test]
async fn marker_and_audit_survive_reopen_together() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let db = sled::open(dir.path())?;
        let state = SyncState::open(&db)?;
        let batch = BatchCommit {
            audit: vec![audit("p1", Outcome::Applied)],
            bases: vec![first_base("p1", "h1")],
            marker: Some((marker_key(), marker("urn:uuid:entry-1"))),
            ..BatchCommit::default()
        };
        state.commit_batch(batch).await?;
    }
    let db = reopen(dir.path())?;
    let state = SyncState::open(&db)?;
    assert_eq!(
        state.marker(&marker_key())?,
        Some(marker("urn:uuid:entry-1"))
    );
    let page = state.audit().query(&AuditQuery::default())?;
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].record.resource_id, "p1");
    assert_eq!(state.base(&base_key("p1"))?, Some(base("h1")));
    assert_eq!(
        state.markers()?,
        vec![(marker_key(), marker("urn:uuid:entry-1"))]
    );
    Ok(())
}

#[tokio::test]
async fn an_aborted_commit_leaves_no_trace() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let state = SyncState::open(&db)?;
    // Plant an unreadable retry entry: settling it must abort the whole transaction.
    db.open_tree("sync.retries")?
        .insert(failure_key("bad").to_bytes(), &b"not json"[..])?;
    let batch = BatchCommit {
        audit: vec![audit("bad", Outcome::Applied)],
        bases: vec![first_base("bad", "h")],
        settled: vec![failure_key("bad")],
        marker: Some((marker_key(), marker("urn:uuid:entry-2"))),
        ..BatchCommit::default()
    };
    let err = state
        .commit_batch(batch)
        .await
        .expect_err("corrupt entry must abort");
    assert!(
        matches!(
            err,
            StateError::Decode {
                tree: "sync.retries",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(state.marker(&marker_key())?, None);
    assert_eq!(state.base(&base_key("bad"))?, None);
    assert!(state.audit().is_empty());
    Ok(())
}

#[tokio::test]
async fn success_settles_earlier_failures_and_audits_them() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let state = SyncState::open(&db)?;
    let queued = retry_entry(&state, "p1")?;
    let mut parked = retry_entry(&state, "p2")?;
    parked.dead_reason = Some("invalid".into());
    let failures = BatchCommit {
        retries: vec![
            RetryUpdate::Schedule(queued.clone()),
            RetryUpdate::DeadLetter(parked.clone()),
        ],
        ..BatchCommit::default()
    };
    state.commit_batch(failures).await?;
    assert_eq!(state.dead_letters(10)?, vec![parked.clone()]);

    let success = BatchCommit {
        audit: vec![audit("p1", Outcome::Applied), audit("p2", Outcome::Applied)],
        settled: vec![
            failure_key("p1"),
            failure_key("p2"),
            failure_key("never-failed"),
        ],
        ..BatchCommit::default()
    };
    let report = state.commit_batch(success).await?;
    assert_eq!(report.settled, vec![queued.clone(), parked.clone()]);
    assert_eq!(report.audit_keys.len(), 4);
    assert!(state.retry_queue()?.is_empty());
    assert!(state.dead_letters(10)?.is_empty());

    let settled = state.audit().query(&AuditQuery {
        outcome: Some(OutcomeKind::Settled),
        ..AuditQuery::default()
    })?;
    let mut cited: Vec<_> = settled
        .entries
        .iter()
        .map(|e| match e.record.outcome {
            Outcome::Settled { earlier_failure_id } => Ok((earlier_failure_id, e.record.clone())),
            ref other => Err(anyhow::anyhow!("unexpected outcome {other:?}")),
        })
        .collect::<anyhow::Result<_>>()?;
    cited.sort_by_key(|(id, _)| *id);
    assert_eq!(
        cited.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![queued.id, parked.id]
    );
    // Settled records carry the settling success's context.
    assert_eq!(cited[0].1.plugin, audit("p1", Outcome::Applied).plugin);
    assert_eq!(cited[0].1.resource_id, "p1");
    Ok(())
}

#[tokio::test]
async fn a_base_replaced_since_it_was_read_aborts_the_batch() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let state = SyncState::open(&db)?;
    state
        .commit_batch(BatchCommit {
            bases: vec![first_base("p1", "h1")],
            ..BatchCommit::default()
        })
        .await?;
    // Two writers decided against h1; the first moves the base to h2.
    let from_h1 = |hash: &str| BaseUpdate {
        key: base_key("p1"),
        replaces: Some(base("h1")),
        base: base(hash),
        agreed: true,
    };
    state
        .commit_batch(BatchCommit {
            bases: vec![from_h1("h2")],
            ..BatchCommit::default()
        })
        .await?;
    // The second, still based on h1, must not overwrite h2, and nothing of it lands.
    let raced = BatchCommit {
        audit: vec![audit("p1", Outcome::Applied)],
        bases: vec![from_h1("h3")],
        marker: Some((marker_key(), marker("urn:uuid:entry-raced"))),
        ..BatchCommit::default()
    };
    let error = state
        .commit_batch(raced)
        .await
        .expect_err("a lost race must abort");
    assert!(error.to_string().contains("Patient/p1"), "{error}");
    assert_eq!(state.base(&base_key("p1"))?, Some(base("h2")));
    assert_eq!(state.marker(&marker_key())?, None);
    assert_eq!(state.audit().len(), 0);
    Ok(())
}

#[tokio::test]
async fn concurrent_commits_all_land() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let state = SyncState::open(&db)?;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let state = state.clone();
            tokio::spawn(async move {
                let id = format!("p{i}");
                let batch = BatchCommit {
                    audit: vec![audit(&id, Outcome::Applied)],
                    bases: vec![first_base(&id, &id)],
                    marker: Some((marker_key(), marker(&id))),
                    ..BatchCommit::default()
                };
                state.commit_batch(batch).await
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    assert_eq!(state.audit().len(), 8);
    assert_eq!(state.counts(Timestamp::from_millis(0))?.bases, 8);
    let last = state
        .marker(&marker_key())?
        .map(|m| m.entry_id)
        .unwrap_or_default();
    assert!(
        last.starts_with('p'),
        "one of the batches set the marker: {last}"
    );
    Ok(())
}

/// A feed page's worth of effects commits in one transaction plus one flush; prints the
/// measured cost per batch.
#[tokio::test]
async fn batches_of_a_feed_page_commit_quickly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let state = SyncState::open(&db)?;
    let started = std::time::Instant::now();
    let batches = 20;
    for b in 0..batches {
        let ids: Vec<String> = (0..100).map(|i| format!("p{b}-{i}")).collect();
        let batch = BatchCommit {
            audit: ids.iter().map(|id| audit(id, Outcome::Applied)).collect(),
            bases: ids.iter().map(|id| first_base(id, id)).collect(),
            settled: ids.iter().map(|id| failure_key(id)).collect(),
            marker: Some((marker_key(), marker(&format!("entry-{b}")))),
            ..BatchCommit::default()
        };
        state.commit_batch(batch).await?;
    }
    let per_batch = started.elapsed() / batches;
    println!("batch of 100 events (audit + base + settle check + marker, flushed): {per_batch:?}");
    assert_eq!(state.audit().len(), 2_000);
    assert_eq!(
        state.marker(&marker_key())?.map(|m| m.entry_id),
        Some("entry-19".into())
    );
    assert!(
        per_batch < std::time::Duration::from_secs(5),
        "{per_batch:?} per batch"
    );
    Ok(())
}

#[tokio::test]
async fn the_newest_failures_are_kept_as_committed_and_recalled_at_open() -> anyhow::Result<()> {
    let failed = |id: &str| {
        audit(
            id,
            Outcome::Failed {
                failure: FailureKind::Transient,
                status: Some(503),
                message: format!("{id} unavailable"),
                attempt: 1,
            },
        )
    };
    let dir = tempfile::tempdir()?;
    {
        let db = sled::open(dir.path())?;
        let state = SyncState::open(&db)?;
        let mut records: Vec<AuditRecord> = (0..60).map(|n| failed(&format!("f{n}"))).collect();
        records.push(audit("ok", Outcome::Applied));
        let batch = BatchCommit {
            audit: records,
            ..BatchCommit::default()
        };
        state.commit_batch(batch).await?;
        let kept = state.recent_failures();
        assert_eq!(kept.len(), 50, "bounded");
        assert_eq!(kept[0].resource_id, "f59", "newest first");
        assert!(kept.iter().all(|r| r.outcome.kind() == OutcomeKind::Failed));
    }
    let db = reopen(dir.path())?;
    let state = SyncState::open(&db)?;
    let recalled = state.recent_failures();
    assert_eq!(recalled.len(), 50);
    assert!(
        recalled
            .iter()
            .all(|r| r.outcome.kind() == OutcomeKind::Failed)
    );
    Ok(())
}

//! Durable sync state in sled: feed markers, per-resource sync bases, the retry queue, dead
//! letters, conflicts and the audit log, all advanced together by one atomic batch commit.

mod commit;
mod conflicts;
mod counts;
mod due_index;
mod intents;
mod keys;
mod open_index;
mod queue;
mod seed;
mod step_hook;
mod types;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use commit::{BaseUpdate, BatchCommit, CommitReport};
pub use conflicts::SIDES_AGREE;
pub use counts::OUTCOME_KINDS;
pub use keys::{BaseKey, FailureKey, MarkerKey};
pub use step_hook::{DurablePoint, StepHook};
pub use types::{
    ConflictFilter, ConflictRecord, ConflictResolution, ConflictStatus, ConflictVersion,
    DirectionCounts, LastFailure, Marker, RetryEntry, RetryUpdate, StatusCounts,
};

use crate::audit::{AuditError, AuditLog, OutcomeKind, Timestamp};
use crate::sync::conflict::Direction;
use crate::sync::conflict::SyncBase;

/// What can go wrong with the sync state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// sled failed.
    #[error("sync state storage failed")]
    Storage(#[from] sled::Error),
    /// The audit part of a commit failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A value could not be serialised.
    #[error("could not encode {what}")]
    Encode {
        /// What was being written.
        what: String,
        /// The serialiser's error.
        source: serde_json::Error,
    },
    /// A stored value could not be read back.
    #[error("unreadable value in tree `{tree}`")]
    Decode {
        /// The tree.
        tree: &'static str,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// No conflict has this id.
    #[error("no conflict with id {id}")]
    ConflictNotFound {
        /// The id asked for.
        id: u64,
    },
    /// The flush task was cancelled or panicked; durability of the last batch is unknown.
    #[error("flushing the sync state did not finish: {reason}")]
    FlushInterrupted {
        /// Why the task ended.
        reason: String,
    },
    /// Another writer changed the sync base of a resource after this batch read it. Nothing
    /// of the batch was committed; running it again decides against the new base.
    #[error(
        "the sync base of {resource} changed while this batch was deciding; nothing was committed"
    )]
    BaseRaced {
        /// `Type/id` of the resource.
        resource: String,
    },
    /// The conflict was already resolved.
    #[error("conflict {id} is already resolved")]
    ConflictAlreadyResolved {
        /// The id asked for.
        id: u64,
    },
}

/// Audit records looked at when the state opens, to recall the most recent failures.
pub const FAILURE_RECALL_SCAN: usize = 10_000;

pub(crate) const MARKERS: &str = "sync.markers";
pub(crate) const BASES: &str = "sync.bases";
pub(crate) const RETRIES: &str = "sync.retries";
pub(crate) const DEAD_LETTERS: &str = "sync.dead_letters";
pub(crate) const CONFLICTS: &str = "sync.conflicts";
pub(crate) const AUDIT: &str = "sync.audit";

/// The sync state of one node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SyncState {
    db: sled::Db,
    markers: sled::Tree,
    bases: sled::Tree,
    retries: sled::Tree,
    dead_letters: sled::Tree,
    retry_due: sled::Tree,
    conflicts: sled::Tree,
    intents: sled::Tree,
    audit: AuditLog,
    /// Sync bases stored (sled counts only by scanning, and status reads this on every call).
    base_count: counts::BaseCount,
    /// Entries of the retry queue and the dead letters, kept by their writers.
    queue_count: counts::QueueCounts,
    /// Audit records committed since open, by direction and outcome.
    outcomes: counts::OutcomeCounts,
    /// The newest failed events.
    recent_failures: counts::RecentFailures,
    /// The resources with open conflicts.
    open: open_index::OpenIndex,
    /// Fault injection between durable steps; empty in normal operation.
    step_hook: step_hook::HookSlot,
    /// Held by whoever decides and commits sync bases (a pull or push batch, a conflict
    /// resolution), so the two directions of a node never decide one resource at once.
    deciding: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl SyncState {
    /// Opens (creating if needed) the state trees in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, StateError> {
        let state = Self {
            db: db.clone(),
            markers: db.open_tree(MARKERS)?,
            bases: db.open_tree(BASES)?,
            retries: db.open_tree(RETRIES)?,
            dead_letters: db.open_tree(DEAD_LETTERS)?,
            retry_due: db.open_tree(due_index::RETRY_DUE)?,
            conflicts: db.open_tree(CONFLICTS)?,
            intents: db.open_tree(intents::INTENTS)?,
            audit: AuditLog::new(db.open_tree(AUDIT)?),
            base_count: Default::default(),
            queue_count: Default::default(),
            outcomes: Default::default(),
            recent_failures: Default::default(),
            open: Default::default(),
            step_hook: Default::default(),
            deciding: Default::default(),
        };
        let open = open_index::OpenIndex::build(&state.conflicts)?;
        let base_count = counts::BaseCount::counted(&state.bases);
        let queue_count = counts::QueueCounts::counted(&state.retries, &state.dead_letters)?;
        let state = Self {
            open,
            base_count,
            queue_count,
            ..state
        };
        due_index::rebuild_if_missing(&state.retries, &state.retry_due)?;
        state.recall_failures()?;
        Ok(state)
    }

    /// Waits for the right to decide and commit sync bases. Hold the guard from the first
    /// base read of a batch until its commit is durable.
    pub async fn deciding(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.deciding.clone().lock_owned().await
    }

    /// Installs (or, with `None`, removes) the hook called between durable steps; see
    /// [`StepHook`]. For tests that stop a node between two durable steps.
    pub fn set_step_hook(&self, hook: Option<std::sync::Arc<dyn StepHook>>) {
        self.step_hook.set(hook);
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// A new database-unique id for a conflict or retry entry.
    pub fn new_id(&self) -> Result<u64, StateError> {
        Ok(self.db.generate_id()?)
    }

    /// The marker of one feed.
    pub fn marker(&self, key: &MarkerKey) -> Result<Option<Marker>, StateError> {
        get_json(&self.markers, MARKERS, &key.to_bytes())
    }

    /// Every feed marker.
    pub fn markers(&self) -> Result<Vec<(MarkerKey, Marker)>, StateError> {
        let mut out = Vec::new();
        for item in self.markers.iter() {
            let (key, value) = item?;
            // Keys are only ever written by `MarkerKey::to_bytes`; skip anything else.
            if let Some(key) = MarkerKey::from_bytes(&key) {
                out.push((key, decode(MARKERS, &value)?));
            }
        }
        Ok(out)
    }

    /// The sync base of one resource.
    pub fn base(&self, key: &BaseKey) -> Result<Option<SyncBase>, StateError> {
        get_json(&self.bases, BASES, &key.to_bytes())
    }

    /// Figures for `status`, reports and `/metrics`. Every count is kept by the writers and
    /// read in constant time, except the retries due now, which walks only the due part of
    /// the due-time index, and the markers (one per feed).
    pub fn counts(&self, now: Timestamp) -> Result<StatusCounts, StateError> {
        let of = |direction| {
            let (retries, dead_letters) = self.queue_count.of(direction);
            DirectionCounts {
                retries,
                dead_letters,
                open_conflicts: self.open.open_in(direction),
            }
        };
        let (pull, push) = (of(Direction::Pull), of(Direction::Push));
        let (open_conflicts, resolved_conflicts) = self.open.counts();
        let retries_due = self
            .retry_due
            .range(..due_index::due_upper_bound(now))
            .count();
        Ok(StatusCounts {
            markers: self.markers.len(),
            bases: self.base_count.get(),
            retries: pull.retries + push.retries,
            retries_due,
            dead_letters: pull.dead_letters + push.dead_letters,
            open_conflicts,
            resolved_conflicts,
            audit_records: self.audit.len(),
            pull,
            push,
        })
    }

    /// Audit records of `direction` with outcome `kind` committed since the state was opened.
    pub fn outcomes_since_open(&self, direction: Direction, kind: OutcomeKind) -> u64 {
        self.outcomes.get(direction, kind)
    }

    /// The newest failed events (at most 50), newest first, without reading the audit.
    pub fn recent_failures(&self) -> Vec<crate::audit::AuditRecord> {
        self.recent_failures.get()
    }

    /// Fills the recent failures from the newest audit records, looking at no more than
    /// [`FAILURE_RECALL_SCAN`] of them.
    fn recall_failures(&self) -> Result<(), StateError> {
        let query = crate::audit::AuditQuery {
            outcome: Some(OutcomeKind::Failed),
            limit: counts::RecentFailures::KEPT,
            ..Default::default()
        };
        let newest_first = self.audit.recent(&query, FAILURE_RECALL_SCAN)?;
        self.recent_failures
            .note(newest_first.iter().rev().map(|entry| &entry.record));
        Ok(())
    }

    /// The oldest open conflicts, at most `limit`, found through the in-memory index.
    pub fn oldest_open_conflicts(&self, limit: usize) -> Result<Vec<ConflictRecord>, StateError> {
        let mut out = Vec::new();
        for id in self.open.oldest_open(limit) {
            if let Some(record) = self.conflict(id)?
                && record.status == ConflictStatus::Open
            {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// A tree of the sync state's database for a part of the node that keeps its own records
    /// beside the state (the reports of the nodes below).
    pub fn tree(&self, name: &'static str) -> Result<sled::Tree, StateError> {
        Ok(self.db.open_tree(name)?)
    }

    /// Waits until everything written so far is on disk.
    ///
    /// Runs sled's blocking `flush` on the tokio blocking pool rather than `flush_async`:
    /// `flush_async` waits on sled's own I/O thread pool, which also performs the buffer
    /// writes a flush waits for, so a few concurrent `flush_async` calls (from several
    /// batches, or several databases in one process) can occupy every pool thread and hang
    /// forever (sled 0.34.7).
    pub async fn flush(&self) -> Result<(), StateError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StateError::FlushInterrupted {
                reason: e.to_string(),
            })??;
        Ok(())
    }
}

pub(crate) fn encode<T: Serialize>(
    what: impl FnOnce() -> String,
    value: &T,
) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(value).map_err(|source| StateError::Encode {
        what: what(),
        source,
    })
}

pub(crate) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    bytes: &[u8],
) -> Result<T, StateError> {
    serde_json::from_slice(bytes).map_err(|source| StateError::Decode { tree, source })
}

fn get_json<T: DeserializeOwned>(
    tree: &sled::Tree,
    name: &'static str,
    key: &[u8],
) -> Result<Option<T>, StateError> {
    tree.get(key)?.map(|v| decode(name, &v)).transpose()
}

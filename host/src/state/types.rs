//! Values stored in the sync-state trees: markers, retry entries, dead letters, conflicts.

use serde::{Deserialize, Serialize};

use crate::audit::Timestamp;
use crate::state::FailureKey;
use crate::sync::conflict::{Direction, Policy, Side, TOMBSTONE_HASH, VersionState};
use crate::sync::retry::FailureKind;

/// The last processed entry of one feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The Atom id of the last processed entry.
    pub entry_id: String,
    /// Its sequence number, when the feed carries one.
    pub sequence: Option<u64>,
    /// The archive page that holds it, so reading resumes there.
    pub page: Option<String>,
    /// When the marker advanced.
    pub updated_at: Timestamp,
}

/// The most recent failure of a queued event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastFailure {
    /// The failure's class.
    pub kind: FailureKind,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// The error text for the operator.
    pub message: String,
    /// When it happened.
    pub at: Timestamp,
}

/// An event waiting for another attempt, or parked as a dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryEntry {
    /// Unique id (from [`crate::state::SyncState::new_id`]); audit `Settled` records cite it.
    pub id: u64,
    /// The resource and direction.
    pub key: FailureKey,
    /// The feed entry id of the newest failed event for this resource.
    pub event_id: String,
    /// The event itself, as the engine serialises it, to be replayed.
    pub event: serde_json::Value,
    /// Failed attempts so far.
    pub attempt: u32,
    /// Not to be tried before this.
    pub next_at: Timestamp,
    /// When the first attempt failed.
    pub first_failed_at: Timestamp,
    /// The latest failure.
    pub last_failure: LastFailure,
    /// Why it was parked, for dead letters.
    pub dead_reason: Option<String>,
}

/// A change to the retry queue, part of a batch commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryUpdate {
    /// Queue (or re-queue) for another attempt; removes any dead letter for the key.
    Schedule(RetryEntry),
    /// Park as a dead letter; removes it from the retry queue.
    DeadLetter(RetryEntry),
}

/// One side's version in a conflict, body included so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictVersion {
    /// The side's version id.
    pub version: Option<String>,
    /// The canonical content hash.
    pub content_hash: String,
    /// `meta.lastUpdated`, when known.
    pub last_updated: Option<Timestamp>,
    /// True for a tombstone.
    pub deleted: bool,
    /// The raw JSON body as that side returned it (empty for a bodiless tombstone).
    pub body: String,
}

impl ConflictVersion {
    /// Pairs a decision-level state with its body.
    pub fn from_state(state: &VersionState, body: String) -> Self {
        Self {
            version: state.version.clone(),
            content_hash: state.content_hash.clone(),
            last_updated: state.last_updated,
            deleted: state.deleted,
            body,
        }
    }

    /// The hash sync bases compare with: all tombstones compare equal.
    pub fn effective_hash(&self) -> &str {
        if self.deleted {
            TOMBSTONE_HASH
        } else {
            &self.content_hash
        }
    }
}

/// Whether an operator still has to look at a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictStatus {
    /// Parked, waiting for a decision.
    Open,
    /// A policy or an operator picked a winner.
    Resolved,
}

/// Who settled a conflict, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictResolution {
    /// The winning side.
    pub winner: Side,
    /// `policy:<name>` or the operator's name.
    pub by: String,
    /// When.
    pub at: Timestamp,
}

/// A detected conflict with both versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictRecord {
    /// Unique id (from [`crate::state::SyncState::new_id`]).
    pub id: u64,
    /// The sync that found it.
    pub direction: Direction,
    /// The feed category.
    pub category: String,
    /// The resource type.
    pub resource_type: String,
    /// The resource id.
    pub resource_id: String,
    /// The feed entry that revealed it.
    pub event_id: Option<String>,
    /// When it was found.
    pub detected_at: Timestamp,
    /// The policy in force.
    pub policy: Policy,
    /// The parent's version.
    pub parent: ConflictVersion,
    /// The child's version.
    pub child: ConflictVersion,
    /// Open or resolved.
    pub status: ConflictStatus,
    /// Set once resolved.
    pub resolution: Option<ConflictResolution>,
}

impl ConflictRecord {
    /// The version of `side`.
    pub fn version_of(&self, side: Side) -> &ConflictVersion {
        match side {
            Side::Parent => &self.parent,
            Side::Child => &self.child,
        }
    }

    /// The losing version, once resolved.
    pub fn loser(&self) -> Option<&ConflictVersion> {
        let winner = self.resolution.as_ref()?.winner;
        Some(match winner {
            Side::Parent => &self.child,
            Side::Child => &self.parent,
        })
    }
}

/// Which conflicts to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictFilter {
    /// Only open ones.
    #[default]
    Open,
    /// Only resolved ones.
    Resolved,
    /// All.
    All,
}

impl ConflictFilter {
    /// True when `status` passes.
    pub fn accepts(self, status: ConflictStatus) -> bool {
        match self {
            ConflictFilter::Open => status == ConflictStatus::Open,
            ConflictFilter::Resolved => status == ConflictStatus::Resolved,
            ConflictFilter::All => true,
        }
    }
}

/// Figures for `sync-host status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    /// Feeds with a marker.
    pub markers: usize,
    /// Resources with a sync base.
    pub bases: usize,
    /// Events waiting for a retry.
    pub retries: usize,
    /// Of those, the ones due now.
    pub retries_due: usize,
    /// Parked dead letters.
    pub dead_letters: usize,
    /// Conflicts waiting for an operator.
    pub open_conflicts: usize,
    /// Conflicts already settled.
    pub resolved_conflicts: usize,
    /// Audit records kept.
    pub audit_records: usize,
    /// What waits in the pull direction.
    pub pull: DirectionCounts,
    /// What waits in the push direction.
    pub push: DirectionCounts,
}

/// What waits in one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DirectionCounts {
    /// Events waiting for a retry.
    pub retries: usize,
    /// Events that ran out of attempts.
    pub dead_letters: usize,
    /// Conflicts waiting for an operator.
    pub open_conflicts: usize,
}

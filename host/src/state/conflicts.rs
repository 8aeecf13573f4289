//! Conflict records: listing, showing and resolving by an operator.

use crate::audit::Timestamp;
use crate::state::{
    BaseKey, BatchCommit, CONFLICTS, ConflictFilter, ConflictRecord, ConflictResolution,
    ConflictStatus, StateError, SyncState, decode, encode,
};
use crate::sync::conflict::Side;

/// Who resolved a conflict that syncing made moot.
pub const SIDES_AGREE: &str = "sync:sides-agree";

/// The resolution `batch` gives another record of `record`'s resource, with that record's id.
fn decided_in<'a>(
    batch: &'a BatchCommit,
    record: &ConflictRecord,
) -> Option<(u64, &'a ConflictResolution)> {
    batch.conflicts.iter().rev().find_map(|c| {
        let same = c.resource_type == record.resource_type && c.resource_id == record.resource_id;
        c.resolution
            .as_ref()
            .filter(|_| same)
            .map(|how| (c.id, how))
    })
}

/// The side of `record` whose content is `hash`: the child's only if the parent's is not.
fn side_holding(record: &ConflictRecord, hash: &str) -> Side {
    if record.child.effective_hash() == hash && record.parent.effective_hash() != hash {
        Side::Child
    } else {
        Side::Parent
    }
}

impl SyncState {
    /// Conflicts passing `filter`, newest first (ids grow over time), at most `limit`.
    pub fn conflicts(
        &self,
        filter: ConflictFilter,
        limit: usize,
    ) -> Result<Vec<ConflictRecord>, StateError> {
        let mut out = Vec::new();
        for value in self.conflicts.iter().values().rev() {
            let record: ConflictRecord = decode(CONFLICTS, &value?)?;
            if filter.accepts(record.status) {
                out.push(record);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// One conflict.
    pub fn conflict(&self, id: u64) -> Result<Option<ConflictRecord>, StateError> {
        self.conflicts
            .get(id.to_be_bytes())?
            .map(|v| decode(CONFLICTS, &v))
            .transpose()
    }

    /// Open conflicts of one resource, oldest first.
    pub fn open_conflicts_for(
        &self,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<Vec<ConflictRecord>, StateError> {
        let key = BaseKey {
            resource_type: resource_type.to_owned(),
            resource_id: resource_id.to_owned(),
        };
        self.open_records(&key)
    }

    fn open_records(&self, key: &BaseKey) -> Result<Vec<ConflictRecord>, StateError> {
        let mut found = Vec::new();
        for id in self.open.ids_for(key) {
            if let Some(record) = self.conflict(id)?
                && record.status == ConflictStatus::Open
            {
                found.push(record);
            }
        }
        Ok(found)
    }

    /// The open conflicts that `batch` settles without naming them: a resource that the batch
    /// gives an agreed base holds the same content on both sides again, so whatever conflict
    /// was still open on it is moot. When the batch also resolves a record of that resource (a
    /// policy or an operator decided), the others take its resolution; otherwise they are
    /// resolved by [`SIDES_AGREE`] in favour of the side whose content the base is (the
    /// parent's when both sides moved on to the same new content).
    pub(crate) fn settled_by_bases(
        &self,
        batch: &BatchCommit,
    ) -> Result<Vec<ConflictRecord>, StateError> {
        let mut settled: Vec<ConflictRecord> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // The last update of a key is the one stored.
        for update in batch.bases.iter().rev() {
            if !seen.insert(&update.key) || !update.agreed {
                continue;
            }
            for mut record in self.open_records(&update.key)? {
                if batch.conflicts.iter().any(|c| c.id == record.id) {
                    continue;
                }
                record.status = ConflictStatus::Resolved;
                record.resolution = Some(match decided_in(batch, &record) {
                    Some((id, how)) => ConflictResolution {
                        by: format!("{} (with conflict {id})", how.by),
                        ..how.clone()
                    },
                    None => ConflictResolution {
                        winner: side_holding(&record, &update.base.content_hash),
                        by: SIDES_AGREE.to_owned(),
                        at: Timestamp::now(),
                    },
                });
                tracing::info!(
                    id = record.id,
                    resource = %format_args!("{}/{}", record.resource_type, record.resource_id),
                    "conflict closed: both sides hold the same content again"
                );
                settled.push(record);
            }
        }
        Ok(settled)
    }

    /// Marks an open conflict resolved in favour of `winner` and returns the updated record
    /// (both versions stay in it). Writing the winning body and the new sync base is the
    /// engine's job; to make those atomic with the resolution, pass the updated record to
    /// [`SyncState::commit_batch`] instead.
    pub fn resolve_conflict(
        &self,
        id: u64,
        winner: Side,
        by: &str,
        now: Timestamp,
    ) -> Result<ConflictRecord, StateError> {
        let key = id.to_be_bytes();
        loop {
            let current = self
                .conflicts
                .get(key)?
                .ok_or(StateError::ConflictNotFound { id })?;
            let mut record: ConflictRecord = decode(CONFLICTS, &current)?;
            if record.status == ConflictStatus::Resolved {
                return Err(StateError::ConflictAlreadyResolved { id });
            }
            record.status = ConflictStatus::Resolved;
            record.resolution = Some(ConflictResolution {
                winner,
                by: by.to_owned(),
                at: now,
            });
            let updated = encode(|| format!("conflict {id}"), &record)?;
            // Compare-and-swap so two operators resolving at once cannot both win.
            if self
                .conflicts
                .compare_and_swap(key, Some(current), Some(updated))?
                .is_ok()
            {
                self.open.note(&record);
                tracing::info!(id, ?winner, by, "conflict resolved");
                return Ok(record);
            }
        }
    }
}

//! Conflict records: listing, showing and resolving by an operator.

use crate::audit::Timestamp;
use crate::state::{
    CONFLICTS, ConflictFilter, ConflictRecord, ConflictResolution, ConflictStatus, StateError,
    SyncState, decode, encode,
};
use crate::sync::conflict::Side;

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
        let mut found = self.conflicts(ConflictFilter::Open, usize::MAX)?;
        found.retain(|c| c.resource_type == resource_type && c.resource_id == resource_id);
        found.reverse();
        Ok(found)
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
                tracing::info!(id, ?winner, by, "conflict resolved");
                return Ok(record);
            }
        }
    }
}

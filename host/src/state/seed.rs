//! Seeding the sync state of a new node from a snapshot of its parent: the sync bases of the
//! resources it now holds and the feed markers that resume after the snapshot.

use crate::state::{BaseKey, Marker, MarkerKey, StateError, SyncState, encode};
use crate::sync::conflict::SyncBase;

impl SyncState {
    /// Whether this state has never synced: no markers and no sync bases.
    pub fn is_fresh(&self) -> bool {
        self.markers.is_empty() && self.bases.is_empty()
    }

    /// Stores sync bases of resources a snapshot import wrote (one sled batch, not yet
    /// flushed: [`SyncState::seed_markers`] flushes everything once at the end).
    pub fn seed_bases(&self, bases: &[(BaseKey, SyncBase)]) -> Result<(), StateError> {
        let mut batch = sled::Batch::default();
        for (key, base) in bases {
            let value = encode(|| format!("base of {}", key.resource_id), base)?;
            batch.insert(key.to_bytes(), value);
        }
        self.bases.apply_batch(batch)?;
        // A fresh state (checked by the caller) held none of these.
        self.base_count.added(bases.len());
        Ok(())
    }

    /// Stores the markers a snapshot import ends with, then flushes the whole state. The
    /// markers come last: a node stopped before them reads its feeds from the start, and
    /// every resource it already holds with its base is skipped as known.
    pub async fn seed_markers(&self, markers: &[(MarkerKey, Marker)]) -> Result<(), StateError> {
        let mut batch = sled::Batch::default();
        for (key, marker) in markers {
            let value = encode(|| format!("marker of feed {}", key.feed), marker)?;
            batch.insert(key.to_bytes(), value);
        }
        self.markers.apply_batch(batch)?;
        self.flush().await
    }
}

//! Which resources have open conflicts, kept in memory so that every commit can tell cheaply
//! whether it settles one. Built from the conflict tree when the state opens and updated after
//! each commit; only writers holding [`SyncState::deciding`] read it to decide.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use crate::state::{BaseKey, ConflictRecord, ConflictStatus, StateError};
use crate::sync::conflict::Direction;

/// Open conflict ids per resource, and every conflict id by status, so counts and the oldest
/// open conflicts are read without walking the conflict tree.
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenIndex {
    open: Arc<Mutex<Ids>>,
}

#[derive(Debug, Default)]
struct Ids {
    by_resource: HashMap<BaseKey, BTreeSet<u64>>,
    /// Open ids, with the direction each was counted under.
    open: std::collections::BTreeMap<u64, Direction>,
    resolved: HashSet<u64>,
    /// Open conflicts per direction (pull, push).
    open_by_direction: [usize; 2],
}

impl OpenIndex {
    /// Builds the index from the stored conflict records, reading of each only what the index
    /// needs. A record that cannot be read is left out with a warning: it cannot be listed or
    /// resolved either, and the node must still start.
    pub(crate) fn build(conflicts: &sled::Tree) -> Result<Self, StateError> {
        let index = Self::default();
        for value in conflicts.iter().values() {
            let value = value?;
            match serde_json::from_slice::<Entry>(&value) {
                Ok(entry) => index.insert(entry),
                Err(error) => tracing::warn!(%error, "skipping an unreadable conflict record"),
            }
        }
        Ok(index)
    }

    /// The open conflict ids of one resource, oldest first.
    pub(crate) fn ids_for(&self, key: &BaseKey) -> Vec<u64> {
        self.lock()
            .by_resource
            .get(key)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// How many conflicts are open and how many resolved.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let ids = self.lock();
        (ids.open.len(), ids.resolved.len())
    }

    /// How many conflicts of `direction` are open.
    pub(crate) fn open_in(&self, direction: Direction) -> usize {
        self.lock().open_by_direction[crate::state::counts::slot(direction)]
    }

    /// The ids of the oldest open conflicts, at most `limit`.
    pub(crate) fn oldest_open(&self, limit: usize) -> Vec<u64> {
        self.lock().open.keys().take(limit).copied().collect()
    }

    /// Takes a record that was just stored into account.
    pub(crate) fn note(&self, record: &ConflictRecord) {
        self.insert(Entry {
            id: record.id,
            direction: record.direction,
            resource_type: record.resource_type.clone(),
            resource_id: record.resource_id.clone(),
            status: record.status,
        });
    }

    fn insert(&self, entry: Entry) {
        let Entry {
            id,
            direction,
            resource_type,
            resource_id,
            status,
        } = entry;
        let slot = crate::state::counts::slot(direction);
        let key = BaseKey {
            resource_type,
            resource_id,
        };
        let mut ids = self.lock();
        match status {
            ConflictStatus::Open => {
                ids.by_resource.entry(key).or_default().insert(id);
                if let Some(before) = ids.open.insert(id, direction) {
                    ids.open_by_direction[crate::state::counts::slot(before)] -= 1;
                }
                ids.open_by_direction[slot] += 1;
                ids.resolved.remove(&id);
            }
            ConflictStatus::Resolved => {
                if let Some(open) = ids.by_resource.get_mut(&key) {
                    open.remove(&id);
                    if open.is_empty() {
                        ids.by_resource.remove(&key);
                    }
                }
                // Counted under the direction it was opened with, whatever this copy says.
                if let Some(opened) = ids.open.remove(&id) {
                    ids.open_by_direction[crate::state::counts::slot(opened)] -= 1;
                }
                ids.resolved.insert(id);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ids> {
        // The map is only ever left consistent (each update is one insert or remove), so a
        // panic elsewhere while it was held cannot have broken it.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the index reads of a stored conflict record (the bodies are skipped, not decoded).
#[derive(serde::Deserialize)]
struct Entry {
    id: u64,
    direction: Direction,
    resource_type: String,
    resource_id: String,
    status: ConflictStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Timestamp;
    use crate::state::ConflictVersion;
    use crate::sync::conflict::Policy;

    fn record(id: u64, resource_id: &str, status: ConflictStatus) -> ConflictRecord {
        let version = ConflictVersion {
            version: None,
            content_hash: String::new(),
            last_updated: None,
            deleted: true,
            body: String::new(),
        };
        ConflictRecord {
            id,
            direction: Direction::Pull,
            category: "patient".into(),
            resource_type: "Patient".into(),
            resource_id: resource_id.into(),
            event_id: None,
            detected_at: Timestamp::now(),
            policy: Policy::Manual,
            parent: version.clone(),
            child: version,
            status,
            resolution: None,
        }
    }

    fn key(id: &str) -> BaseKey {
        BaseKey {
            resource_type: "Patient".into(),
            resource_id: id.into(),
        }
    }

    #[test]
    fn tracks_open_records_per_resource() {
        let index = OpenIndex::default();
        for r in [
            record(3, "p1", ConflictStatus::Open),
            record(1, "p1", ConflictStatus::Open),
            record(2, "p2", ConflictStatus::Resolved),
        ] {
            index.note(&r);
        }
        assert_eq!(index.ids_for(&key("p1")), vec![1, 3]);
        assert!(index.ids_for(&key("p2")).is_empty());
        assert_eq!(index.counts(), (2, 1));
        assert_eq!(index.open_in(Direction::Pull), 2);
        assert_eq!(index.open_in(Direction::Push), 0);
        assert_eq!(index.oldest_open(1), vec![1]);
        index.note(&record(1, "p1", ConflictStatus::Resolved));
        // Noting a record again changes no count.
        index.note(&record(1, "p1", ConflictStatus::Resolved));
        assert_eq!(index.counts(), (1, 2));
        index.note(&record(3, "p1", ConflictStatus::Resolved));
        assert!(index.ids_for(&key("p1")).is_empty());
        assert!(index.lock().by_resource.is_empty());
        assert_eq!(index.counts(), (0, 3));
        assert_eq!(index.open_in(Direction::Pull), 0);
    }
}

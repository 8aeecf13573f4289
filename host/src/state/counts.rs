//! Counts the sync state keeps as it writes, so `status`, reports and `/metrics` read them in
//! constant time: sled counts a tree's entries only by walking it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use crate::audit::{AuditRecord, OutcomeKind};
use crate::state::{RetryEntry, StateError};
use crate::sync::conflict::Direction;

/// How many sync bases are stored: counted once at open, then kept by the writers (bases are
/// only ever added or replaced, never removed).
#[derive(Debug, Clone, Default)]
pub(crate) struct BaseCount(Arc<AtomicUsize>);

impl BaseCount {
    pub(crate) fn counted(tree: &sled::Tree) -> Self {
        Self(Arc::new(tree.len().into()))
    }

    pub(crate) fn added(&self, bases: usize) {
        self.0.fetch_add(bases, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// How a transaction changed the two failure queues, per direction. Worked out from what each
/// insert and remove replaced, inside the transaction, and applied only once it committed
/// (sled may run a transaction's closure more than once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QueueDelta {
    pub(crate) retries: [i64; 2],
    pub(crate) dead_letters: [i64; 2],
}

/// The counters' index of a direction.
pub(crate) fn slot(direction: Direction) -> usize {
    usize::from(direction == Direction::Push)
}

impl QueueDelta {
    /// The change made by an insert (`+1` unless it replaced an entry) or a remove (`-1` when
    /// it removed one).
    pub(crate) fn step(inserted: bool, replaced: bool) -> i64 {
        match (inserted, replaced) {
            (true, false) => 1,
            (false, true) => -1,
            _ => 0,
        }
    }

    /// A change of `retries` and `dead_letters` entries of `direction`.
    pub(crate) fn of(direction: Direction, retries: i64, dead_letters: i64) -> Self {
        let mut delta = Self::default();
        delta.retries[slot(direction)] = retries;
        delta.dead_letters[slot(direction)] = dead_letters;
        delta
    }

    pub(crate) fn add(&mut self, other: QueueDelta) {
        for i in 0..2 {
            self.retries[i] += other.retries[i];
            self.dead_letters[i] += other.dead_letters[i];
        }
    }
}

/// Entries in the retry queue and the dead letters per direction: counted once at open, then
/// moved by the delta of every committed transaction that touches them.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueCounts {
    retries: Arc<[AtomicI64; 2]>,
    dead_letters: Arc<[AtomicI64; 2]>,
}

impl QueueCounts {
    /// Counts both trees, reading each entry's direction.
    pub(crate) fn counted(
        retries: &sled::Tree,
        dead_letters: &sled::Tree,
    ) -> Result<Self, StateError> {
        let count =
            |tree: &sled::Tree, name: &'static str| -> Result<Arc<[AtomicI64; 2]>, StateError> {
                let counts: [AtomicI64; 2] = Default::default();
                for value in tree.iter().values() {
                    let entry: RetryEntry = super::decode(name, &value?)?;
                    counts[slot(entry.key.direction)].fetch_add(1, Ordering::Relaxed);
                }
                Ok(Arc::new(counts))
            };
        Ok(Self {
            retries: count(retries, super::RETRIES)?,
            dead_letters: count(dead_letters, super::DEAD_LETTERS)?,
        })
    }

    pub(crate) fn apply(&self, delta: QueueDelta) {
        for i in 0..2 {
            self.retries[i].fetch_add(delta.retries[i], Ordering::Relaxed);
            self.dead_letters[i].fetch_add(delta.dead_letters[i], Ordering::Relaxed);
        }
    }

    /// (retries, dead letters) of `direction`.
    pub(crate) fn of(&self, direction: Direction) -> (usize, usize) {
        let read = |count: &AtomicI64| usize::try_from(count.load(Ordering::Relaxed)).unwrap_or(0);
        let i = slot(direction);
        (read(&self.retries[i]), read(&self.dead_letters[i]))
    }
}

/// Every outcome kind, in the order the counters keep them.
pub const OUTCOME_KINDS: [OutcomeKind; 7] = [
    OutcomeKind::Applied,
    OutcomeKind::Unchanged,
    OutcomeKind::Skipped,
    OutcomeKind::Filtered,
    OutcomeKind::Conflict,
    OutcomeKind::Failed,
    OutcomeKind::Settled,
];

/// Audit records committed since the node started, by direction and outcome: the events a
/// node processed, counted where every writer's records pass.
#[derive(Debug, Clone, Default)]
pub(crate) struct OutcomeCounts(Arc<[[AtomicU64; OUTCOME_KINDS.len()]; 2]>);

impl OutcomeCounts {
    pub(crate) fn add(&self, direction: Direction, kind: OutcomeKind) {
        let column = OUTCOME_KINDS.iter().position(|k| *k == kind).unwrap_or(0);
        self.0[slot(direction)][column].fetch_add(1, Ordering::Relaxed);
    }

    /// The count of one direction and outcome.
    pub(crate) fn get(&self, direction: Direction, kind: OutcomeKind) -> u64 {
        OUTCOME_KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |column| {
                self.0[slot(direction)][column].load(Ordering::Relaxed)
            })
    }
}

/// The most recent failed events, newest first, kept in memory as they are committed: a
/// report lists them without searching the audit. Filled at open from the newest records.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecentFailures(Arc<std::sync::Mutex<std::collections::VecDeque<AuditRecord>>>);

impl RecentFailures {
    /// Failures kept.
    pub(crate) const KEPT: usize = 50;

    /// Takes `records` (oldest first) into account.
    pub(crate) fn note<'a>(&self, records: impl IntoIterator<Item = &'a AuditRecord>) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for record in records {
            if record.outcome.kind() == OutcomeKind::Failed {
                kept.push_front(record.clone());
                kept.truncate(Self::KEPT);
            }
        }
    }

    /// The kept failures, newest first.
    pub(crate) fn get(&self) -> Vec<AuditRecord> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacing_insert_or_an_empty_remove_changes_nothing() {
        assert_eq!(QueueDelta::step(true, false), 1);
        assert_eq!(QueueDelta::step(true, true), 0);
        assert_eq!(QueueDelta::step(false, true), -1);
        assert_eq!(QueueDelta::step(false, false), 0);
    }
}

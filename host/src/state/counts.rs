//! Counts the sync state keeps as it writes, so `status`, reports and `/metrics` read them in
//! constant time: sled counts a tree's entries only by walking it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use crate::audit::OutcomeKind;
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

/// How a transaction changed the two failure queues. Worked out from what each insert and
/// remove replaced, inside the transaction, and applied only once it committed (sled may run
/// a transaction's closure more than once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QueueDelta {
    pub(crate) retries: i64,
    pub(crate) dead_letters: i64,
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

    pub(crate) fn add(&mut self, other: QueueDelta) {
        self.retries += other.retries;
        self.dead_letters += other.dead_letters;
    }
}

/// Entries in the retry queue and the dead letters: counted once at open, then moved by the
/// delta of every committed transaction that touches them.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueCounts {
    retries: Arc<AtomicI64>,
    dead_letters: Arc<AtomicI64>,
}

impl QueueCounts {
    pub(crate) fn counted(retries: &sled::Tree, dead_letters: &sled::Tree) -> Self {
        let count = |tree: &sled::Tree| Arc::new(AtomicI64::new(saturate(tree.len())));
        Self {
            retries: count(retries),
            dead_letters: count(dead_letters),
        }
    }

    pub(crate) fn apply(&self, delta: QueueDelta) {
        self.retries.fetch_add(delta.retries, Ordering::Relaxed);
        self.dead_letters
            .fetch_add(delta.dead_letters, Ordering::Relaxed);
    }

    /// (retries, dead letters).
    pub(crate) fn get(&self) -> (usize, usize) {
        let read = |count: &AtomicI64| usize::try_from(count.load(Ordering::Relaxed)).unwrap_or(0);
        (read(&self.retries), read(&self.dead_letters))
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
        let row = usize::from(direction == Direction::Push);
        let column = OUTCOME_KINDS.iter().position(|k| *k == kind).unwrap_or(0);
        self.0[row][column].fetch_add(1, Ordering::Relaxed);
    }

    /// The count of one direction and outcome.
    pub(crate) fn get(&self, direction: Direction, kind: OutcomeKind) -> u64 {
        let row = usize::from(direction == Direction::Push);
        OUTCOME_KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |column| self.0[row][column].load(Ordering::Relaxed))
    }
}

fn saturate(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
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

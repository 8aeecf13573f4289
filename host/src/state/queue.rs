//! The retry queue and dead letters: what is due, what is parked, and operator requeues.
//!
//! Both trees are keyed by [`FailureKey`] (one entry per failing resource and direction, not
//! per event); due entries are found through the due index.

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::audit::Timestamp;
use crate::state::counts::QueueDelta;
use crate::state::due_index::{due_key, due_upper_bound, failure_key_of};
use crate::state::{
    DEAD_LETTERS, FailureKey, RETRIES, RetryEntry, StateError, SyncState, decode, encode,
};

impl SyncState {
    /// Queued entries with `next_at <= now`, earliest first, at most `limit`. Reads the due
    /// index, so the cost follows the number returned, not the length of the queue.
    pub fn due_retries(&self, now: Timestamp, limit: usize) -> Result<Vec<RetryEntry>, StateError> {
        let mut due = Vec::new();
        for index_key in self.retry_due.range(..due_upper_bound(now)).keys() {
            if due.len() == limit {
                break;
            }
            let index_key = index_key?;
            // Index and queue change in the same transactions; a miss would be a bug, and
            // skipping it is safer than failing every scheduler tick.
            if let Some(bytes) = self.retries.get(failure_key_of(&index_key))? {
                due.push(decode(RETRIES, &bytes)?);
            }
        }
        Ok(due)
    }

    /// Every queued entry, in key order.
    pub fn retry_queue(&self) -> Result<Vec<RetryEntry>, StateError> {
        scan(&self.retries, RETRIES, usize::MAX)
    }

    /// The queued entry of one resource and direction.
    pub fn retry_entry(&self, key: &FailureKey) -> Result<Option<RetryEntry>, StateError> {
        self.retries
            .get(key.to_bytes())?
            .map(|v| decode(RETRIES, &v))
            .transpose()
    }

    /// Dead letters in key order, at most `limit`.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<RetryEntry>, StateError> {
        scan(&self.dead_letters, DEAD_LETTERS, limit)
    }

    /// The dead letter of one resource and direction.
    pub fn dead_letter(&self, key: &FailureKey) -> Result<Option<RetryEntry>, StateError> {
        self.dead_letters
            .get(key.to_bytes())?
            .map(|v| decode(DEAD_LETTERS, &v))
            .transpose()
    }

    /// Moves one dead letter back to the retry queue, due at `now`, with a fresh attempt
    /// budget (an operator requeues after fixing the cause). Returns the requeued entry,
    /// `None` if there was no dead letter for `key`.
    pub fn requeue_dead_letter(
        &self,
        key: &FailureKey,
        now: Timestamp,
    ) -> Result<Option<RetryEntry>, StateError> {
        let key_bytes = key.to_bytes();
        let result = (&self.retries, &self.dead_letters, &self.retry_due)
            .transaction(|(retries, dead, due)| {
                let Some(bytes) = dead.remove(key_bytes.as_slice())? else {
                    return Ok(None);
                };
                let mut entry: RetryEntry =
                    decode(DEAD_LETTERS, &bytes).map_err(ConflictableTransactionError::Abort)?;
                entry.attempt = 0;
                entry.next_at = now;
                entry.dead_reason = None;
                let value = encode(|| format!("retry entry for {key}"), &entry)
                    .map_err(ConflictableTransactionError::Abort)?;
                let was_retry = retries.insert(key_bytes.as_slice(), value)?.is_some();
                due.insert(due_key(now, &key_bytes), &[][..])?;
                let delta = QueueDelta::of(key.direction, QueueDelta::step(true, was_retry), -1);
                Ok(Some((entry, delta)))
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StateError::Storage(e),
            })?;
        let Some((entry, delta)) = result else {
            return Ok(None);
        };
        self.queue_count.apply(delta);
        tracing::info!(key = %entry.key, id = entry.id, "dead letter requeued");
        Ok(Some(entry))
    }

    /// Requeues every dead letter; returns how many.
    pub fn requeue_all_dead_letters(&self, now: Timestamp) -> Result<usize, StateError> {
        let mut requeued = 0;
        for entry in self.dead_letters(usize::MAX)? {
            if self.requeue_dead_letter(&entry.key, now)?.is_some() {
                requeued += 1;
            }
        }
        Ok(requeued)
    }
}

fn scan(
    tree: &sled::Tree,
    name: &'static str,
    limit: usize,
) -> Result<Vec<RetryEntry>, StateError> {
    tree.iter()
        .values()
        .take(limit)
        .map(|v| decode(name, &v?))
        .collect()
}

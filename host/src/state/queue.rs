//! The retry queue and dead letters: what is due, what is parked, and operator requeues.
//!
//! Both trees are keyed by [`FailureKey`]; finding due entries scans the queue, which stays
//! small in practice (one entry per failing resource, not per event).

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::audit::Timestamp;
use crate::state::{
    DEAD_LETTERS, FailureKey, RETRIES, RetryEntry, StateError, SyncState, decode, encode,
};

impl SyncState {
    /// Queued entries with `next_at <= now`, earliest first, at most `limit`.
    pub fn due_retries(&self, now: Timestamp, limit: usize) -> Result<Vec<RetryEntry>, StateError> {
        let mut due: Vec<RetryEntry> = self
            .retry_queue()?
            .into_iter()
            .filter(|e| e.next_at <= now)
            .collect();
        due.sort_by_key(|e| (e.next_at, e.id));
        due.truncate(limit);
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
        let result = (&self.retries, &self.dead_letters)
            .transaction(|(retries, dead)| {
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
                retries.insert(key_bytes.as_slice(), value)?;
                Ok(Some(entry))
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StateError::Storage(e),
            })?;
        if let Some(entry) = &result {
            tracing::info!(key = %entry.key, id = entry.id, "dead letter requeued");
        }
        Ok(result)
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

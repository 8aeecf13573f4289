//! The due index of the retry queue: one empty-valued key per queued entry,
//! `next_at (8 bytes, big-endian) ++ failure key`, so "what is due now" is a short range scan
//! instead of a read of the whole queue (which grows large while a parent rejects a backlog).

use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use crate::audit::Timestamp;
use crate::state::{RETRIES, RetryEntry, StateError, decode};

/// The index tree's name.
pub(crate) const RETRY_DUE: &str = "sync.retry_due";

/// Result inside a sled transaction closure.
pub(crate) type TxResult<T> = Result<T, ConflictableTransactionError<StateError>>;

/// The index key of a queued entry.
pub(crate) fn due_key(next_at: Timestamp, failure_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + failure_key.len());
    key.extend_from_slice(&next_at.as_millis().to_be_bytes());
    key.extend_from_slice(failure_key);
    key
}

/// The exclusive upper bound of index keys due at `now`.
pub(crate) fn due_upper_bound(now: Timestamp) -> [u8; 8] {
    now.as_millis().saturating_add(1).to_be_bytes()
}

/// The failure key inside an index key.
pub(crate) fn failure_key_of(due_key: &[u8]) -> &[u8] {
    due_key.get(8..).unwrap_or_default()
}

/// Inside a transaction: drops the index key of whatever is queued under `key`.
pub(crate) fn unindex(
    retries: &TransactionalTree,
    due: &TransactionalTree,
    key: &[u8],
) -> TxResult<()> {
    if let Some(bytes) = retries.get(key)? {
        let old: RetryEntry =
            decode(RETRIES, &bytes).map_err(ConflictableTransactionError::Abort)?;
        due.remove(due_key(old.next_at, key))?;
    }
    Ok(())
}

/// Rebuilds the index when it is empty but the queue is not (a database written before the
/// index existed, or an index tree lost by hand).
pub(crate) fn rebuild_if_missing(retries: &sled::Tree, due: &sled::Tree) -> Result<(), StateError> {
    if !due.is_empty() || retries.is_empty() {
        return Ok(());
    }
    let mut batch = sled::Batch::default();
    for item in retries.iter() {
        let (key, value) = item?;
        let entry: RetryEntry = decode(RETRIES, &value)?;
        batch.insert(due_key(entry.next_at, &key), &[][..]);
    }
    due.apply_batch(batch)?;
    tracing::info!(entries = retries.len(), "retry due index rebuilt");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_sort_by_time_then_resource() {
        let early = due_key(Timestamp::from_millis(5), b"zzz");
        let late = due_key(Timestamp::from_millis(6), b"aaa");
        assert!(early < late);
        assert!(early.as_slice() < due_upper_bound(Timestamp::from_millis(5)).as_slice());
        assert!(late.as_slice() >= due_upper_bound(Timestamp::from_millis(5)).as_slice());
        assert_eq!(failure_key_of(&late), b"aaa");
    }
}

//! Write intents: the content hashes the engine is about to write to a target, made durable
//! before the write. If the node dies after the write but before its batch commits, the next
//! sync finds the target holding one of those contents and knows it was its own write, not an
//! edit made there, so no false conflict is raised.
//!
//! A key keeps every hash intended since its last committed sync base, not only the last one:
//! a write that landed before a crash may be followed by attempts that died before their own
//! write landed, and the target then still holds the earlier content.

use crate::state::{ConflictRecord, DurablePoint, FailureKey, StateError, SyncState, encode};

pub(crate) const INTENTS: &str = "sync.intents";

/// Hashes kept per key. Each one means a crash between a write and its commit, so more than a
/// few is already unusual; past this the oldest is dropped, and the worst a dropped intent can
/// cause is a conflict an operator decides, never a lost change.
const MAX_INTENTS_PER_KEY: usize = 8;

impl SyncState {
    /// Records, durably, that `hash` is about to be written for each key, together with the
    /// conflict records those writes settle: a write that lands before a crash keeps its batch
    /// from committing must not take the record of the version it replaced with it.
    pub async fn record_intents(
        &self,
        intents: &[(FailureKey, String)],
        settling: &[&ConflictRecord],
    ) -> Result<(), StateError> {
        if intents.is_empty() && settling.is_empty() {
            return Ok(());
        }
        self.step_hook.reached(DurablePoint::BeforeIntents).await;
        for (key, hash) in intents {
            // Per-key atomic update: no lock is needed for two writers of one key.
            self.intents
                .fetch_and_update(key.to_bytes(), |old| Some(with_intent(old, hash)))?;
        }
        if !settling.is_empty() {
            let mut records = sled::Batch::default();
            for record in settling {
                let value = encode(|| format!("conflict {}", record.id), record)?;
                records.insert(&record.id.to_be_bytes(), value);
            }
            self.conflicts.apply_batch(records)?;
            for record in settling {
                self.open.note(record);
            }
        }
        self.flush().await?;
        self.step_hook.reached(DurablePoint::AfterIntents).await;
        Ok(())
    }

    /// The hashes intended for `key` since its last committed sync base, oldest first.
    pub fn intents(&self, key: &FailureKey) -> Result<Vec<String>, StateError> {
        Ok(self
            .intents
            .get(key.to_bytes())?
            .map(|value| decode_intents(&value))
            .unwrap_or_default())
    }

    /// Takes back intents whose writes were never made (a write refused before it landed), so
    /// that every intent left names content this node did write or may have written.
    pub fn withdraw_intents(&self, intents: &[(FailureKey, String)]) -> Result<(), StateError> {
        for (key, hash) in intents {
            self.intents
                .fetch_and_update(key.to_bytes(), |old| without_intent(old?, hash))?;
        }
        self.intents.flush()?;
        Ok(())
    }

    /// Forgets the intents of keys whose sync base a batch committed: the base now says what
    /// the target holds. Stale intents are harmless (they only ever name content this node
    /// itself wrote), so this is tidiness, not correctness.
    pub fn clear_intents<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a FailureKey>,
    ) -> Result<(), StateError> {
        let mut batch = sled::Batch::default();
        for key in keys {
            batch.remove(key.to_bytes());
        }
        self.intents.apply_batch(batch)?;
        Ok(())
    }
}

/// The stored list `old` with `hash` added last (moved there if it was already in it), cut to
/// [`MAX_INTENTS_PER_KEY`].
fn with_intent(old: Option<&[u8]>, hash: &str) -> Vec<u8> {
    let mut hashes = old.map(decode_intents).unwrap_or_default();
    hashes.retain(|kept| kept != hash);
    hashes.push(hash.to_string());
    let excess = hashes.len().saturating_sub(MAX_INTENTS_PER_KEY);
    hashes.drain(..excess);
    // Serializing a list of strings cannot fail.
    serde_json::to_vec(&hashes).unwrap_or_default()
}

/// The stored list `old` without `hash`; `None` (no entry) once the list is empty.
fn without_intent(old: &[u8], hash: &str) -> Option<Vec<u8>> {
    let mut hashes = decode_intents(old);
    hashes.retain(|kept| kept != hash);
    // Serializing a list of strings cannot fail.
    (!hashes.is_empty()).then(|| serde_json::to_vec(&hashes).unwrap_or_default())
}

/// A stored list of hashes. A value that is not a JSON list is one hash, as older versions
/// stored it.
fn decode_intents(value: &[u8]) -> Vec<String> {
    serde_json::from_slice(value)
        .unwrap_or_else(|_| vec![String::from_utf8_lossy(value).into_owned()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_withdrawn_intent_leaves_the_others() {
        let value = with_intent(Some(&with_intent(None, "a")), "b");
        let left = without_intent(&value, "a").expect("one left");
        assert_eq!(decode_intents(&left), ["b"]);
        assert_eq!(without_intent(&left, "b"), None);
    }

    #[test]
    fn a_new_intent_is_added_after_the_earlier_ones() {
        let one = with_intent(None, "a");
        let two = with_intent(Some(&one), "b");
        assert_eq!(decode_intents(&two), ["a", "b"]);
    }

    #[test]
    fn an_intent_made_again_moves_last_instead_of_repeating() {
        let mut value = with_intent(None, "a");
        value = with_intent(Some(&value), "b");
        value = with_intent(Some(&value), "a");
        assert_eq!(decode_intents(&value), ["b", "a"]);
    }

    #[test]
    fn only_the_newest_intents_are_kept() {
        let mut value = with_intent(None, "0");
        for n in 1..MAX_INTENTS_PER_KEY + 3 {
            value = with_intent(Some(&value), &n.to_string());
        }
        let kept = decode_intents(&value);
        assert_eq!(kept.len(), MAX_INTENTS_PER_KEY);
        assert_eq!(kept.first().map(String::as_str), Some("3"));
        assert_eq!(kept.last(), Some(&(MAX_INTENTS_PER_KEY + 2).to_string()));
    }

    #[test]
    fn a_hash_stored_by_an_older_version_reads_as_one_intent() {
        assert_eq!(decode_intents(b"deleted"), ["deleted"]);
        assert_eq!(decode_intents(b"d6b6370a"), ["d6b6370a"]);
    }
}

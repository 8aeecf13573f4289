//! Write intents: the content hash the engine is about to write to a target, made durable
//! before the write. If the node dies after the write but before its batch commits, the next
//! sync finds the target holding exactly that content and knows it was its own write, not an
//! edit made there, so no false conflict is raised.

use crate::state::{ConflictRecord, DurablePoint, FailureKey, StateError, SyncState, encode};

pub(crate) const INTENTS: &str = "sync.intents";

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
        let mut batch = sled::Batch::default();
        for (key, hash) in intents {
            batch.insert(key.to_bytes(), hash.as_bytes());
        }
        self.intents.apply_batch(batch)?;
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

    /// The hash last intended for `key`, if any.
    pub fn intent(&self, key: &FailureKey) -> Result<Option<String>, StateError> {
        Ok(self
            .intents
            .get(key.to_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Forgets the intents of keys whose batch committed. Stale intents are harmless (they
    /// only ever name content this node itself wrote), so this is tidiness, not correctness.
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

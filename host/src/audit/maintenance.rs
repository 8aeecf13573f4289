//! Audit retention (prune by age and by record count) and JSON-lines export.

use std::io::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audit::{AuditError, AuditKey, AuditLog, AuditQuery, Timestamp};

/// Records removed per sled batch while pruning, to keep each write bounded.
const PRUNE_CHUNK: usize = 1024;

/// How long audit records are kept. Both limits apply when both are set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Records older than this are removed.
    pub max_age: Option<Duration>,
    /// Only the newest this many records are kept.
    pub max_records: Option<usize>,
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Records removed for being older than `max_age`.
    pub removed_by_age: usize,
    /// Records removed to get under `max_records`.
    pub removed_by_count: usize,
}

impl AuditLog {
    /// Applies `retention` as of `now`. Oldest records go first.
    pub fn prune(&self, retention: Retention, now: Timestamp) -> Result<PruneReport, AuditError> {
        let mut report = PruneReport::default();
        if let Some(max_age) = retention.max_age {
            let cutoff = AuditKey::first_at(now.saturating_sub(max_age)).to_bytes();
            let keys = self.tree().range(..cutoff).keys();
            report.removed_by_age = self.remove_keys(keys)?;
        }
        if let Some(max_records) = retention.max_records {
            let excess = self.len().saturating_sub(max_records);
            let keys = self.tree().iter().keys().take(excess);
            report.removed_by_count = self.remove_keys(keys)?;
        }
        Ok(report)
    }

    /// Writes every record matching `query` (time bounds and filters; `limit` ignored) as
    /// one JSON object per line, oldest first. Returns the number written.
    pub fn export_jsonl<W: Write>(
        &self,
        query: &AuditQuery,
        mut out: W,
    ) -> Result<usize, AuditError> {
        let mut written = 0;
        for entry in self.scan_oldest_first(query) {
            let entry = entry?;
            let line = serde_json::to_vec(&entry).map_err(|source| AuditError::Encode {
                resource_id: entry.record.resource_id.clone(),
                source,
            })?;
            out.write_all(&line)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(|source| AuditError::Export { written, source })?;
            written += 1;
        }
        out.flush()
            .map_err(|source| AuditError::Export { written, source })?;
        Ok(written)
    }

    fn remove_keys(
        &self,
        keys: impl Iterator<Item = sled::Result<sled::IVec>>,
    ) -> Result<usize, AuditError> {
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        for key in keys {
            batch.remove(key?);
            pending += 1;
            if pending == PRUNE_CHUNK {
                self.tree().apply_batch(std::mem::take(&mut batch))?;
                self.removed(pending);
                removed += pending;
                pending = 0;
            }
        }
        if pending > 0 {
            self.tree().apply_batch(batch)?;
            self.removed(pending);
            removed += pending;
        }
        Ok(removed)
    }
}

//! The audit log: appends and paged queries over one sled tree.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use crate::audit::{AuditEntry, AuditError, AuditKey, AuditPage, AuditQuery, AuditRecord};

/// An audit record serialised and ready to be inserted inside a transaction.
#[derive(Debug, Clone)]
pub struct EncodedRecord {
    time: crate::audit::Timestamp,
    bytes: Vec<u8>,
}

impl EncodedRecord {
    /// Serialises `record`.
    pub fn encode(record: &AuditRecord) -> Result<Self, AuditError> {
        let bytes = serde_json::to_vec(record).map_err(|source| AuditError::Encode {
            resource_id: record.resource_id.clone(),
            source,
        })?;
        Ok(Self {
            time: record.time,
            bytes,
        })
    }

    /// Inserts this record into the audit tree of a running transaction, under a fresh key.
    pub fn insert_in<E>(
        &self,
        tree: &TransactionalTree,
    ) -> Result<AuditKey, ConflictableTransactionError<E>> {
        let key = AuditKey {
            time: self.time,
            seq: tree.generate_id()?,
        };
        tree.insert(&key.to_bytes()[..], self.bytes.as_slice())?;
        Ok(key)
    }
}

/// The audit log of one node. Cheap to clone (sled trees are shared handles).
///
/// Appends do not flush: whoever advances the feed marker flushes once for the whole batch.
/// Queries are range scans over the time-ordered key; field filters are applied while
/// scanning and stop at the page limit, so a very selective filter over a long, unbounded
/// time range reads many records. Give a time range when that matters.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tree: sled::Tree,
    /// Records in the tree. sled counts by scanning every record, and status reads the count
    /// on every call, so it is counted once at open and kept current by every writer.
    count: Arc<AtomicUsize>,
}

impl AuditLog {
    /// Uses `tree` for the records; the tree must hold nothing but audit records.
    pub fn new(tree: sled::Tree) -> Self {
        let count = Arc::new(AtomicUsize::new(tree.len()));
        Self { tree, count }
    }

    /// Notes `records` appended by a committed transaction that used [`AuditLog::tree`].
    pub fn appended(&self, records: usize) {
        self.count.fetch_add(records, Ordering::Relaxed);
    }

    /// Notes `records` removed.
    pub(crate) fn removed(&self, records: usize) {
        // Never below zero, whatever the order of concurrent notes.
        let _ = self
            .count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(records))
            });
    }

    /// The underlying tree, for multi-tree transactions.
    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// Appends `records` atomically (all or none) and returns their keys in order.
    pub fn append_batch(&self, records: &[AuditRecord]) -> Result<Vec<AuditKey>, AuditError> {
        let encoded = records
            .iter()
            .map(EncodedRecord::encode)
            .collect::<Result<Vec<_>, _>>()?;
        let keys = self
            .tree
            .transaction(|tx| {
                encoded
                    .iter()
                    .map(|record| record.insert_in::<AuditError>(tx))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Abort(e) => e,
                sled::transaction::TransactionError::Storage(e) => AuditError::Storage(e),
            })?;
        self.appended(keys.len());
        Ok(keys)
    }

    /// One record by key.
    pub fn get(&self, key: AuditKey) -> Result<Option<AuditRecord>, AuditError> {
        self.tree
            .get(key.to_bytes())?
            .map(|bytes| decode(key, &bytes))
            .transpose()
    }

    /// One page of records matching `query`, newest first.
    pub fn query(&self, query: &AuditQuery) -> Result<AuditPage, AuditError> {
        let limit = query.page_size();
        let mut entries = Vec::with_capacity(limit.min(1024));
        let mut next = None;
        for item in self.range(query).rev() {
            let entry = item?;
            if !query.matches(&entry.record) {
                continue;
            }
            if entries.len() == limit {
                next = entries.last().map(|e: &AuditEntry| e.key);
                break;
            }
            entries.push(entry);
        }
        Ok(AuditPage { entries, next })
    }

    /// Up to `query.page_size()` records matching `query`, newest first, looking at no more
    /// than the newest `scan_at_most` records of its range: a summary (a status report) must
    /// not walk a year of audit to find that little failed.
    pub fn recent(
        &self,
        query: &AuditQuery,
        scan_at_most: usize,
    ) -> Result<Vec<AuditEntry>, AuditError> {
        let mut entries = Vec::new();
        for item in self.range(query).rev().take(scan_at_most) {
            let entry = item?;
            if query.matches(&entry.record) {
                entries.push(entry);
                if entries.len() == query.page_size() {
                    break;
                }
            }
        }
        Ok(entries)
    }

    /// Every record matching `query`'s time bounds and filters, oldest first, ignoring
    /// `limit`. Used for exports; it streams, so memory stays flat.
    pub fn scan_oldest_first<'a>(
        &'a self,
        query: &'a AuditQuery,
    ) -> impl Iterator<Item = Result<AuditEntry, AuditError>> + 'a {
        self.range(query).filter(move |item| match item {
            Ok(entry) => query.matches(&entry.record),
            Err(_) => true,
        })
    }

    /// Number of records (kept as records are appended and pruned).
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// True when no record is stored.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    fn range(
        &self,
        query: &AuditQuery,
    ) -> impl DoubleEndedIterator<Item = Result<AuditEntry, AuditError>> + use<> {
        let lower = query.lower_key().to_bytes();
        let iter = match query.upper_key() {
            Some(upper) => self.tree.range(lower..upper.to_bytes()),
            None => self.tree.range(lower..),
        };
        iter.map(|item| {
            let (key_bytes, value) = item?;
            let key = AuditKey::from_bytes(&key_bytes).ok_or_else(|| AuditError::BadKey {
                key: hex_string(&key_bytes),
            })?;
            Ok(AuditEntry {
                key,
                record: decode(key, &value)?,
            })
        })
    }
}

fn decode(key: AuditKey, bytes: &[u8]) -> Result<AuditRecord, AuditError> {
    serde_json::from_slice(bytes).map_err(|source| AuditError::Decode {
        key: key.to_cursor(),
        source,
    })
}

pub(crate) fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

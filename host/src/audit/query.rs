//! Audit keys and queries: which records a caller wants, and one page of the answer.

use serde::{Deserialize, Serialize};

use crate::audit::{AuditRecord, OutcomeKind, Timestamp};
use crate::sync::conflict::Direction;

/// The key of one audit record: big-endian time then a database-unique sequence, so a
/// forward scan is oldest first and a reverse scan newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AuditKey {
    /// The record's time.
    pub time: Timestamp,
    /// Unique within the database; breaks ties between records of the same millisecond.
    pub seq: u64,
}

/// Length in bytes of an encoded [`AuditKey`].
pub const AUDIT_KEY_LEN: usize = 16;

impl AuditKey {
    /// The smallest key at `time`.
    pub fn first_at(time: Timestamp) -> Self {
        Self { time, seq: 0 }
    }

    /// The sled key bytes.
    pub fn to_bytes(self) -> [u8; AUDIT_KEY_LEN] {
        let mut out = [0u8; AUDIT_KEY_LEN];
        out[..8].copy_from_slice(&self.time.as_millis().to_be_bytes());
        out[8..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    /// Decodes sled key bytes; `None` if the length is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; AUDIT_KEY_LEN] = bytes.try_into().ok()?;
        let (time, seq) = bytes.split_at(8);
        Some(Self {
            time: Timestamp::from_millis(u64::from_be_bytes(time.try_into().ok()?)),
            seq: u64::from_be_bytes(seq.try_into().ok()?),
        })
    }

    /// An opaque cursor string for CLIs and HTTP (`<millis>-<seq>`).
    pub fn to_cursor(self) -> String {
        format!("{}-{}", self.time.as_millis(), self.seq)
    }

    /// Parses [`AuditKey::to_cursor`] output.
    pub fn from_cursor(cursor: &str) -> Option<Self> {
        let (time, seq) = cursor.split_once('-')?;
        Some(Self {
            time: Timestamp::from_millis(time.parse().ok()?),
            seq: seq.parse().ok()?,
        })
    }
}

/// Which audit records to return. Every set field must match; a page holds at most
/// `limit` records, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only records at or after this time.
    pub since: Option<Timestamp>,
    /// Only records strictly before this time.
    pub until: Option<Timestamp>,
    /// Only this outcome kind.
    pub outcome: Option<OutcomeKind>,
    /// Only this direction.
    pub direction: Option<Direction>,
    /// Only this feed category.
    pub category: Option<String>,
    /// Only this resource type.
    pub resource_type: Option<String>,
    /// Only this resource id.
    pub resource_id: Option<String>,
    /// Only records written by this node.
    pub node: Option<String>,
    /// Page cursor: only records strictly older than this key (the previous page's `next`).
    pub before: Option<AuditKey>,
    /// Page size; 0 means [`AuditQuery::DEFAULT_LIMIT`].
    pub limit: usize,
}

impl AuditQuery {
    /// Page size used when `limit` is 0.
    pub const DEFAULT_LIMIT: usize = 100;

    /// The effective page size.
    pub fn page_size(&self) -> usize {
        if self.limit == 0 {
            Self::DEFAULT_LIMIT
        } else {
            self.limit
        }
    }

    /// True when `record` passes every field filter (time bounds are applied by the scan).
    pub fn matches(&self, record: &AuditRecord) -> bool {
        fn eq<T: PartialEq + ?Sized>(want: Option<&T>, have: &T) -> bool {
            want.is_none_or(|w| w == have)
        }
        eq(self.outcome.as_ref(), &record.outcome.kind())
            && eq(self.direction.as_ref(), &record.direction)
            && eq(self.category.as_deref(), record.category.as_str())
            && eq(self.resource_type.as_deref(), record.resource_type.as_str())
            && eq(self.resource_id.as_deref(), record.resource_id.as_str())
            && eq(self.node.as_deref(), record.node.as_str())
    }

    /// The exclusive upper key bound of the scan: the earlier of `until` and `before`.
    pub(crate) fn upper_key(&self) -> Option<AuditKey> {
        let until = self.until.map(AuditKey::first_at);
        match (until, self.before) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The inclusive lower key bound of the scan.
    pub(crate) fn lower_key(&self) -> AuditKey {
        AuditKey::first_at(self.since.unwrap_or_default())
    }
}

/// One stored record and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The record's key (use it as a cursor or an id).
    pub key: AuditKey,
    /// The record.
    pub record: AuditRecord,
}

/// One page of a query's answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditPage {
    /// Matching records, newest first.
    pub entries: Vec<AuditEntry>,
    /// Set when more records match: pass it as `before` to get the next page.
    pub next: Option<AuditKey>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn key_bytes_order_matches_key_order(a: (u64, u64), b: (u64, u64)) {
            let ka = AuditKey { time: Timestamp::from_millis(a.0), seq: a.1 };
            let kb = AuditKey { time: Timestamp::from_millis(b.0), seq: b.1 };
            prop_assert_eq!(ka.cmp(&kb), ka.to_bytes().cmp(&kb.to_bytes()));
            prop_assert_eq!(AuditKey::from_bytes(&ka.to_bytes()), Some(ka));
            prop_assert_eq!(AuditKey::from_cursor(&ka.to_cursor()), Some(ka));
        }
    }

    #[test]
    fn upper_bound_is_the_earlier_of_until_and_cursor() {
        let cursor = AuditKey {
            time: Timestamp::from_millis(50),
            seq: 9,
        };
        let q = AuditQuery {
            until: Some(Timestamp::from_millis(40)),
            before: Some(cursor),
            ..AuditQuery::default()
        };
        assert_eq!(
            q.upper_key(),
            Some(AuditKey::first_at(Timestamp::from_millis(40)))
        );
        let q = AuditQuery {
            before: Some(cursor),
            ..AuditQuery::default()
        };
        assert_eq!(q.upper_key(), Some(cursor));
    }
}

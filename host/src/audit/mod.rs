//! The audit log: every event a node processes leaves one record, stored in sled and
//! queryable by time, outcome, direction, type, resource and node.

pub mod excerpt;
mod log;
mod maintenance;
mod query;
mod record;
mod timestamp;

pub use log::{AuditLog, EncodedRecord};
pub use maintenance::{PruneReport, Retention};
pub use query::{AUDIT_KEY_LEN, AuditEntry, AuditKey, AuditPage, AuditQuery};
pub use record::{AuditRecord, Outcome, OutcomeKind, PluginRef, SkipReason};
pub use timestamp::{Timestamp, TimestampParseError};

/// What can go wrong reading or writing the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// sled failed.
    #[error("audit storage failed")]
    Storage(#[from] sled::Error),
    /// A record could not be serialised.
    #[error("could not encode the audit record for resource `{resource_id}`")]
    Encode {
        /// The record's resource id.
        resource_id: String,
        /// The serialiser's error.
        source: serde_json::Error,
    },
    /// A stored record could not be read back.
    #[error("audit record `{key}` is unreadable")]
    Decode {
        /// The record's cursor.
        key: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The tree holds a key that is not an audit key.
    #[error("audit tree holds a foreign key {key} (hex)")]
    BadKey {
        /// The key in hex.
        key: String,
    },
    /// Writing an export failed.
    #[error("audit export failed after {written} records")]
    Export {
        /// Records written before the failure.
        written: usize,
        /// The writer's error.
        source: std::io::Error,
    },
}

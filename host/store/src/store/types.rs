//! The public vocabulary of the store: keys, versions, write requests and outcomes, change-log
//! entries and errors.

use std::sync::Arc;

use time::OffsetDateTime;

pub use sync_host_types::Action;

use crate::json::JsonError;
use crate::scope::{Classifier, Classify};

pub use sync_host_scope::{Kind, Placement, ResourceKey};

/// How the store is set up for one node.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// This node's id, recorded as the origin of changes made here.
    pub node_id: String,
    /// Old versions kept per resource besides the current one; 0 keeps all of them.
    pub history_retention: usize,
    /// Which places each written version belongs to.
    pub classifier: Arc<dyn Classify>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            node_id: String::new(),
            history_retention: 10,
            classifier: Arc::new(Classifier::standard()),
        }
    }
}

/// One version of a resource (the current one, or one kept in history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// Which resource.
    pub key: ResourceKey,
    /// 1, 2, 3...: a delete is a version too.
    pub version_id: u64,
    /// When this version was written here, or, for a FHIR version relayed from another node,
    /// the `meta.lastUpdated` it was edited at there (millisecond precision).
    pub last_updated: OffsetDateTime,
    /// Whether this version is a tombstone.
    pub deleted: bool,
    /// Stored bytes, with server meta spliced in for FHIR; `None` when deleted.
    pub body: Option<String>,
    /// [`crate::hash::content_hash`] of the body; empty for a tombstone.
    pub content_hash: String,
    /// Node where this version was made.
    pub origin: String,
    /// Change-log sequence of the change that made this version.
    pub sequence: u64,
    /// What that change did.
    pub action: Action,
    /// Where the version belongs.
    pub placement: Placement,
}

/// What a write requires of the resource's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precondition {
    /// Nothing: update, or create.
    #[default]
    Any,
    /// The current version must be this one (`If-Match`).
    Version(u64),
    /// No live version may exist (`If-None-Match: *`); a deleted resource may be re-created.
    Absent,
}

/// A request to write (or delete) one resource.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    /// Which resource.
    pub key: ResourceKey,
    /// New content; `None` deletes.
    pub body: Option<String>,
    /// What the current state must be for the write to happen.
    pub precondition: Precondition,
    /// Node where the change was made; `None` means this node.
    pub origin: Option<String>,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// A new resource (or a re-creation after a delete).
    Created(VersionRecord),
    /// A new version of an existing resource.
    Updated(VersionRecord),
    /// The content hash equals the current one: nothing written or logged.
    Unchanged(VersionRecord),
    /// A tombstone was written.
    Deleted(VersionRecord),
    /// Delete of a resource that does not exist or is already deleted.
    AlreadyGone,
}

impl WriteOutcome {
    /// The resulting version, if any.
    pub fn record(&self) -> Option<&VersionRecord> {
        match self {
            WriteOutcome::Created(record)
            | WriteOutcome::Updated(record)
            | WriteOutcome::Unchanged(record)
            | WriteOutcome::Deleted(record) => Some(record),
            WriteOutcome::AlreadyGone => None,
        }
    }
}

/// One change-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Node-wide monotonic sequence, contiguous from 1.
    pub sequence: u64,
    /// What the change did.
    pub action: Action,
    /// Feed category: the resource type in lower case.
    pub category: String,
    /// Which resource.
    pub key: ResourceKey,
    /// Version made by the change.
    pub version_id: u64,
    /// Content hash of that version (empty for a delete).
    pub content_hash: String,
    /// Node where the change was made.
    pub origin: String,
    /// When it was committed on this node.
    pub at: OffsetDateTime,
    /// Where the version belongs.
    pub placement: Placement,
    /// Keys the resource's previous version had and this one has not: a scoped reader of
    /// those keys learns from this entry that the resource left its scope.
    pub left_keys: Vec<String>,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// `If-Match` named another version than the current one.
    #[error("version mismatch for {key}: expected version {expected}, current is {current:?}")]
    VersionMismatch {
        /// The resource, as text.
        key: String,
        /// The version the writer expected.
        expected: u64,
        /// The current version, if the resource exists.
        current: Option<u64>,
    },
    /// The write was create-only (`If-None-Match: *`) and a live version exists.
    #[error("{key} already exists at version {current}; the write may only create it")]
    AlreadyExists {
        /// The resource, as text.
        key: String,
        /// Its current version.
        current: u64,
    },
    /// The resource does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A body is not acceptable JSON; the text names the resource and the problem.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// A key is unusable (empty, or contains a NUL byte).
    #[error("invalid resource key {0:?}: type and id must be 1 to 1024 bytes without NUL")]
    InvalidKey(String),
    /// The database failed or holds data this version cannot read.
    #[error("storage error: {0}")]
    Storage(String),
    /// A scoped client may not write this resource: its current version, or the version
    /// written, lies outside the client's data scope.
    #[error("{0} lies outside the data scope of the client writing it")]
    OutOfScope(ResourceKey),
    /// The store's committer has stopped (the store is shutting down).
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    /// An [`StoreError::InvalidJson`] naming the resource.
    pub fn invalid_json(key: &ResourceKey, error: &JsonError) -> Self {
        StoreError::InvalidJson(format!("{key}: {error}"))
    }
}

impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> Self {
        StoreError::Storage(error.to_string())
    }
}

//! Snapshots of a store, for bootstrapping a new node without reading its parent's feed page
//! by page (or with no link at all: a snapshot fits on a USB stick).
//!
//! A snapshot is a directory holding `resources.ndjson.gz`, every live current version as
//! one JSON line with its key, version, content hash and origin (the body embedded byte for
//! byte), and `manifest.json`: the node it was taken of, the feed positions it reflects,
//! counts, and the SHA-256 of the compressed file. A reader checks the checksum and decodes
//! every line before anything is written, so a damaged snapshot changes nothing.

mod export;
mod read;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use export::export;
pub use read::{SnapshotRecord, open, read_records, verify};

/// The format a manifest names; a reader refuses any other.
pub const FORMAT: &str = "sync-host-snapshot/1";
/// The manifest's file name inside a snapshot directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The resources' file name inside a snapshot directory.
pub const RESOURCES_FILE: &str = "resources.ndjson.gz";

/// What a snapshot holds and where the feed stood when it was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The node the snapshot was taken of.
    pub node_id: String,
    /// When it was taken (RFC 3339).
    pub created_at: String,
    /// The last change-log sequence the snapshot reflects.
    pub last_sequence: u64,
    /// The node's feed page size: positions become page numbers with it.
    pub page_size: usize,
    /// Per feed (`all` and each category): how many entries it had, and its last one.
    pub feeds: BTreeMap<String, FeedPosition>,
    /// Live resources in the file.
    pub resources: u64,
    /// Deleted resources left out (a new node has nothing to delete).
    pub tombstones: u64,
    /// Bytes of the compressed resources file.
    pub bytes: u64,
    /// SHA-256 of the compressed resources file, hex.
    pub sha256: String,
}

/// Where one feed stood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedPosition {
    /// Entries in the feed.
    pub entries: u64,
    /// Sequence of its last entry.
    pub last_sequence: u64,
}

impl FeedPosition {
    /// The number of the page holding the last entry, with pages of `page_size`.
    pub fn last_page(&self, page_size: usize) -> u64 {
        self.entries.saturating_sub(1) / page_size.max(1) as u64 + 1
    }
}

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The output directory already holds files.
    #[error("{} is not empty; a snapshot is written into a new directory", path.display())]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// The manifest is not one this version reads.
    #[error("{}: not a snapshot manifest", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The manifest names another format.
    #[error("snapshot format {found:?} is not supported (expected {FORMAT:?})")]
    Format {
        /// What the manifest says.
        found: String,
    },
    /// The resources file is not the one the manifest describes.
    #[error(
        "{}: {found_bytes} bytes with SHA-256 {found}, but the manifest expects {expected_bytes} bytes with {expected}: the snapshot is damaged or incomplete",
        path.display()
    )]
    Checksum {
        /// The resources file.
        path: PathBuf,
        /// The manifest's checksum.
        expected: String,
        /// The file's checksum.
        found: String,
        /// The manifest's size.
        expected_bytes: u64,
        /// The file's size.
        found_bytes: u64,
    },
    /// A line of the resources file could not be used.
    #[error("{}: line {line}: {message}", path.display())]
    Record {
        /// The resources file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// The file holds another number of resources than the manifest says.
    #[error("the snapshot holds {found} resources, but its manifest says {expected}")]
    Count {
        /// The manifest's count.
        expected: u64,
        /// Lines found.
        found: u64,
    },
    /// Whoever took the records stopped taking them (and reports its own reason).
    #[error("the records were no longer taken")]
    Abandoned,
    /// The store failed.
    #[error("the store")]
    Store(#[from] crate::store::StoreError),
}

/// An I/O error on `path`.
fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}

//! Errors: a page that cannot be used at all, and an entry that cannot be used.

use thiserror::Error;

/// The page as a whole is unusable (not XML, not an Atom feed). A reader
/// should treat this like a failed fetch and retry later.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FeedError {
    /// The text is not well-formed XML.
    #[error("feed page is not well-formed XML at byte {position}: {message}")]
    NotXml {
        /// Byte offset where the XML reader gave up.
        position: u64,
        /// What the XML reader reported.
        message: String,
    },
    /// The document has no root element at all.
    #[error("feed page is empty: no root element")]
    Empty,
    /// The root element is not an Atom `<feed>`.
    #[error("feed page root element is <{found}>, expected an Atom <feed>")]
    NotAtom {
        /// The root element's name as written.
        found: String,
    },
    /// The document ends before the root element is closed.
    #[error("feed page is truncated: <feed> is never closed")]
    Truncated,
    /// The feed's own elements nest deeper than a page may.
    #[error("feed page nests elements deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The feed's own elements (id, title, links, updated) cannot be read.
    #[error("feed page header is unreadable: {0}")]
    Header(String),
}

/// One entry is unusable; the rest of the page is fine. The sync engine
/// records it as a failed event (keeping [`crate::ParsedEntry::raw`]) and
/// goes on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EntryError {
    /// The entry's XML is well-formed but not a readable Atom entry
    /// (for example an unparseable date).
    #[error("feed entry is not a readable Atom entry: {0}")]
    Malformed(String),
    /// The entry nests elements deeper than a page may.
    #[error("feed entry nests elements deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The entry is larger than an entry may be.
    #[error("feed entry is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The entry's id is longer than an id may be.
    #[error("feed entry id is longer than {limit} bytes")]
    IdTooLong {
        /// The limit.
        limit: usize,
    },
    /// The entry has no `<id>` or an empty one.
    #[error("feed entry has no id")]
    NoId,
    /// The entry has no category term other than an action.
    #[error("feed entry {id} has no category term")]
    NoCategory {
        /// The entry id.
        id: String,
    },
    /// The entry has no `<content>`.
    #[error("feed entry {id} has no content")]
    NoContent {
        /// The entry id.
        id: String,
    },
    /// The content is neither a JSON object of links nor a bare URL.
    #[error("feed entry {id} has unparseable content ({reason}): {content:?}")]
    UnparseableContent {
        /// The entry id.
        id: String,
        /// Why it could not be read.
        reason: String,
        /// The content text.
        content: String,
    },
    /// The content holds no link at all.
    #[error("feed entry {id} has no resource link in its content")]
    NoLink {
        /// The entry id.
        id: String,
    },
    /// Neither our extension nor any link says which resource changed.
    #[error("feed entry {id}: no resource type and id in its extensions or links {links:?}")]
    NoResourceId {
        /// The entry id.
        id: String,
        /// The links that were tried.
        links: Vec<String>,
    },
    /// One of our extension elements holds a value we cannot read.
    #[error("feed entry {id}: extension <{element}> has unreadable value {value:?}")]
    BadExtension {
        /// The entry id.
        id: String,
        /// The extension's local name, e.g. `sequence`.
        element: String,
        /// The value found.
        value: String,
    },
    /// A date in the entry is outside the range this reader can represent.
    #[error("feed entry {id}: date {date} is out of range")]
    DateOutOfRange {
        /// The entry id.
        id: String,
        /// The date as written.
        date: String,
    },
}

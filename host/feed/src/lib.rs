//! Atom change feeds for sync-host: writing pages, reading OpenMRS-compatible pages, and deciding
//! which page to read next. Pure code, no I/O.
//!
//! Pages follow RFC 4287 with RFC 5005 paging links (`self`, `via`, `first`, `prev-archive`,
//! `next-archive`) and the entry shape of the OpenMRS atomfeed module: one category term per tag,
//! in any order (the category, the upper-case action, feed-filter tags), and content of type
//! `application/vnd.atomfeed+xml` holding a CDATA JSON object of links keyed by client
//! (`{"rest":"/ws/rest/v1/patient/<uuid>?v=full","fhir":"/ws/fhir2/R4/Patient/<uuid>"}`).
//! Older publishers put a bare REST URL in the content; the reader accepts that too.
//!
//! Our own data (sequence, origin, version, content hash, resource type and id) travels in
//! extension elements of the [`SYNC_HOST_NS`] namespace, which other readers ignore.
//!
//! ```
//! use sync_host_feed::{
//!     Action, ContentLink, Extensions, FeedEntry, FeedPage, Next, PageLinks, parse_page,
//!     read_parsed_page, render_page,
//! };
//! use time::macros::datetime;
//!
//! // Publishing: the embedded store renders a page of its change log.
//! let at = datetime!(2024-05-01 08:00 UTC);
//! let page = FeedPage {
//!     id: "urn:sync-host:clinic-7:patient:1".into(),
//!     title: "clinic-7 patient".into(),
//!     updated: at,
//!     links: PageLinks {
//!         self_: Some("http://clinic-7/ws/atomfeed/patient/recent".into()),
//!         via: Some("http://clinic-7/ws/atomfeed/patient/1".into()),
//!         ..PageLinks::default()
//!     },
//!     entries: vec![FeedEntry {
//!         id: "urn:sync-host:clinic-7:change:1".into(),
//!         title: "Patient".into(),
//!         updated: at,
//!         published: at,
//!         category: "patient".into(),
//!         action: Some(Action::Created),
//!         tags: vec![],
//!         links: vec![ContentLink::new("fhir", "/ws/fhir2/R4/Patient/a65f")],
//!         ext: Extensions { sequence: Some(1), origin: Some("clinic-7".into()), ..Extensions::default() },
//!     }],
//! };
//! let xml = render_page(&page);
//!
//! // Reading: the sync engine parses it and decides what is new.
//! let parsed = parse_page(&xml)?;
//! let reading = read_parsed_page(None, &parsed);
//! let entry = parsed.entries[reading.new_entries.start].result.as_ref().unwrap();
//! assert_eq!((entry.resource_type.as_str(), entry.resource_id.as_str()), ("Patient", "a65f"));
//! assert_eq!(entry.entry.ext.origin.as_deref(), Some("clinic-7"));
//! assert_eq!(reading.next, Next::CaughtUp);
//! # Ok::<(), sync_host_feed::FeedError>(())
//! ```

#![warn(missing_docs)]

mod content;
mod dates;
mod error;
#[doc(hidden)]
pub mod fuzz_checks;
mod interpret;
mod model;
mod names;
mod navigation;
mod parse;
mod render;
mod resource;
mod split;

pub use error::{EntryError, FeedError};
pub use model::{
    Action, ContentLink, Extensions, FeedEntry, FeedEntryView, FeedPage, PageLinks, ParsedEntry,
    ParsedPage,
};
pub use navigation::{
    FirstSyncStep, Marker, Next, PageReading, StartRoute, first_sync_step, marker_page_url,
    read_page, read_parsed_page,
};
pub use parse::{MAX_ENTRY_BYTES, MAX_ID_BYTES, parse_page};
pub use render::render_page;
pub use resource::{resolve_href, resource_from_href};
pub use split::MAX_ELEMENT_DEPTH;
pub use sync_host_types::UnknownAction;

/// The XML namespace of our extension elements.
pub const SYNC_HOST_NS: &str = "https://sync-host.dev/ns/feed/1";
/// The prefix we declare for [`SYNC_HOST_NS`] when writing. Readers match the namespace, not
/// the prefix.
pub const SYNC_HOST_PREFIX: &str = "sh";
/// The Atom namespace.
pub const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
/// The content type of an entry's link content, as the OpenMRS atomfeed module writes it.
pub const ATOMFEED_CONTENT_TYPE: &str = "application/vnd.atomfeed+xml";

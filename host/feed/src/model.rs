//! The data a feed page carries: pages, entries, actions, links and our extensions.

use time::OffsetDateTime;

use crate::error::EntryError;
pub use sync_host_types::Action;

/// A link to the resource's representation, keyed by the client that
/// understands it (`fhir`, `rest`, or a name an implementation invents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentLink {
    /// The client name, the key in the entry's JSON content.
    pub client: String,
    /// Relative to the publishing node's base URL (as OpenMRS publishes it),
    /// or absolute.
    pub href: String,
}

impl ContentLink {
    /// A link for `client` to `href`.
    pub fn new(client: impl Into<String>, href: impl Into<String>) -> Self {
        ContentLink {
            client: client.into(),
            href: href.into(),
        }
    }
}

/// Our extension elements (namespace [`crate::SYNC_HOST_NS`]); other readers
/// ignore them. Every field is optional: feeds from other publishers carry none.
///
/// Values are read back without surrounding white space, and an empty value
/// reads as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// The publisher's feed sequence number (`<sh:sequence>`).
    pub sequence: Option<u64>,
    /// The node where the change was first made (`<sh:origin>`).
    pub origin: Option<String>,
    /// The resource version at this change (`<sh:version>`).
    pub version: Option<String>,
    /// The canonical content hash at this change (`<sh:hash>`).
    pub content_hash: Option<String>,
    /// The resource type, e.g. `Patient` (`<sh:resourceType>`).
    pub resource_type: Option<String>,
    /// The resource id (`<sh:resourceId>`).
    pub resource_id: Option<String>,
    /// The resource has left the reader's data scope (`<sh:scope>left</sh:scope>`): the
    /// publisher sends it no further changes of it, and says no more about it.
    pub left_scope: bool,
}

impl Extensions {
    /// True when the entry carries none of our extensions.
    pub fn is_empty(&self) -> bool {
        *self == Extensions::default()
    }
}

/// One change, as written to (or read from) a feed page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// The stable, unique Atom entry id. Read back without surrounding XML
    /// white space; an entry whose id is blank is unusable.
    pub id: String,
    /// The entry title (OpenMRS uses the resource class, e.g. `Patient`).
    pub title: String,
    /// When the entry was last updated.
    pub updated: OffsetDateTime,
    /// When the entry was first published. A reader that finds no
    /// `<published>` uses `updated`.
    pub published: OffsetDateTime,
    /// The feed category, lower case by convention (`patient`).
    pub category: String,
    /// `None` when the entry has no action term (older publishers).
    pub action: Option<Action>,
    /// Other category terms, e.g. an OpenMRS feed-filter XML, unescaped.
    pub tags: Vec<String>,
    /// The resource's representations, in the order they are written.
    pub links: Vec<ContentLink>,
    /// Our extension elements.
    pub ext: Extensions,
}

/// The RFC 5005 paging links of a page (plus `first`, which we add).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageLinks {
    /// `rel="self"`: the URL the page was requested at (e.g. `.../recent`).
    pub self_: Option<String>,
    /// `rel="via"`: the page's canonical URL (e.g. `.../3`).
    pub via: Option<String>,
    /// `rel="first"`: the oldest archive page.
    pub first: Option<String>,
    /// `rel="prev-archive"`: the next older page.
    pub prev_archive: Option<String>,
    /// `rel="next-archive"`: the next newer page.
    pub next_archive: Option<String>,
}

/// A page to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPage {
    /// The page's Atom id (stable for a given page).
    pub id: String,
    /// The feed title.
    pub title: String,
    /// When the page last changed (the newest entry, or now for an empty page).
    pub updated: OffsetDateTime,
    /// The paging links.
    pub links: PageLinks,
    /// The entries, oldest first (the order in which a reader applies them).
    pub entries: Vec<FeedEntry>,
}

/// A page as read: the page itself is usable, each entry may not be.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPage {
    /// The page's Atom id.
    pub id: String,
    /// The feed title.
    pub title: String,
    /// The page's `updated` time.
    pub updated: OffsetDateTime,
    /// The paging links.
    pub links: PageLinks,
    /// The entries in document order.
    pub entries: Vec<ParsedEntry>,
}

/// One entry as read.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEntry {
    /// The entry's text exactly as it appeared in the page, for the audit trail.
    pub raw: String,
    /// The entry id when one could be read, even if the entry is otherwise
    /// unusable (navigation uses it to place markers).
    pub id: Option<String>,
    /// The entry, or what is wrong with it.
    pub result: Result<FeedEntryView, EntryError>,
}

/// A readable entry plus what the reader derives from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntryView {
    /// The entry as published (`action` is `None` when it had no action term).
    pub entry: FeedEntry,
    /// The action, [`Action::Updated`] when the entry had none.
    pub action: Action,
    /// From our extension, else the `fhir` link, else the `rest` link, else
    /// any other link (`Patient` from `/ws/fhir2/R4/Patient/<id>`, `patient`
    /// from `/ws/rest/v1/patient/<uuid>?v=full`).
    pub resource_type: String,
    /// Found the same way as `resource_type`.
    pub resource_id: String,
}

impl FeedEntryView {
    /// The link for `client` (`fhir`, `rest`, ...), if the entry has one.
    pub fn link(&self, client: &str) -> Option<&str> {
        self.entry
            .links
            .iter()
            .find(|link| link.client == client)
            .map(|link| link.href.as_str())
    }
}

impl ParsedPage {
    /// The ids of the entries in document order (`None` where an entry has no id).
    pub fn entry_ids(&self) -> Vec<Option<&str>> {
        self.entries
            .iter()
            .map(|entry| entry.id.as_deref())
            .collect()
    }
}

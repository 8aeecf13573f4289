//! Element names, schemes and markers shared by the writer and the reader.

/// Category scheme marking the term that is the entry's category.
pub(crate) const SCHEME_CATEGORY: &str = "https://sync-host.dev/ns/feed/1#category";
/// Category scheme marking the action term.
pub(crate) const SCHEME_ACTION: &str = "https://sync-host.dev/ns/feed/1#action";
/// Category scheme marking any other term (a tag).
pub(crate) const SCHEME_TAG: &str = "https://sync-host.dev/ns/feed/1#tag";

/// `<sh:sequence>`: the publisher's feed sequence number.
pub(crate) const EXT_SEQUENCE: &str = "sequence";
/// `<sh:origin>`: the node where the change was first made.
pub(crate) const EXT_ORIGIN: &str = "origin";
/// `<sh:version>`: the resource version at this change.
pub(crate) const EXT_VERSION: &str = "version";
/// `<sh:hash>`: the canonical content hash at this change.
pub(crate) const EXT_HASH: &str = "hash";
/// `<sh:resourceType>`: the resource type.
pub(crate) const EXT_RESOURCE_TYPE: &str = "resourceType";
/// `<sh:resourceId>`: the resource id.
pub(crate) const EXT_RESOURCE_ID: &str = "resourceId";
/// `<sh:scope>`: `left` when the resource has left the reader's data scope.
pub(crate) const EXT_SCOPE: &str = "scope";
/// The one value of `<sh:scope>`.
pub(crate) const SCOPE_LEFT: &str = "left";

/// The start tag of an entry's content exactly as `atom_syndication` writes it.
pub(crate) const CONTENT_START_TAG: &str = "<content type=\"application/vnd.atomfeed+xml\">";

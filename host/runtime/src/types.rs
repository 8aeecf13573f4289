//! Plain host-side Rust types mirroring the `sync:plugin` WIT types.
//!
//! The rest of the host works with these; the generated bindings stay private to
//! the runtime and are converted in one place (`bindings.rs`).

use serde::{Deserialize, Serialize};
pub use sync_host_types::{Action, Direction, FailureKind};

/// Which side of a sync an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The node above this one in the tree.
    Parent,
    /// This node's own store.
    Local,
}

/// A place a resource client talks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Which side of the sync this is.
    pub role: Role,
    /// Absolute base URL without a trailing slash.
    pub base_url: String,
}

/// A link to a resource's representation, keyed by the client that understands it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Client name such as `fhir` or `rest`.
    pub client: String,
    /// Relative to the endpoint's base URL, or absolute.
    pub href: String,
}

/// One entry of an Atom change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The entry's stable Atom id.
    pub id: String,
    /// The publisher's sequence number, when known.
    pub sequence: Option<u64>,
    /// Feed category, lower case.
    pub category: String,
    /// What happened.
    pub action: Action,
    /// Resource type (`Patient`) or REST resource name (`patient`).
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: String,
    /// Representations of the resource, per client.
    pub links: Vec<Link>,
    /// Other category terms of the entry.
    pub tags: Vec<String>,
    /// The node where the change was first made.
    pub origin: Option<String>,
    /// The resource version at this change.
    pub version: Option<String>,
    /// The canonical content hash at this change.
    pub content_hash: Option<String>,
    /// The entry as it appeared in the feed.
    pub raw: String,
}

/// The current state of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// Resource type or REST resource name.
    pub resource_type: String,
    /// The resource's id.
    pub id: String,
    /// The version at the source.
    pub version: Option<String>,
    /// The JSON body exactly as the source returned it.
    pub body: String,
    /// True for a tombstone.
    pub deleted: bool,
}

/// The `expected_version` of a write that must only create: the target must hold no live
/// copy (`If-None-Match: *`). No version id is empty, so the value cannot mean a version.
pub const CREATE_ONLY: &str = "";

/// One resource to write to a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// What to write.
    pub resource: Resource,
    /// Write only if the target's current version equals this; [`CREATE_ONLY`] writes only
    /// if the target holds no live copy.
    pub expected_version: Option<String>,
    /// The node the change came from.
    pub origin: Option<String>,
}

/// What a successful write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteOutcome {
    /// The target did not have the resource.
    Created,
    /// The target's copy was replaced.
    Updated,
    /// The target already had this content.
    Unchanged,
    /// The target's copy was deleted.
    Deleted,
}

/// The result of one successful write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// Resource type or REST resource name.
    pub resource_type: String,
    /// The resource's id.
    pub id: String,
    /// The version the target assigned.
    pub version: Option<String>,
    /// What the write did.
    pub outcome: WriteOutcome,
}

/// HTTP status and operator-facing message of a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureDetail {
    /// The HTTP status, if there was a response.
    pub status: Option<u16>,
    /// What went wrong.
    pub message: String,
}

/// Why one resource could not be fetched or stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum Failure {
    /// The resource does not exist at the source.
    NotFound(FailureDetail),
    /// The resource existed and was deleted.
    Gone(FailureDetail),
    /// The target changed since the expected version, or refused a conflicting write.
    Conflict(FailureDetail),
    /// The credentials were refused.
    Unauthorized(FailureDetail),
    /// Permanent: retrying cannot help.
    Invalid(FailureDetail),
    /// Retrying later may help.
    Transient(FailureDetail),
}

impl Failure {
    /// The detail, whatever the case.
    pub fn detail(&self) -> &FailureDetail {
        match self {
            Failure::NotFound(d)
            | Failure::Gone(d)
            | Failure::Conflict(d)
            | Failure::Unauthorized(d)
            | Failure::Invalid(d)
            | Failure::Transient(d) => d,
        }
    }

    /// The kind of failure, whose name is the case name as the WIT spells it.
    pub fn kind(&self) -> FailureKind {
        match self {
            Failure::NotFound(_) => FailureKind::NotFound,
            Failure::Gone(_) => FailureKind::Gone,
            Failure::Conflict(_) => FailureKind::Conflict,
            Failure::Unauthorized(_) => FailureKind::Unauthorized,
            Failure::Invalid(_) => FailureKind::Invalid,
            Failure::Transient(_) => FailureKind::Transient,
        }
    }
}

/// A filter's decision about one event or resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "lowercase")]
pub enum Verdict {
    /// Sync it.
    Accept,
    /// Skip it, for this reason.
    Reject(String),
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// The plugin's name.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One line about what it does.
    pub description: String,
}

impl PluginInfo {
    /// `"<name> <version>"`, the way errors and audit records name a plugin.
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }
}

/// Which family of document a resource is, for a classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// A FHIR R4 resource (`Patient`).
    Fhir,
    /// An OpenMRS REST document (`patient`).
    Rest,
}

/// One resource to classify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// FHIR or REST.
    pub family: Family,
    /// The resource as it is about to be written.
    pub resource: Resource,
}

/// Where a classifier placed one resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placed {
    /// False for reference data every client may read.
    pub scoped: bool,
    /// The scope keys the resource names itself.
    pub keys: Vec<String>,
    /// The Patient whose compartment it is in, as `Patient/<id>` or `patient/<uuid>`.
    pub owner: Option<String>,
}

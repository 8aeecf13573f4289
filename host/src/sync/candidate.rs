//! The values a route group's decisions pass between stages: a resource fetched from the
//! source, a candidate paired with the target's copy, and a write waiting for the target's
//! answer, with the preconditions and origins those writes carry. No I/O.

use sync_host_runtime::{CREATE_ONLY, Event, Resource, Write};

use crate::sync::conflict::{Direction, SyncBase, VersionState};
use crate::sync::link::Link;

/// A fetched resource with its conflict-check state, computed (and hashed) once.
pub struct Fetched {
    pub event: Event,
    pub resource: Resource,
    pub state: VersionState,
}

/// A fetched resource with the target's current copy (`None` when the target has none).
pub struct Candidate {
    pub event: Event,
    pub incoming: Resource,
    pub incoming_state: VersionState,
    pub current: Option<Resource>,
    /// The stored sync base when the candidate was decided.
    pub base_read: Option<SyncBase>,
}

/// A write waiting for the target's answer, with what to record once it succeeds.
pub struct PendingWrite {
    pub event: Event,
    pub write: Write,
    /// The state being written (its hash is the write intent and the new sync base).
    pub state: VersionState,
    /// The conflict this write settles, if any.
    pub conflict: Option<crate::state::ConflictRecord>,
    /// The sync base the write was decided against; the new base replaces exactly this one.
    pub replaces: Option<SyncBase>,
}

/// A deleted resource with no body.
pub fn tombstone(event: &Event) -> Resource {
    Resource {
        resource_type: event.resource_type.clone(),
        id: event.resource_id.clone(),
        version: None,
        body: String::new(),
        deleted: true,
    }
}

/// The precondition a write to a target that holds no live copy carries: create only. A
/// resource created at the target between our read and our write is then refused (412) and
/// decided again, instead of being silently replaced.
pub fn expected_version(current: Option<&Resource>) -> Option<String> {
    match current {
        None => Some(CREATE_ONLY.to_string()),
        Some(r) => guard_over(r.deleted, r.version.as_deref()),
    }
}

/// The precondition of a write over a copy that is `deleted` (or live) at `version`: that
/// version, or create-only for a tombstone whose version is unknown (a 410 carries none).
pub fn guard_over(deleted: bool, version: Option<&str>) -> Option<String> {
    match version {
        None if deleted => Some(CREATE_ONLY.to_string()),
        version => version.map(str::to_string),
    }
}

/// The write of an incoming state, guarded by the version the target had when we looked.
/// The incoming state is the one its event announced (later states are superseded before
/// this), so the event's origin is the origin of the content written.
pub fn plain_write(p: &Link, c: Candidate) -> PendingWrite {
    let origin = c
        .event
        .origin
        .clone()
        .or_else(|| Some(default_origin(p).to_string()));
    PendingWrite {
        write: Write {
            expected_version: expected_version(c.current.as_ref()),
            resource: c.incoming,
            origin,
        },
        state: c.incoming_state,
        event: c.event,
        conflict: None,
        replaces: c.base_read,
    }
}

/// Who a change with no recorded origin came from: the parent on pull, this node on push.
fn default_origin(p: &Link) -> &str {
    match p.direction {
        Direction::Pull => &p.parent_node,
        Direction::Push => &p.node_id,
    }
}

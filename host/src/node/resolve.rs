//! Operator resolution of a parked conflict: pick a side or supply a merged body; the result
//! is written to both this node and the parent, then the conflict, the new sync base and an
//! audit record are committed together. Like a sync batch, the writes are announced as write
//! intents first and cleared by the commit, and a side found already holding the chosen
//! content (a resolution that crashed between its writes and its commit, tried again) counts
//! as written.

use serde::Deserialize;
use sync_host_runtime::{Action, Event, Failure, Resource, Write};

use crate::audit::Timestamp;
use crate::node::NodeHandle;
use crate::state::{
    BatchCommit, ConflictRecord, ConflictResolution, ConflictStatus, ConflictVersion, FailureKey,
    StateError,
};
use crate::sync::candidate::guard_over;
use crate::sync::conflict::{Direction, Side, SyncBase};
use crate::sync::event::{base_key, failure_key};
use crate::sync::outcome::{AuditContext, BatchBuilder, NewBase};
use crate::sync::version::version_state;

/// How the operator settles a conflict.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// Keep this side's version.
    pub side: Option<Side>,
    /// Or write this merged body (a JSON document of the same resource). Kept as the raw
    /// text so decimals (`72.50`) and key order reach both sides exactly as written.
    pub body: Option<Box<serde_json::value::RawValue>>,
    /// Who resolved it, for the audit.
    #[serde(default = "operator")]
    pub by: String,
}

fn operator() -> String {
    "operator".into()
}

/// Why a resolution was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no conflict {0}")]
    NotFound(u64),
    #[error("conflict {0} is already resolved")]
    AlreadyResolved(u64),
    #[error("give exactly one of `side` or `body`")]
    BadRequest,
    #[error("this node has no parent to write the resolution to")]
    NoParent,
    #[error("writing the resolution to {side} failed: {message}")]
    Write { side: &'static str, message: String },
    #[error(
        "{side} changed since conflict {id} was recorded; sync, look at the updated conflict and resolve again"
    )]
    Stale { side: &'static str, id: u64 },
    #[error(transparent)]
    State(#[from] StateError),
}

impl ResolveError {
    /// The HTTP status the admin API answers with.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            ResolveError::NotFound(_) => StatusCode::NOT_FOUND,
            ResolveError::AlreadyResolved(_) | ResolveError::Stale { .. } => StatusCode::CONFLICT,
            ResolveError::BadRequest => StatusCode::BAD_REQUEST,
            ResolveError::NoParent | ResolveError::Write { .. } => StatusCode::BAD_GATEWAY,
            ResolveError::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Resolves conflict `id` as `how` says.
pub async fn resolve_conflict(
    node: &NodeHandle,
    id: u64,
    how: Resolve,
) -> Result<ConflictRecord, ResolveError> {
    // Decided and committed like a sync batch, never alongside one for the same resource.
    let _deciding = node.state.deciding().await;
    let mut record = node.state.conflict(id)?.ok_or(ResolveError::NotFound(id))?;
    if record.status == ConflictStatus::Resolved {
        return Err(ResolveError::AlreadyResolved(id));
    }
    let (winner, body, by) = match (how.side, how.body) {
        (Some(side), None) => (
            side,
            record.version_of(side).body.clone(),
            format!("{}:{side:?}", how.by).to_lowercase(),
        ),
        (None, Some(body)) => (
            Side::Child,
            body.get().to_string(),
            format!("{}:merged", how.by),
        ),
        _ => return Err(ResolveError::BadRequest),
    };
    let services = node.services.as_ref().ok_or(ResolveError::NoParent)?;
    let (service, _) = services
        .pull
        .as_ref()
        .or(services.push.as_ref())
        .ok_or(ResolveError::NoParent)?;
    let pipeline = service.pipeline();
    let event = synthetic_event(&record);
    let route = pipeline
        .routes
        .route_for(&event)
        .ok_or(ResolveError::NoParent)?
        .clone();
    let resource = Resource {
        resource_type: record.resource_type.clone(),
        id: record.resource_id.clone(),
        version: None,
        deleted: body.is_empty(),
        body,
    };
    let hash = version_state(&resource).effective_hash().to_string();
    let client = route.client.as_ref();
    let written = write_both(node, services, client, &record, &resource, &event).await;
    let (parent_version, child_version) = match written {
        Err(stale @ ResolveError::Stale { .. }) => {
            // Show the operator what the sides hold now, so that deciding again can succeed
            // even when no sync meets this resource again.
            refresh(node, record, route.client.as_ref(), services, &event).await?;
            return Err(stale);
        }
        other => other?,
    };
    let now = Timestamp::now();
    record.status = ConflictStatus::Resolved;
    record.resolution = Some(ConflictResolution {
        winner,
        by,
        at: now,
    });
    let base = SyncBase {
        content_hash: hash,
        parent_version,
        child_version,
        left_scope: false,
    };
    let replaces = node.state.base(&base_key(&event))?;
    let mut out = BatchBuilder::new(&node.node_id, record.direction, &node.state, pipeline.retry);
    let ctx = AuditContext::default().with_plugin(route.client.info());
    // A node that does not push left the parent as it was: the base steers, it does not agree.
    let base = if services.push.is_some() {
        NewBase::Agreed(base)
    } else {
        NewBase::OneSided(base)
    };
    out.conflict(&event, &ctx, record.clone(), replaces, Some(base));
    // Both sides now hold the operator's choice: nothing is left to retry either way.
    for direction in [Direction::Pull, Direction::Push] {
        out.settle_also(direction, &event);
    }
    // The commit also closes any other open record of this resource when both sides now
    // hold the operator's choice.
    node.state.commit_batch(out.finish()).await?;
    // The base now says what both sides hold.
    let keys = [Direction::Push, Direction::Pull].map(|d| failure_key(d, &event));
    node.state.clear_intents(&keys)?;
    Ok(record)
}

/// Announces and makes the writes of a resolution of `record`: `resource` to the parent (when
/// this node pushes), then to this node. Returns both sides' versions afterwards.
///
/// Each side is written only if it still holds the version the operator saw, so an edit made
/// since the conflict was recorded is refused (412), not silently overwritten. The parent goes
/// first: it is the side most likely to have moved, and a refusal there leaves both sides
/// untouched. A node that does not push never writes to its parent, not even to settle a
/// conflict: the operator's choice then holds on this node only.
///
/// A write to the parent is announced as a push would announce it, one to this node as a
/// pull would; a side that already holds the chosen content gets no intent (it would mark
/// that side's own edit as this node's write), and a write that is refused takes back the
/// intents of the sides it leaves unwritten.
async fn write_both(
    node: &NodeHandle,
    services: &super::services::Services,
    client: &dyn sync_host_runtime::ResourceClient,
    record: &ConflictRecord,
    resource: &Resource,
    event: &Event,
) -> Result<(Option<String>, Option<String>), ResolveError> {
    let hash = version_state(resource).effective_hash().to_string();
    let to_parent = services.push.is_some();
    let announce = |direction, side: &ConflictVersion| -> Result<_, StateError> {
        let key = failure_key(direction, event);
        let fresh = side.content_hash != hash && !node.state.intents(&key)?.contains(&hash);
        Ok(fresh.then(|| (key, hash.clone())))
    };
    let parent_intent = match to_parent {
        true => announce(Direction::Push, &record.parent)?,
        false => None,
    };
    let child_intent = announce(Direction::Pull, &record.child)?;
    let intents: Vec<_> = parent_intent.iter().chain(&child_intent).cloned().collect();
    node.state.record_intents(&intents, &[]).await?;
    let write = |side: &ConflictVersion| Write {
        resource: resource.clone(),
        // The version the operator saw, so a side that moved since refuses it as stale.
        expected_version: guard_over(side.deleted, side.version.as_deref()),
        origin: Some(node.node_id.clone()),
    };
    let id = record.id;
    let parent_version = match (to_parent, &services.sides.parent) {
        (false, _) => record.parent.version.clone(),
        (true, None) => return Err(ResolveError::NoParent),
        (true, Some(parent)) => {
            let side = ("the parent", id);
            let stored = store_one(client, parent, write(&record.parent), (event, &hash), side);
            match stored.await {
                Ok(stored) => stored.version,
                Err(e) => return withdrawn(node, &intents, e),
            }
        }
    };
    let side = ("this node", id);
    let local = &services.sides.local;
    match store_one(client, local, write(&record.child), (event, &hash), side).await {
        Ok(stored) => Ok((parent_version, stored.version)),
        Err(e) => {
            let unwritten: Vec<_> = child_intent.into_iter().collect();
            withdrawn(node, &unwritten, e)
        }
    }
}

/// Takes back `intents` and fails with `error`.
fn withdrawn<T>(
    node: &NodeHandle,
    intents: &[(FailureKey, String)],
    error: ResolveError,
) -> Result<T, ResolveError> {
    node.state.withdraw_intents(intents)?;
    Err(error)
}

/// Re-reads both sides of a conflict whose resolution was refused as stale and stores the
/// record with what they hold now.
async fn refresh(
    node: &NodeHandle,
    mut record: ConflictRecord,
    client: &dyn sync_host_runtime::ResourceClient,
    services: &super::services::Services,
    event: &Event,
) -> Result<(), ResolveError> {
    if let Some(parent) = &services.sides.parent
        && let Some(now) = current_version(client, parent, event).await
    {
        record.parent = now;
    }
    if let Some(now) = current_version(client, &services.sides.local, event).await {
        record.child = now;
    }
    let commit = BatchCommit {
        conflicts: vec![record],
        ..BatchCommit::default()
    };
    node.state.commit_batch(commit).await?;
    Ok(())
}

/// What `endpoint` holds of the conflicted resource now; `None` when it cannot be read.
async fn current_version(
    client: &dyn sync_host_runtime::ResourceClient,
    endpoint: &sync_host_runtime::Endpoint,
    event: &Event,
) -> Option<ConflictVersion> {
    let mut results = client
        .fetch(endpoint, std::slice::from_ref(event))
        .await
        .ok()?;
    let resource = match results.pop()? {
        Ok(resource) => resource,
        Err(Failure::Gone(_) | Failure::NotFound(_)) => crate::sync::candidate::tombstone(event),
        Err(_) => return None,
    };
    let body = resource.body.clone();
    Some(ConflictVersion::from_state(&version_state(&resource), body))
}

/// Writes the operator's choice (`hash` the content of the conflicted resource `event`) to one
/// side, named `side` in errors about conflict `conflict_id`.
async fn store_one(
    client: &dyn sync_host_runtime::ResourceClient,
    target: &sync_host_runtime::Endpoint,
    write: Write,
    (event, hash): (&Event, &str),
    (side, conflict_id): (&'static str, u64),
) -> Result<sync_host_runtime::Stored, ResolveError> {
    let failed = |message: String| ResolveError::Write { side, message };
    let mut results = client
        .store(target, std::slice::from_ref(&write))
        .await
        .map_err(|e| failed(e.to_string()))?;
    match results.pop() {
        Some(Ok(stored)) => Ok(stored),
        // The side no longer holds the version the operator decided against: unless what it
        // holds now is the choice itself, an edit made since would be overwritten.
        Some(Err(Failure::Conflict(_))) => match current_version(client, target, event).await {
            Some(now) if now.content_hash == hash => Ok(sync_host_runtime::Stored {
                resource_type: event.resource_type.clone(),
                id: event.resource_id.clone(),
                version: now.version,
                outcome: sync_host_runtime::WriteOutcome::Unchanged,
            }),
            _ => Err(ResolveError::Stale {
                side,
                id: conflict_id,
            }),
        },
        Some(Err(f)) => Err(failed(failure_text(&f))),
        None => Err(failed("the client returned no result".into())),
    }
}

fn failure_text(failure: &Failure) -> String {
    let detail = failure.detail();
    match detail.status {
        Some(status) => format!("{} (HTTP {status}): {}", failure.kind(), detail.message),
        None => format!("{}: {}", failure.kind(), detail.message),
    }
}

/// An event standing for the conflicted resource, for routing and the audit.
fn synthetic_event(record: &ConflictRecord) -> Event {
    Event {
        id: record
            .event_id
            .clone()
            .unwrap_or_else(|| format!("conflict-{}", record.id)),
        sequence: None,
        category: record.category.clone(),
        action: Action::Updated,
        resource_type: record.resource_type.clone(),
        resource_id: record.resource_id.clone(),
        links: Vec::new(),
        tags: Vec::new(),
        origin: None,
        version: None,
        content_hash: None,
        raw: String::new(),
    }
}

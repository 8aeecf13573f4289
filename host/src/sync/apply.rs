//! One route group through fetch, resource checks, conflict decisions and store. The group's
//! client is called once per stage with the whole group, so a page costs a few requests.

use sync_host_runtime::{
    CREATE_ONLY, Event, Failure, FailureDetail, PluginError, Resource, ResourceClient, Verdict,
    Write,
};

use crate::state::StateError;
use crate::sync::apply_conflict::{ConflictOutcome, settle_conflict};
use crate::sync::conflict::VersionState;
use crate::sync::conflict::{Decision, Direction, SyncBase, decide};
use crate::sync::event::{base_key, failure_key, for_target};
use crate::sync::outcome::{AuditContext, BatchBuilder};
use crate::sync::pipeline::Pipeline;
use crate::sync::prefetch::Answer;
use crate::sync::retry::FailureKind;
use crate::sync::routes::RouteGroup;
use crate::sync::version::{checked_state, version_state};
use crate::sync::write_back::{WriteBack, write_back};

/// A fetched resource with its conflict-check state, computed (and hashed) once.
pub struct Fetched {
    pub event: Event,
    pub resource: Resource,
    pub state: VersionState,
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

/// Processes one group; every event leaves exactly one audit record.
pub async fn run_group(
    p: &Pipeline,
    group: RouteGroup,
    ahead: Vec<Option<Answer>>,
    out: &mut BatchBuilder<'_>,
) -> Result<(), StateError> {
    let client = group.route.client.as_ref();
    let ctx = AuditContext {
        source_url: Some(p.source.base_url.clone()),
        target_url: Some(p.target.base_url.clone()),
        plugin: None,
    }
    .with_plugin(client.info());
    let fetching = fetch_or_fail(client, &p.source, group.events, ahead, &ctx, out);
    let Some(fetched) = fetching.await? else {
        return Ok(());
    };
    let fetched = check_resources(p, fetched, &ctx, out).await?;
    let current = current_at_target(p, client, fetched, &ctx, out).await?;
    let (writes, back) = decide_writes(p, current, &ctx, out)?;
    store_writes(p, client, writes, &ctx, out).await?;
    write_back(p, client, back, &ctx, out).await
}

/// Fetches the group from `source`, less the copies fetched `ahead` (one slot per event);
/// events whose fetch failed are recorded and dropped. Returns `None` when the whole call
/// failed (every event was recorded as failed).
async fn fetch_or_fail(
    client: &dyn ResourceClient,
    source: &sync_host_runtime::Endpoint,
    events: Vec<Event>,
    ahead: Vec<Option<Answer>>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<Option<Vec<Fetched>>, StateError> {
    let results = match answers(client, source, &events, ahead).await {
        Ok(results) => results,
        Err(e) => return fail_all(&events, ctx, &e, out).map(|()| None),
    };
    let mut fetched = Vec::with_capacity(events.len());
    for (event, result) in events.into_iter().zip(results) {
        match result {
            Ok(resource) => match checked_state(&resource) {
                Ok(state) if announces_other_state(&event, &state) => out.superseded(&event),
                Ok(state) => fetched.push(Fetched {
                    event,
                    resource,
                    state,
                }),
                Err(e) => {
                    let message = e.to_string();
                    out.failed_with(&event, ctx, FailureKind::Invalid, None, &message)?;
                }
            },
            // A 410 is the resource's current state: deleted. It syncs as a tombstone.
            Err(Failure::Gone(_)) => {
                let resource = tombstone(&event);
                let state = version_state(&resource);
                if announces_other_state(&event, &state) {
                    out.superseded(&event);
                    continue;
                }
                fetched.push(Fetched {
                    event,
                    resource,
                    state,
                });
            }
            Err(failure) => out.failed(&event, ctx, &failure)?,
        }
    }
    Ok(Some(fetched))
}

/// The answers for `events`: the copies fetched ahead, and one batched fetch for the rest.
async fn answers(
    client: &dyn ResourceClient,
    source: &sync_host_runtime::Endpoint,
    events: &[Event],
    ahead: Vec<Option<Answer>>,
) -> Result<Vec<Answer>, PluginError> {
    if ahead.iter().all(Option::is_none) {
        return client.fetch(source, events).await;
    }
    let missing: Vec<Event> = events
        .iter()
        .zip(&ahead)
        .filter(|(_, copy)| copy.is_none())
        .map(|(event, _)| event.clone())
        .collect();
    let mut fetched = match missing.is_empty() {
        true => Vec::new(),
        false => client.fetch(source, &missing).await?,
    }
    .into_iter();
    Ok(ahead
        .into_iter()
        .map(|copy| {
            copy.or_else(|| fetched.next()).unwrap_or_else(|| {
                Err(Failure::Transient(FailureDetail {
                    status: None,
                    message: "the client answered fewer resources than it was asked for".into(),
                }))
            })
        })
        .collect())
}

/// Whether the source now holds another state than the one `event` announced (by version
/// when the feed and the source both give one, else by content hash; a feed announces a
/// deletion with an empty hash). Such a state was made by a later change, which a later feed
/// entry announces with *its* origin; writing it under this event's origin would label one
/// node's edit as another's, and echo suppression further along would then drop it.
pub fn announces_other_state(event: &Event, fetched: &VersionState) -> bool {
    if let (Some(announced), Some(now)) = (event.version.as_deref(), fetched.version.as_deref()) {
        return announced != now;
    }
    match event.content_hash.as_deref() {
        None => false,
        Some("") => !fetched.deleted,
        Some(hash) => fetched.effective_hash() != hash,
    }
}

fn fail_all(
    events: &[Event],
    ctx: &AuditContext,
    error: &PluginError,
    out: &mut BatchBuilder<'_>,
) -> Result<(), StateError> {
    let message = error.to_string();
    for event in events {
        out.failed_with(event, ctx, FailureKind::Plugin, None, &message)?;
    }
    Ok(())
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

/// Runs each filter's resource-level check; a rejected resource is recorded as filtered.
async fn check_resources(
    p: &Pipeline,
    mut fetched: Vec<Fetched>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<Vec<Fetched>, StateError> {
    for filter in &p.filters {
        if fetched.is_empty() {
            break;
        }
        let resources: Vec<Resource> = fetched.iter().map(|f| f.resource.clone()).collect();
        let verdicts = match filter
            .check(p.direction, &resources)
            .await
        {
            Ok(verdicts) => verdicts,
            Err(e) => {
                let events: Vec<Event> = fetched.into_iter().map(|f| f.event).collect();
                fail_all(&events, ctx, &e, out)?;
                return Ok(Vec::new());
            }
        };
        let name = filter.info().name.clone();
        let mut kept = Vec::with_capacity(fetched.len());
        for (f, verdict) in fetched.into_iter().zip(verdicts) {
            match verdict {
                Verdict::Accept => kept.push(f),
                Verdict::Reject(reason) => out.filtered(&f.event, &name, &reason),
            }
        }
        fetched = kept;
    }
    Ok(fetched)
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

/// Reads the target's current copies in one batched call, for the conflict check; events whose
/// read failed are recorded and dropped. Candidates keep the order of the page.
async fn current_at_target(
    p: &Pipeline,
    client: &dyn ResourceClient,
    fetched: Vec<Fetched>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<Vec<Candidate>, StateError> {
    let (unseen, to_read) = split_unseen(p, fetched);
    let mut candidates: Vec<(usize, Candidate)> = unseen
        .into_iter()
        .map(|(position, f)| (position, candidate(f, None)))
        .collect();
    if !to_read.is_empty() {
        read_current(p, client, to_read, ctx, out, &mut candidates).await?;
        candidates.sort_by_key(|(position, _)| *position);
    }
    Ok(candidates.into_iter().map(|(_, c)| c).collect())
}

/// Reads the target's copies of `to_read` and adds a candidate for each read that succeeded.
async fn read_current(
    p: &Pipeline,
    client: &dyn ResourceClient,
    to_read: Vec<(usize, Fetched)>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
    candidates: &mut Vec<(usize, Candidate)>,
) -> Result<(), StateError> {
    let events: Vec<Event> = to_read.iter().map(|(_, f)| for_target(&f.event)).collect();
    let results = match client.fetch(&p.target, &events).await {
        Ok(results) => results,
        Err(e) => return fail_all(&events, ctx, &e, out),
    };
    for ((position, f), result) in to_read.into_iter().zip(results) {
        let current = match result {
            Ok(resource) => Some(resource),
            Err(Failure::NotFound(_)) => None,
            Err(Failure::Gone(_)) => Some(tombstone(&f.event)),
            Err(failure) => {
                out.failed(&f.event, ctx, &failure)?;
                continue;
            }
        };
        candidates.push((position, candidate(f, current)));
    }
    Ok(())
}

/// Splits off (with their positions) the resources the target cannot hold: it is the embedded
/// store, which has no record of them, so a read through the plugin could only answer 404. A
/// fresh child's catch-up is made of these, and reading each from an empty store would cost as
/// much as writing it. Their write is create-only, so a copy that turns up meanwhile still
/// refuses it and is decided on.
type Positioned = Vec<(usize, Fetched)>;

fn split_unseen(p: &Pipeline, fetched: Vec<Fetched>) -> (Positioned, Positioned) {
    let positioned = fetched.into_iter().enumerate();
    let Some(store) = &p.target_store else {
        return (Vec::new(), positioned.collect());
    };
    // A store that cannot answer is read through the plugin as usual.
    positioned.partition(|(_, f)| {
        !store
            .holds(&f.event.resource_type, &f.event.resource_id)
            .unwrap_or(true)
    })
}

/// A candidate for `f`, with the target's copy when it holds one.
fn candidate(f: Fetched, current: Option<Resource>) -> Candidate {
    Candidate {
        event: f.event,
        incoming: f.resource,
        incoming_state: f.state,
        current,
        base_read: None,
    }
}

/// Decides each candidate against its sync base; returns the writes to make to the target,
/// and the parent's conflict winners to write back to this node.
fn decide_writes(
    p: &Pipeline,
    candidates: Vec<Candidate>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<(Vec<PendingWrite>, Vec<WriteBack>), StateError> {
    let mut writes = Vec::new();
    let mut back = Vec::new();
    for mut c in candidates {
        c.base_read = p.state.base(&base_key(&c.event))?;
        let incoming = &c.incoming_state;
        let current = c.current.as_ref().map(version_state);
        let base = effective_base(p, &c.event, c.base_read.clone(), current.as_ref())?;
        match decide(p.direction, base.as_ref(), current.as_ref(), incoming) {
            Decision::Apply => writes.push(plain_write(p, c)),
            // A deletion of something the target never held: nothing to agree on, so no base.
            // A copy that turns up there later (a child's create) then has no shared history
            // with this deletion and meets it as a conflict, instead of silently undoing it.
            Decision::Unchanged if c.current.is_none() => out.never_held(&c.event, ctx),
            Decision::Unchanged => {
                let base = agreed_base(p.direction, &c.incoming, incoming, c.current.as_ref());
                out.synced(&c.event, ctx, c.base_read, base, false);
            }
            Decision::KeepLocal => out.kept_local(&c.event, ctx),
            Decision::Conflict => match settle_conflict(p, c, out)? {
                ConflictOutcome::Write(pending) => writes.push(*pending),
                ConflictOutcome::WriteBack(winner) => back.push(*winner),
                ConflictOutcome::Recorded => {}
            },
        }
    }
    Ok((writes, back))
}

/// The sync base, or, when the target holds content this node intended to write there since
/// that base (a write that landed before a crash kept its batch from committing), that content
/// at the target's current version: the target's copy is this node's own write, not an edit
/// made there.
fn effective_base(
    p: &Pipeline,
    event: &Event,
    base: Option<SyncBase>,
    current: Option<&VersionState>,
) -> Result<Option<SyncBase>, StateError> {
    let Some(current) = current else {
        return Ok(base);
    };
    let hash = current.effective_hash();
    let intended = p.state.intents(&failure_key(p.direction, event))?;
    match intended.iter().find(|intended| *intended == hash) {
        Some(hash) if base.as_ref().is_none_or(|b| b.content_hash != *hash) => {
            let mut own = base.unwrap_or(SyncBase {
                content_hash: String::new(),
                parent_version: None,
                child_version: None,
            });
            own.content_hash = hash.clone();
            let target_version = current.version.clone();
            match p.direction {
                Direction::Pull => own.child_version = target_version,
                Direction::Push => own.parent_version = target_version,
            }
            Ok(Some(own))
        }
        _ => Ok(base),
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
pub fn plain_write(p: &Pipeline, c: Candidate) -> PendingWrite {
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
fn default_origin(p: &Pipeline) -> &str {
    match p.direction {
        Direction::Pull => &p.parent_node,
        Direction::Push => &p.node_id,
    }
}

/// The base when both sides already hold the same content, at both sides' versions.
fn agreed_base(
    direction: Direction,
    incoming_resource: &Resource,
    incoming: &VersionState,
    current: Option<&Resource>,
) -> SyncBase {
    let incoming_version = incoming_resource.version.clone();
    let current_version = current.and_then(|r| r.version.clone());
    let (parent_version, child_version) = match direction {
        Direction::Pull => (incoming_version, current_version),
        Direction::Push => (current_version, incoming_version),
    };
    SyncBase {
        content_hash: incoming.effective_hash().to_string(),
        parent_version,
        child_version,
    }
}

/// Stores the writes in one call and records each result; writes the target refused as
/// changed since we read it (412) get a second decision.
async fn store_writes(
    p: &Pipeline,
    client: &dyn ResourceClient,
    pending: Vec<PendingWrite>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<(), StateError> {
    let rejected = store_batch(p, client, pending, ctx, out).await?;
    crate::sync::apply_conflict::handle_rejected(p, client, rejected, ctx, out).await
}

/// Records write intents, stores `pending` in one call, and records every result. Returns
/// the writes refused with 412/409, for the caller to decide again; everything else is
/// recorded here.
pub async fn store_batch(
    p: &Pipeline,
    client: &dyn ResourceClient,
    pending: Vec<PendingWrite>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<Vec<(PendingWrite, FailureDetail)>, StateError> {
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let writes: Vec<Write> = pending.iter().map(|w| w.write.clone()).collect();
    let intents: Vec<_> = pending
        .iter()
        .map(|w| {
            let hash = w.state.effective_hash().to_string();
            (failure_key(p.direction, &w.event), hash)
        })
        .collect();
    let settling: Vec<_> = pending.iter().filter_map(|w| w.conflict.as_ref()).collect();
    p.state.record_intents(&intents, &settling).await?;
    let results = match client.store(&p.target, &writes).await {
        Ok(results) => results,
        Err(e) => {
            let events: Vec<Event> = pending.into_iter().map(|w| w.event).collect();
            fail_all(&events, ctx, &e, out)?;
            return Ok(Vec::new());
        }
    };
    let mut rejected = Vec::new();
    for (w, result) in pending.into_iter().zip(results) {
        match result {
            Ok(stored) => crate::sync::apply_conflict::record_stored(p, w, &stored, ctx, out),
            Err(Failure::Conflict(detail)) => rejected.push((w, detail)),
            Err(failure) => out.failed(&w.event, ctx, &failure)?,
        }
    }
    Ok(rejected)
}

//! One route group through fetch, resource checks, conflict decisions and store. The group's
//! client is called once per stage with the whole group, so a page costs a few requests.

use sync_host_runtime::{
    Event, Failure, FailureDetail, PluginError, Resource, ResourceClient, Verdict,
};

use crate::state::StateError;
use crate::sync::apply_conflict::{ConflictOutcome, handle_rejected, settle_conflict};
use crate::sync::candidate::{Candidate, Fetched, PendingWrite, plain_write, tombstone};
use crate::sync::conflict::VersionState;
use crate::sync::conflict::{Decision, Direction, SyncBase, decide};
use crate::sync::event::{base_key, failure_key, for_target};
use crate::sync::link::Link;
use crate::sync::outcome::{AuditContext, BatchBuilder};
use crate::sync::own_scope;
use crate::sync::prefetch::Answer;
use crate::sync::retry::FailureKind;
use crate::sync::routes::RouteGroup;
use crate::sync::version::{checked_state, version_state};
use crate::sync::write::{fail_all, store_batch};
use crate::sync::write_back::{WriteBack, write_back};

/// Processes one group; every event leaves exactly one audit record.
pub async fn run_group(
    p: &Link,
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

/// Runs this node's own data scope, then each filter's resource-level check; a rejected
/// resource is recorded as filtered.
async fn check_resources(
    p: &Link,
    fetched: Vec<Fetched>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<Vec<Fetched>, StateError> {
    let mut fetched = own_scope::within(p, fetched, ctx, out)?;
    for filter in &p.filters {
        if fetched.is_empty() {
            break;
        }
        let resources: Vec<Resource> = fetched.iter().map(|f| f.resource.clone()).collect();
        let verdicts = match filter.check(p.direction, &resources).await {
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

/// Reads the target's current copies in one batched call, for the conflict check; events whose
/// read failed are recorded and dropped. Candidates keep the order of the page.
async fn current_at_target(
    p: &Link,
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
    p: &Link,
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

fn split_unseen(p: &Link, fetched: Vec<Fetched>) -> (Positioned, Positioned) {
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
    p: &Link,
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
    p: &Link,
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
                left_scope: false,
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
        left_scope: false,
    }
}

/// Stores the writes in one call and records each result; writes the target refused as
/// changed since we read it (412) get a second decision.
async fn store_writes(
    p: &Link,
    client: &dyn ResourceClient,
    pending: Vec<PendingWrite>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<(), StateError> {
    let rejected = store_batch(p, client, pending, ctx, out).await?;
    handle_rejected(p, client, rejected, ctx, out).await
}

//! The store stage of a route group: write intents made durable, one batched store call to
//! the target, and every answer recorded (a write the target refused as changed since it was
//! read goes back to the caller to be decided again).

use sync_host_runtime::{
    Event, Failure, FailureDetail, PluginError, ResourceClient, Stored, Write, WriteOutcome,
};

use sync_host_store::scope::is_compartment_owner;
use sync_host_store::store::HashOffer;

use crate::state::StateError;
use crate::sync::candidate::PendingWrite;
use crate::sync::conflict::{Direction, SyncBase};
use crate::sync::event::failure_key;
use crate::sync::link::Link;
use crate::sync::outcome::{AuditContext, BatchBuilder, NewBase};
use crate::sync::retry::FailureKind;
use crate::sync::version::RAW_HASH_PREFIX;

/// Records write intents, stores `pending` in one call, and records every result. Returns
/// the writes refused with 412/409, for the caller to decide again; everything else is
/// recorded here.
pub async fn store_batch(
    p: &Link,
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
    let _offered = p
        .target_store
        .as_ref()
        .map(|s| s.offer_hashes(hash_offers(&pending)));
    drop(writes);
    let mut rejected = Vec::new();
    for wave in waves(pending, p.target_store.is_some()) {
        rejected.extend(store_wave(p, client, wave, ctx, out).await?);
    }
    Ok(rejected)
}

/// The writes of a batch in the order a remote target needs them: Patients first, then the
/// resources of their compartments, because a parent places (and scopes) a compartment's
/// resource by its Patient as the parent holds it. Concurrent writes have no order of their
/// own; the embedded store orders one batch itself, so it gets one wave.
fn waves(pending: Vec<PendingWrite>, embedded_target: bool) -> Vec<Vec<PendingWrite>> {
    if embedded_target {
        return vec![pending];
    }
    let (owners, others): (Vec<_>, Vec<_>) = pending
        .into_iter()
        .partition(|w| is_compartment_owner(&w.write.resource.resource_type));
    [owners, others]
        .into_iter()
        .filter(|wave| !wave.is_empty())
        .collect()
}

/// One store call for `pending`, every answer recorded; returns the writes refused as
/// changed since they were read.
async fn store_wave(
    p: &Link,
    client: &dyn ResourceClient,
    pending: Vec<PendingWrite>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<Vec<(PendingWrite, FailureDetail)>, StateError> {
    let writes: Vec<Write> = pending.iter().map(|w| w.write.clone()).collect();
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
            Ok(stored) => record_stored(p, w, &stored, ctx, out),
            Err(Failure::Conflict(detail)) => rejected.push((w, detail)),
            Err(failure) => out.failed(&w.event, ctx, &failure)?,
        }
    }
    Ok(rejected)
}

/// What the engine knows of the live bodies it is about to write, offered to the embedded
/// target store: the content hashes it computed, so the store does not compute them again,
/// and the location paths of the event's feed-filter tags, which place the version at this
/// node as its parent placed it.
fn hash_offers(pending: &[PendingWrite]) -> Vec<HashOffer> {
    pending
        .iter()
        .filter(|w| !w.write.resource.deleted && !w.state.deleted)
        .filter_map(|w| {
            let hash = Some(w.state.content_hash.clone())
                .filter(|hash| !hash.starts_with(RAW_HASH_PREFIX));
            let supplied_keys = crate::sync::event::supplied_keys(&w.event);
            (hash.is_some() || !supplied_keys.is_empty()).then(|| HashOffer {
                resource_type: w.write.resource.resource_type.clone(),
                id: w.write.resource.id.clone(),
                body: w.write.resource.body.clone(),
                hash,
                supplied_keys,
            })
        })
        .collect()
}

/// Records a write the target accepted, with the base both sides now share: the written
/// content at the source's version and the version the target assigned.
pub fn record_stored(
    p: &Link,
    w: PendingWrite,
    stored: &Stored,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) {
    let source_version = w.write.resource.version.clone();
    let target_version = stored.version.clone();
    let (parent_version, child_version) = match p.direction {
        Direction::Pull => (source_version, target_version),
        Direction::Push => (target_version, source_version),
    };
    let base = SyncBase {
        content_hash: w.state.effective_hash().to_string(),
        parent_version,
        child_version,
        left_scope: false,
    };
    match w.conflict {
        Some(record) => out.conflict(
            &w.event,
            ctx,
            record,
            w.replaces,
            Some(NewBase::Agreed(base)),
        ),
        None => out.synced(
            &w.event,
            ctx,
            w.replaces,
            base,
            stored.outcome != WriteOutcome::Unchanged,
        ),
    }
}

pub fn fail_all(
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

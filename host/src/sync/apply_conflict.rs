//! The conflict path of a route group: settling a detected conflict by policy (keeping both
//! versions in a conflict record), recording successful writes, and re-deciding writes the
//! target refused with 412 because it changed since we looked.

use sync_host_runtime::{Failure, FailureDetail, ResourceClient, Stored, WriteOutcome};

use crate::audit::Timestamp;
use crate::state::{
    ConflictRecord, ConflictResolution, ConflictStatus, ConflictVersion, StateError,
};
use crate::sync::candidate::{Candidate, PendingWrite, plain_write, tombstone};
use crate::sync::conflict::{
    Decision, Direction, Resolution, decide_rejected_push, incoming_side, resolve,
};
use crate::sync::event::for_target;
use crate::sync::link::Link;
use crate::sync::outcome::{AuditContext, BatchBuilder, NewBase};
use crate::sync::version::version_state;
use crate::sync::write::{record_stored, store_batch};
use crate::sync::write_back::WriteBack;

/// What settling a conflict asks of the caller.
pub enum ConflictOutcome {
    /// The incoming state won: write it, then record the conflict with the write's result.
    Write(Box<PendingWrite>),
    /// The target's state won: write it back to the source too, then record the conflict.
    WriteBack(Box<WriteBack>),
    /// Nothing to write: the conflict is recorded (parked, or the target's side won).
    Recorded,
}

/// Settles the conflict of candidate `c` by the policy of its category.
pub fn settle_conflict(
    p: &Link,
    c: Candidate,
    out: &mut BatchBuilder<'_>,
) -> Result<ConflictOutcome, StateError> {
    let Some(current_resource) = c.current.clone() else {
        // Nothing at the target to conflict with: the incoming state simply applies.
        return Ok(ConflictOutcome::Write(Box::new(plain_write(p, c))));
    };
    let policy = p.policies.policy_for(&c.event.category);
    let current = version_state(&current_resource);
    let incoming = c.incoming_state.clone();
    let resolution = resolve(p.direction, policy, &current, &incoming);
    let incoming_version = ConflictVersion::from_state(&incoming, c.incoming.body.clone());
    let current_version = ConflictVersion::from_state(&current, current_resource.body.clone());
    let (parent, child) = match p.direction {
        Direction::Pull => (incoming_version, current_version),
        Direction::Push => (current_version, incoming_version),
    };
    let now = Timestamp::now();
    // A resource already parked keeps one conflict record, updated with the newest versions,
    // instead of a new record for every sync that meets it again.
    let open = p
        .state
        .open_conflicts_for(&c.event.resource_type, &c.event.resource_id)?;
    let id = match open.first() {
        Some(existing) => existing.id,
        None => p.state.new_id()?,
    };
    let mut record = ConflictRecord {
        id,
        direction: p.direction,
        category: c.event.category.clone(),
        resource_type: c.event.resource_type.clone(),
        resource_id: c.event.resource_id.clone(),
        event_id: Some(c.event.id.clone()),
        detected_at: now,
        policy,
        parent,
        child,
        status: ConflictStatus::Open,
        resolution: None,
    };
    let ctx = AuditContext {
        source_url: Some(p.source.base_url.clone()),
        target_url: Some(p.target.base_url.clone()),
        plugin: None,
    };
    match resolution {
        Resolution::Parked { .. } => {
            out.conflict(&c.event, &ctx, record, c.base_read, None);
            Ok(ConflictOutcome::Recorded)
        }
        Resolution::Decided {
            winner,
            write_incoming,
            new_base,
            ..
        } => {
            record.status = ConflictStatus::Resolved;
            record.resolution = Some(ConflictResolution {
                winner,
                by: format!("policy:{}", policy_name(policy)),
                at: now,
            });
            if write_incoming {
                let mut pending = plain_write(p, c);
                // The write is this node's decision between two concurrent states, not a relay:
                // it goes under the origin of the link side that won (see `Link::origin_of`).
                pending.write.origin = Some(p.origin_of(incoming_side(p.direction)).to_string());
                pending.conflict = Some(record);
                Ok(ConflictOutcome::Write(Box::new(pending)))
            } else if p.write_back {
                let winner = WriteBack::new(p, c, current_resource, current, record, new_base);
                Ok(ConflictOutcome::WriteBack(Box::new(winner)))
            } else {
                // The winner stays where it is; the base makes the next sync in the other
                // direction, if there is one, see only the winner's side as changed.
                out.conflict(
                    &c.event,
                    &ctx,
                    record,
                    c.base_read,
                    Some(NewBase::OneSided(new_base)),
                );
                Ok(ConflictOutcome::Recorded)
            }
        }
    }
}

fn policy_name(policy: crate::sync::conflict::Policy) -> &'static str {
    use crate::sync::conflict::Policy;
    match policy {
        Policy::ParentWins => "parent-wins",
        Policy::ChildWins => "child-wins",
        Policy::NewestWins => "newest-wins",
        Policy::Manual => "manual",
    }
}

/// Writes the target refused because it changed since we read it (412): read it again,
/// and either agree (same content), or treat it as a conflict under the category's policy.
pub async fn handle_rejected(
    p: &Link,
    client: &dyn ResourceClient,
    rejected: Vec<(PendingWrite, FailureDetail)>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<(), StateError> {
    if rejected.is_empty() {
        return Ok(());
    }
    let events: Vec<_> = rejected.iter().map(|(w, _)| for_target(&w.event)).collect();
    let currents = match client.fetch(&p.target, &events).await {
        Ok(results) => results,
        Err(e) => {
            for (w, detail) in &rejected {
                let message = format!("{} (re-reading the target failed: {e})", detail.message);
                let failure = Failure::Transient(FailureDetail {
                    status: detail.status,
                    message,
                });
                out.failed(&w.event, ctx, &failure)?;
            }
            return Ok(());
        }
    };
    let mut retry_writes = Vec::new();
    let mut back = Vec::new();
    for ((w, _), current) in rejected.into_iter().zip(currents) {
        let current = match current {
            Ok(resource) => Some(resource),
            Err(Failure::NotFound(_)) => None,
            Err(Failure::Gone(_)) => Some(tombstone(&w.event)),
            Err(failure) => {
                out.failed(&w.event, ctx, &failure)?;
                continue;
            }
        };
        let incoming = &w.state;
        let current_state = current.as_ref().map(version_state);
        if decide_rejected_push(current_state.as_ref(), incoming) == Decision::Unchanged {
            let stored = Stored {
                resource_type: w.event.resource_type.clone(),
                id: w.event.resource_id.clone(),
                version: current.and_then(|r| r.version),
                outcome: WriteOutcome::Unchanged,
            };
            record_stored(p, w, &stored, ctx, out);
            continue;
        }
        let candidate = Candidate {
            event: w.event,
            incoming: w.write.resource,
            incoming_state: w.state,
            current,
            base_read: w.replaces,
        };
        match settle_conflict(p, candidate, out)? {
            ConflictOutcome::Write(pending) => retry_writes.push(*pending),
            ConflictOutcome::WriteBack(winner) => back.push(*winner),
            ConflictOutcome::Recorded => {}
        }
    }
    store_once(p, client, retry_writes, ctx, out).await?;
    crate::sync::write_back::write_back(p, client, back, ctx, out).await
}

/// Stores conflict winners after a refusal. A second refusal means the target is still
/// moving: the event is retried later (and decided afresh then), not looped on here and not
/// parked as a dead letter.
async fn store_once(
    p: &Link,
    client: &dyn ResourceClient,
    pending: Vec<PendingWrite>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<(), StateError> {
    for (w, detail) in store_batch(p, client, pending, ctx, out).await? {
        let doing = "the target changed again while a refused write was decided anew";
        out.retry_later(&w.event, ctx, doing, &detail)?;
    }
    Ok(())
}

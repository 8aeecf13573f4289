//! Carrying a conflict's winner back to the source. When the target's state wins a conflict (by
//! policy), nothing may be left to announce it to the source: the feed entry that made it may
//! have been read long ago, on either side. So the winner is written to the source at once and
//! both sides hold it. On push that writes the parent's winner into this node's store under the
//! parent's origin (never pushed back); on pull it writes this node's winner to the parent under
//! this node's origin (never pulled back).

use sync_host_runtime::{Failure, ResourceClient, Write};

use crate::state::{ConflictRecord, StateError};
use crate::sync::candidate::{Candidate, expected_version};
use crate::sync::conflict::{Direction, SyncBase, VersionState, incoming_side};
use crate::sync::link::Link;
use crate::sync::outcome::{AuditContext, BatchBuilder, NewBase};
use crate::sync::retry::FailureKind;

/// The target's winning state, to be written to the source.
pub struct WriteBack {
    event: sync_host_runtime::Event,
    write: Write,
    /// The winner's state at the target.
    winner: VersionState,
    record: ConflictRecord,
    replaces: Option<SyncBase>,
    /// The base to keep when the source changed meanwhile and refuses the winner.
    fallback: SyncBase,
}

impl WriteBack {
    /// The write of `winner` (the target's current copy of candidate `c`) over the source's
    /// copy, guarded by the version the source had when it was read.
    pub fn new(
        p: &Link,
        c: Candidate,
        winner_resource: sync_host_runtime::Resource,
        winner: VersionState,
        record: ConflictRecord,
        fallback: SyncBase,
    ) -> Self {
        // The target's side won: the winner goes under the origin of the target's side.
        let origin = p.origin_of(incoming_side(p.direction).other()).to_string();
        let write = Write {
            expected_version: expected_version(Some(&c.incoming)),
            resource: winner_resource,
            origin: Some(origin),
        };
        Self {
            event: c.event,
            write,
            winner,
            record,
            replaces: c.base_read,
            fallback,
        }
    }
}

/// Writes every winner back to the source in one call and records each conflict with the base
/// both sides now share; a winner the source refused (it changed meanwhile) is retried later.
pub async fn write_back(
    p: &Link,
    client: &dyn ResourceClient,
    pending: Vec<WriteBack>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<(), StateError> {
    if pending.is_empty() {
        return Ok(());
    }
    let writes: Vec<Write> = pending.iter().map(|w| w.write.clone()).collect();
    let settling: Vec<_> = pending.iter().map(|w| &w.record).collect();
    p.state.record_intents(&[], &settling).await?;
    let results = match client.store(&p.source, &writes).await {
        Ok(results) => results,
        Err(e) => {
            let message = format!("writing the winning version back to the source failed: {e}");
            for w in &pending {
                out.failed_with(&w.event, ctx, FailureKind::Plugin, None, &message)?;
            }
            return Ok(());
        }
    };
    for (w, result) in pending.into_iter().zip(results) {
        match result {
            Ok(stored) => {
                let (parent_version, child_version) = match p.direction {
                    Direction::Push => (w.winner.version.clone(), stored.version),
                    Direction::Pull => (stored.version, w.winner.version.clone()),
                };
                let base = SyncBase {
                    content_hash: w.winner.effective_hash().to_string(),
                    parent_version,
                    child_version,
                    left_scope: false,
                };
                out.conflict(
                    &w.event,
                    ctx,
                    w.record,
                    w.replaces,
                    Some(NewBase::Agreed(base)),
                );
            }
            // The source changed since it was read: that change is announced by its own feed
            // entry and meets the winner again then. Keep the conflict with the base that
            // makes the next sync in the other direction see only the winner's side changed.
            Err(Failure::Conflict(_)) => {
                out.conflict(
                    &w.event,
                    ctx,
                    w.record,
                    w.replaces,
                    Some(NewBase::OneSided(w.fallback)),
                );
            }
            Err(failure) => {
                let doing = "the source refused the winning version written back to it";
                out.retry_later(&w.event, ctx, doing, failure.detail())?;
            }
        }
    }
    Ok(())
}

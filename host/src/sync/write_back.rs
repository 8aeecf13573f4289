//! Carrying a push conflict's winner back to this node. When the parent's state wins a conflict
//! met on push (by policy), the parent's feed has nothing new to announce it: the change that
//! made it may have been read long ago. So the winner is written to this node's own store at
//! once, under the parent's origin (so it is never pushed back), and both sides hold it.

use sync_host_runtime::{Failure, FailureDetail, ResourceClient, Write};

use crate::state::{ConflictRecord, StateError};
use crate::sync::apply::{Candidate, expected_version};
use crate::sync::conflict::{SyncBase, VersionState};
use crate::sync::outcome::{AuditContext, BatchBuilder};
use crate::sync::pipeline::Pipeline;
use crate::sync::retry::FailureKind;

/// The parent's winning state, to be written to this node.
pub struct WriteBack {
    event: sync_host_runtime::Event,
    write: Write,
    /// The winner's state at the parent.
    winner: VersionState,
    record: ConflictRecord,
    replaces: Option<SyncBase>,
}

impl WriteBack {
    /// The write of `winner` (the parent's current copy of candidate `c`) over this node's copy,
    /// guarded by the version this node had when it was read.
    pub fn new(
        p: &Pipeline,
        c: Candidate,
        winner_resource: sync_host_runtime::Resource,
        winner: VersionState,
        record: ConflictRecord,
    ) -> Self {
        let write = Write {
            expected_version: expected_version(Some(&c.incoming)),
            resource: winner_resource,
            origin: Some(p.parent_node.clone()),
        };
        Self {
            event: c.event,
            write,
            winner,
            record,
            replaces: c.base_read,
        }
    }
}

/// Writes every winner back to this node in one call and records each conflict with the base
/// both sides now share; a winner this node refused (it changed meanwhile) is retried later.
pub async fn write_back(
    p: &Pipeline,
    client: &dyn ResourceClient,
    pending: Vec<WriteBack>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<(), StateError> {
    if pending.is_empty() {
        return Ok(());
    }
    let writes: Vec<Write> = pending.iter().map(|w| w.write.clone()).collect();
    let results = match client.store(&p.source, &writes).await {
        Ok(results) => results,
        Err(e) => {
            let message = format!("writing the parent's winning version here failed: {e}");
            for w in &pending {
                out.failed_with(&w.event, ctx, FailureKind::Plugin, None, &message)?;
            }
            return Ok(());
        }
    };
    for (w, result) in pending.into_iter().zip(results) {
        match result {
            Ok(stored) => {
                let base = SyncBase {
                    content_hash: w.winner.effective_hash().to_string(),
                    parent_version: w.winner.version.clone(),
                    child_version: stored.version,
                };
                out.conflict(&w.event, ctx, w.record, w.replaces, Some(base));
            }
            Err(failure) => {
                let detail = failure.detail();
                let failure = Failure::Transient(FailureDetail {
                    status: detail.status,
                    message: format!(
                        "writing the parent's winning version here was refused: {}",
                        detail.message
                    ),
                });
                out.failed(&w.event, ctx, &failure)?;
            }
        }
    }
    Ok(())
}

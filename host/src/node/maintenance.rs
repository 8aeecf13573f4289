//! Background upkeep of a running node: audit retention by age and by size, applied at start
//! and then hourly, off the sync path.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::audit::{Retention, Timestamp};
use crate::config::AuditSection;
use crate::state::SyncState;

/// How often retention is applied.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The retention `[audit]` asks for.
pub fn retention(section: &AuditSection) -> Retention {
    Retention {
        max_age: Some(Duration::from_secs(
            section.retention_days.saturating_mul(86_400),
        )),
        max_records: Some(section.max_records),
    }
}

/// Prunes the audit log now and every hour until `cancel` fires.
pub async fn prune_audit(state: SyncState, retention: Retention, cancel: CancellationToken) {
    loop {
        let audit = state.audit().clone();
        let pruned =
            tokio::task::spawn_blocking(move || audit.prune(retention, Timestamp::now())).await;
        match pruned {
            Ok(Ok(report)) if report.removed_by_age + report.removed_by_count > 0 => {
                tracing::info!(
                    by_age = report.removed_by_age,
                    by_count = report.removed_by_count,
                    "audit records pruned"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %crate::error_chain::Chain(&e), "audit pruning failed")
            }
            Err(e) => tracing::warn!(error = %e, "audit pruning task failed"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(PRUNE_EVERY) => {}
        }
    }
}

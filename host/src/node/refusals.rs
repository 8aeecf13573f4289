//! Writes the store's API refused because they lay outside the writer's data scope, recorded
//! in the node's audit log: a child writing outside its scope is misconfigured or misbehaving,
//! and an operator reviewing the audit must see it.

use std::sync::Arc;

use sync_host_store::api::seen::{Refusal, Refusals};

use crate::audit::{AuditLog, AuditRecord, Outcome, Timestamp};
use crate::sync::conflict::Direction;

/// The filter name refused writes are audited under.
pub const DATA_SCOPE: &str = "data-scope";

/// Records each refusal in `audit` as a filtered push by the client that tried it.
pub fn into_audit(audit: AuditLog, node_id: String) -> Refusals {
    Arc::new(move |refusal: Refusal| {
        let record = audit_record(&node_id, &refusal);
        if let Err(error) = audit.append_batch(&[record]) {
            tracing::error!(
                %error,
                client = %refusal.client,
                resource = %refusal.key,
                "a write refused for its data scope could not be audited"
            );
        }
    })
}

/// The audit record of one refusal: a push from the client, filtered by its data scope.
pub fn audit_record(node_id: &str, refusal: &Refusal) -> AuditRecord {
    let action = if refusal.deleting {
        "deleted"
    } else {
        "updated"
    };
    AuditRecord {
        time: Timestamp::now(),
        node: node_id.to_owned(),
        direction: Direction::Push,
        action: action.to_owned(),
        category: refusal.key.category(),
        resource_type: refusal.key.resource_type.clone(),
        resource_id: refusal.key.id.clone(),
        event_id: None,
        source_url: None,
        target_url: None,
        plugin: None,
        outcome: Outcome::Filtered {
            by: DATA_SCOPE.to_owned(),
            reason: format!(
                "client `{}` wrote outside its data scope; refused with 403",
                refusal.client
            ),
        },
        duration_ms: 0,
    }
}

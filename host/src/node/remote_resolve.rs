//! Resolving a descendant's conflict from an ancestor: the operator's decision is checked
//! against the descendant's latest report and kept here (`POST
//! /admin/network/{node}/conflicts/{id}/resolve`); it reaches the descendant in the answers to
//! reports, and the descendant applies it through its normal resolution path
//! ([`apply_decisions`]), with intents, If-Match and an audit record naming the operator and
//! the node they acted from.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::audit::Timestamp;
use crate::error_chain::chain;
use crate::node::NodeHandle;
use crate::node::admin::error;
use crate::node::resolve::{Resolve, ResolveError, resolve_conflict};
use crate::report::decisions::merged_body_problem;
use crate::report::{Decision, DecisionOutcome};

/// `POST /admin/network/{node}/conflicts/{id}/resolve`: a decision for a conflict that `node`
/// reported. On this node itself it is an ordinary resolution.
pub async fn issue(
    State(node): State<Arc<NodeHandle>>,
    Path((target, conflict_id)): Path<(String, u64)>,
    Json(how): Json<Resolve>,
) -> Response {
    if how.side.is_some() == how.body.is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "give exactly one of `side` or `body`".into(),
        );
    }
    if target == node.node_id {
        return match resolve_conflict(&node, conflict_id, how).await {
            Ok(record) => Json(record).into_response(),
            Err(e) => error(e.status(), chain(&e)),
        };
    }
    match decide(&node, &target, conflict_id, how) {
        Ok(decision) => (
            StatusCode::ACCEPTED,
            Json(json!({ "decision": decision, "state": "pending" })),
        )
            .into_response(),
        Err(refused) => error(refused.status(), refused.to_string()),
    }
}

/// Why a decision was not kept.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("node `{target}` has reported no open conflict {conflict_id}")]
    NotReported { target: String, conflict_id: u64 },
    #[error("give exactly one of `side` or `body`")]
    NoChoice,
    #[error("{0}")]
    BadBody(String),
    #[error("decision {id} for this conflict is still on its way to `{target}`")]
    Pending { id: String, target: String },
    #[error("{0}")]
    Storage(String),
}

impl DecideError {
    /// The HTTP status the admin API answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            DecideError::NotReported { .. } => StatusCode::NOT_FOUND,
            DecideError::NoChoice | DecideError::BadBody(_) => StatusCode::BAD_REQUEST,
            DecideError::Pending { .. } => StatusCode::CONFLICT,
            DecideError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Checks the decision against what `target` last reported and keeps it for delivery.
pub fn decide(
    node: &NodeHandle,
    target: &str,
    conflict_id: u64,
    how: Resolve,
) -> Result<Decision, DecideError> {
    if how.side.is_some() == how.body.is_some() {
        return Err(DecideError::NoChoice);
    }
    let storage = |e: &dyn std::error::Error| DecideError::Storage(e.to_string());
    let kept = node.reporting.book.get(target).map_err(|e| storage(&e))?;
    let reported = kept
        .and_then(|k| k.report)
        .and_then(|r| r.conflicts.into_iter().find(|c| c.id == conflict_id));
    let Some(conflict) = reported else {
        return Err(DecideError::NotReported {
            target: target.to_string(),
            conflict_id,
        });
    };
    let body = how.body.map(|raw| raw.get().to_string());
    if let Some(problem) = body
        .as_deref()
        .and_then(|b| merged_body_problem(&conflict.resource, b))
    {
        return Err(DecideError::BadBody(problem));
    }
    let decisions = node.reporting.decisions.all().map_err(|e| storage(&e))?;
    let pending = decisions.iter().find(|k| {
        k.outcome.is_none() && k.decision.target == target && k.decision.conflict_id == conflict_id
    });
    if let Some(pending) = pending {
        return Err(DecideError::Pending {
            id: pending.decision.id.clone(),
            target: target.to_string(),
        });
    }
    let number = node.state.new_id().map_err(|e| storage(&e))?;
    let decision = Decision {
        id: format!("{}-{number}", node.node_id),
        target: target.to_string(),
        conflict_id,
        resource: conflict.resource,
        side: how.side,
        body,
        by: how.by,
        from_node: node.node_id.clone(),
        issued_at: Timestamp::now(),
    };
    node.reporting
        .decisions
        .keep(decision.clone())
        .map_err(|e| storage(&e))?;
    tracing::info!(
        decision = %decision.id, target, conflict_id, by = %decision.by,
        "conflict decision kept for delivery"
    );
    Ok(decision)
}

/// Applies the decisions addressed to this node and keeps the others for the nodes below.
/// Returns how many reached an outcome here. A decision that fails for a passing reason (the
/// parent unreachable) stays pending and is tried again when it is delivered again.
pub async fn apply_decisions(node: &NodeHandle, decisions: Vec<Decision>) -> usize {
    let book = &node.reporting.decisions;
    let mut settled = 0;
    for decision in decisions {
        if decision.target != node.node_id {
            if let Err(e) = book.keep(decision) {
                tracing::warn!(error = %chain(&e), "a decision for a node below was not kept");
            }
            continue;
        }
        match book.get(&decision.id) {
            Ok(Some(kept)) if kept.outcome.is_some() => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %chain(&e), "kept decisions are unreadable");
                continue;
            }
        }
        let Some(outcome) = apply_one(node, &decision).await else {
            continue;
        };
        let target = decision.target.clone();
        let kept = book
            .keep(decision)
            .and_then(|()| book.settle_from(&[(&target, std::slice::from_ref(&outcome))]));
        match kept {
            Ok(_) => settled += 1,
            Err(e) => tracing::warn!(error = %chain(&e), "a decision's outcome was not kept"),
        }
    }
    settled
}

/// The outcome of one decision, or `None` when it should be tried again later.
async fn apply_one(node: &NodeHandle, decision: &Decision) -> Option<DecisionOutcome> {
    let outcome = |applied: bool, message: String| DecisionOutcome {
        id: decision.id.clone(),
        applied,
        message,
        at: Timestamp::now(),
    };
    let record = match node.state.conflict(decision.conflict_id) {
        Ok(record) => record,
        Err(e) => {
            tracing::warn!(error = %chain(&e), "reading a conflict for a decision failed");
            return None;
        }
    };
    let resource = record
        .as_ref()
        .map(|r| format!("{}/{}", r.resource_type, r.resource_id));
    if resource.as_deref() != Some(decision.resource.as_str()) {
        let message = format!(
            "refused: conflict {} is not on {}",
            decision.conflict_id, decision.resource
        );
        return Some(outcome(false, message));
    }
    let body = match decision
        .body
        .clone()
        .map(serde_json::value::RawValue::from_string)
    {
        Some(Ok(raw)) => Some(raw),
        Some(Err(e)) => {
            return Some(outcome(
                false,
                format!("refused: the body is not JSON: {e}"),
            ));
        }
        None => None,
    };
    let how = Resolve {
        side: decision.side,
        body,
        by: format!("{} at {}", decision.by, decision.from_node),
    };
    let result = resolve_conflict(node, decision.conflict_id, how).await;
    tracing::info!(decision = %decision.id, ok = result.is_ok(), "conflict decision applied");
    match result {
        Ok(record) => {
            let kept = record.resolution.map_or("merged".to_string(), |r| {
                format!("{:?} kept", r.winner).to_lowercase()
            });
            Some(outcome(true, format!("applied: {kept}")))
        }
        // Applied by this very decision before its outcome was kept (a crash in between).
        Err(ResolveError::AlreadyResolved(_)) if resolved_by(node, decision) => {
            Some(outcome(true, "applied".into()))
        }
        Err(e @ (ResolveError::Stale { .. } | ResolveError::AlreadyResolved(_))) => {
            Some(outcome(false, format!("refused as stale: {}", chain(&e))))
        }
        Err(
            e @ (ResolveError::NotFound(_) | ResolveError::BadRequest | ResolveError::NoParent),
        ) => Some(outcome(false, format!("refused: {}", chain(&e)))),
        Err(e @ (ResolveError::Write { .. } | ResolveError::State(_))) => {
            tracing::warn!(decision = %decision.id, error = %chain(&e), "decision not applied yet");
            None
        }
    }
}

/// Whether the conflict of `decision` was resolved in its name.
fn resolved_by(node: &NodeHandle, decision: &Decision) -> bool {
    let name = format!("{} at {}", decision.by, decision.from_node);
    node.state
        .conflict(decision.conflict_id)
        .ok()
        .flatten()
        .and_then(|record| record.resolution)
        .is_some_and(|resolution| {
            resolution
                .by
                .to_lowercase()
                .starts_with(&name.to_lowercase())
        })
}

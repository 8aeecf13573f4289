//! The report routes: `POST /sync/report`, where a child node uploads its report and its
//! subtree's and is answered with the decisions waiting for them, and the operator's
//! `GET /admin/network` and `/admin/network/{node}`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode, header};
use serde_json::json;
use sync_host_store::auth::{Clients, bearer_token};

use crate::audit::Timestamp;
use crate::error_chain::chain;
use crate::node::NodeHandle;
use crate::node::admin::error;
use crate::node::reporting::own_report;
use crate::report::{Refusal, ReportAnswer, ReportUpload, network};

/// The largest upload a parent reads: a child's report with a large subtree below it.
pub const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;

/// Where children upload their reports.
pub const REPORT_PATH: &str = "/sync/report";

#[derive(Clone)]
struct Upload {
    node: Arc<NodeHandle>,
    clients: Arc<Clients>,
}

/// `POST /sync/report`, for child-node clients.
pub fn router(node: Arc<NodeHandle>, clients: Arc<Clients>) -> Router {
    Router::new()
        .route(REPORT_PATH, post(receive))
        .with_state(Upload { node, clients })
}

async fn receive(State(upload): State<Upload>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let from = match child_of(&upload, &parts.headers) {
        Ok(from) => from,
        Err(denied) => return *denied,
    };
    // An upload that declares more than the cap is refused before a byte of it is read.
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a report may be at most {MAX_UPLOAD_BYTES} bytes"),
        )
    };
    if declared.is_some_and(|length| length > MAX_UPLOAD_BYTES) {
        return too_large();
    }
    let Ok(body) = to_bytes(body, MAX_UPLOAD_BYTES).await else {
        return too_large();
    };
    let parsed: ReportUpload = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the report from `{from}` is not a valid report: {e}"),
            );
        }
    };
    // Reading the kept reports, checking and keeping the upload are sled work: off the
    // executor, so one large subtree does not hold up other requests.
    let node = Arc::clone(&upload.node);
    let kept = tokio::task::spawn_blocking(move || keep_upload(&node, &from, parsed)).await;
    match kept {
        Ok(Ok(answer)) => Json(answer).into_response(),
        Ok(Err(refused)) => *refused,
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Checks and keeps an upload from the child `from`; answers with the decisions waiting for
/// its subtree.
fn keep_upload(
    node: &NodeHandle,
    from: &str,
    upload: ReportUpload,
) -> Result<ReportAnswer, Box<Response>> {
    let reporting = &node.reporting;
    let failed = |what: &str, e: &dyn std::error::Error| {
        tracing::warn!(child = %from, error = %e, "{what}");
        Box::new(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    };
    let before = reporting
        .book
        .all()
        .map_err(|e| failed("kept reports unreadable", &e))?;
    let standing = reporting.standing(node, Some(from), &before);
    let admitted = network::admit(upload, from, &standing.position(), Timestamp::now()).map_err(
        |refusal| {
            tracing::warn!(child = %from, reason = %refusal, "status report refused");
            Box::new(error(refusal_status(&refusal), refusal.to_string()))
        },
    )?;
    for (node, why) in &admitted.dropped {
        tracing::warn!(child = %from, node, reason = why, "a relayed report was left out");
    }
    reporting
        .book
        .replace_via(from, &admitted.kept)
        .map_err(|e| failed("status report not kept", &e))?;
    tracing::debug!(child = %from, nodes = admitted.kept.len(), "status report kept");
    let decisions = decisions_for(reporting, &admitted.kept)
        .map_err(|e| failed("decisions not delivered", &e))?;
    Ok(ReportAnswer {
        accepted: admitted.kept.len(),
        decisions,
    })
}

/// Settles the decisions whose outcomes the kept reports carry (each report settles only
/// decisions addressed to the node it is about), and returns the pending ones for the nodes
/// these reports came from.
fn decisions_for(
    reporting: &crate::node::reporting::Reporting,
    kept: &[crate::report::KeptReport],
) -> Result<Vec<crate::report::Decision>, crate::report::KeptError> {
    let outcomes: Vec<(&str, &[crate::report::DecisionOutcome])> = kept
        .iter()
        .filter_map(|k| Some((k.node.as_str(), k.report.as_ref()?.decisions.as_slice())))
        .collect();
    reporting.decisions.settle_from(&outcomes)?;
    let targets = kept.iter().map(|k| k.node.as_str()).collect();
    reporting
        .decisions
        .pending_for(&targets, crate::report::decisions::MAX_PER_ANSWER)
}

/// The node id of the child client that sent the request: 401 without a known token, 403 for
/// a client that is not a child node.
fn child_of(upload: &Upload, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let client = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .and_then(|token| upload.clients.authenticate(token));
    let Some(client) = client else {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "a child node's bearer token is required".into(),
        )));
    };
    match upload.node.reporting.children.get(&client.name) {
        Some(node) if client.is_child_node => Ok(node.clone()),
        _ => Err(Box::new(error(
            StatusCode::FORBIDDEN,
            format!(
                "client `{}` is not a child node and cannot send reports",
                client.name
            ),
        ))),
    }
}

/// A claim about a node the sender may not speak for is forbidden; a malformed or oversized
/// report is a bad request.
fn refusal_status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::NotItself { .. } | Refusal::OtherParent { .. } => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `GET /admin/network`: this node and every node below it.
pub async fn network_view(State(node): State<Arc<NodeHandle>>) -> Response {
    let this = match own_report(&node) {
        Ok(report) => report,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, chain(&e)),
    };
    let kept = match node.reporting.book.all() {
        Ok(kept) => kept,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, chain(&e)),
    };
    let standing = node.reporting.standing(&node, None, &kept);
    let here = standing.position();
    let stale_after = node.reporting.stale_after;
    let rows = network::view(&this, &kept, &here, Timestamp::now(), stale_after);
    Json(json!({
        "node": node.node_id,
        "stale_after_secs": stale_after.as_secs(),
        "nodes": rows,
    }))
    .into_response()
}

/// `GET /admin/network/{node}`: the latest report of one node (this one's, made now).
pub async fn network_node(State(node): State<Arc<NodeHandle>>, Path(id): Path<String>) -> Response {
    if id == node.node_id {
        return match own_report(&node) {
            Ok(report) => {
                Json(json!({ "node": id, "age_secs": 0, "report": report })).into_response()
            }
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, chain(&e)),
        };
    }
    let decisions: Vec<_> = match node.reporting.decisions.all() {
        Ok(all) => all
            .into_iter()
            .filter(|k| k.decision.target == id)
            .collect(),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, chain(&e)),
    };
    match node.reporting.book.get(&id) {
        Ok(Some(kept)) => Json(json!({
            "node": kept.node,
            "parent": kept.parent,
            "via": kept.via,
            "age_secs": kept.age_secs(Timestamp::now()),
            "report": kept.report,
            "decisions": decisions,
        }))
        .into_response(),
        Ok(None) if node.reporting.child_ids().contains(&id) => Json(json!({
            "node": id,
            "parent": node.node_id,
            "age_secs": null,
            "report": null,
        }))
        .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no node `{id}` is known below this node"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, chain(&e)),
    }
}

//! The operator's HTTP API under `/admin` (admin scope): status, audit queries and export,
//! retries and dead letters, conflicts and their resolution, and sync-now. The CLI talks to a
//! running node through it, since the node owns its databases.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use http::{StatusCode, header};
use serde::Deserialize;
use serde_json::json;
use sync_host_store::auth::{Clients, Scope, bearer_token};

use crate::audit::{AuditKey, AuditQuery, OutcomeKind, Timestamp};
use crate::node::NodeHandle;
use crate::node::resolve::{Resolve, resolve_conflict};
use crate::state::{ConflictFilter, FailureKey};
use crate::sync::conflict::Direction;

type Shared = Arc<NodeHandle>;

/// The `/admin` routes, behind their own admin-scope check.
pub fn router(handle: Arc<NodeHandle>, clients: Arc<Clients>) -> Router {
    Router::new()
        .route("/admin/status", get(status))
        .route("/admin/sync-now", post(sync_now))
        .route("/admin/audit", get(audit_list))
        .route("/admin/audit/export", get(audit_export))
        .route("/admin/audit/{cursor}", get(audit_show))
        .route("/admin/retries", get(retries))
        .route("/admin/dead-letters", get(dead_letters))
        .route("/admin/retry", post(retry))
        .route("/admin/conflicts", get(conflicts))
        .route("/admin/conflicts/{id}", get(conflict_show))
        .route("/admin/conflicts/{id}/resolve", post(conflict_resolve))
        .route("/admin/network", get(crate::node::report_api::network_view))
        .route(
            "/admin/network/{node}",
            get(crate::node::report_api::network_node),
        )
        .route(
            "/admin/network/{node}/conflicts/{id}/resolve",
            post(crate::node::remote_resolve::issue),
        )
        .route("/admin", any(not_found))
        .route("/admin/", any(not_found))
        .route("/admin/{*rest}", any(not_found))
        .layer(from_fn_with_state(clients, require_admin))
        .with_state(handle)
}

async fn require_admin(
    State(clients): State<Arc<Clients>>,
    request: Request,
    next: Next,
) -> Response {
    match check_admin(&clients, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(denied) => *denied,
    }
}

/// Whether the request's bearer token belongs to a client with the admin scope: 401 with
/// `WWW-Authenticate` for a missing or unknown token, 403 for a known client without the
/// scope.
pub fn check_admin(clients: &Clients, headers: &http::HeaderMap) -> Result<(), Box<Response>> {
    check_scope(clients, headers, Scope::Admin)
}

/// Whether the request's bearer token belongs to a client with `scope` (admin holds every
/// scope). `/admin` and `/metrics` share it, so both answer alike.
pub fn check_scope(
    clients: &Clients,
    headers: &http::HeaderMap,
    scope: Scope,
) -> Result<(), Box<Response>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    match token.and_then(|t| clients.authenticate(t)) {
        None => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            format!("a bearer token with the `{scope}` scope is required"),
        ))),
        Some(client) if !client.has_scope(scope) => Err(Box::new(error(
            StatusCode::FORBIDDEN,
            format!("client `{}` lacks the `{scope}` scope", client.name),
        ))),
        Some(_) => Ok(()),
    }
}

/// Unknown paths under `/admin` answer 404 only to an admin (the check runs first), so a
/// caller without the scope learns nothing about which admin paths exist.
async fn not_found(request: Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no admin endpoint {}", request.uri().path()),
    )
}

/// A JSON error answer, `{"error": {"message": ...}}`; a 401 names the bearer realm.
pub(crate) fn error(status: StatusCode, message: String) -> Response {
    let mut response = (status, Json(json!({ "error": { "message": message } }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"sync-host\""),
        );
    }
    response
}

fn internal(e: impl std::error::Error + 'static) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        crate::error_chain::chain(&e),
    )
}

async fn status(State(node): State<Shared>) -> Response {
    let counts = match node.state.counts(Timestamp::now()) {
        Ok(counts) => counts,
        Err(e) => return internal(e),
    };
    let markers = node.state.markers().unwrap_or_default();
    let snapshot = |d: &Option<(
        crate::sync::scheduler::Trigger,
        crate::sync::status::DirectionStatus,
    )>| { d.as_ref().map(|(_, s)| s.snapshot()) };
    let push_lag = match crate::node::lag::push_lag(&node, &markers) {
        Ok(lag) => lag,
        Err(e) => return internal(e),
    };
    let pull_lag = crate::node::lag::pull_lag(&node, &markers);
    Json(json!({
        "node": node.node_id,
        "parent": node.parent_node,
        "base_url": node.base_url,
        "pull": snapshot(&node.pull),
        "push": snapshot(&node.push),
        "push_lag_entries": push_lag,
        "pull_lag_entries": pull_lag,
        "markers": markers.iter().map(|(k, m)| json!({
            "owner": k.parent_node, "feed": k.feed, "entry": m.entry_id,
            "sequence": m.sequence, "page": m.page, "updated_at": m.updated_at,
        })).collect::<Vec<_>>(),
        "counts": counts,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct SyncNowParams {
    direction: Option<String>,
    /// Answer only when the runs asked for have finished, with what they did.
    #[serde(default)]
    wait: bool,
    /// Longest wait, in seconds.
    timeout_secs: Option<u64>,
}

/// How long `sync-now?wait=true` waits by default, and at most.
const SYNC_NOW_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

async fn sync_now(State(node): State<Shared>, Query(q): Query<SyncNowParams>) -> Response {
    let which = q.direction.as_deref().unwrap_or("both");
    if !matches!(which, "pull" | "push" | "both") {
        return error(
            StatusCode::BAD_REQUEST,
            format!("direction `{which}` is not pull, push or both"),
        );
    }
    let mut fired = Vec::new();
    for (name, control) in [("pull", &node.pull), ("push", &node.push)] {
        if (which == name || which == "both")
            && let Some((trigger, status)) = control
        {
            // Taken before firing, so the run waited for starts after this request.
            let run = status.next_complete_run();
            trigger.fire();
            fired.push((name, status.clone(), run));
        }
    }
    let names: Vec<&str> = fired.iter().map(|(name, _, _)| *name).collect();
    if !q.wait {
        return Json(json!({ "triggered": names })).into_response();
    }
    let limit = q
        .timeout_secs
        .map_or(SYNC_NOW_WAIT, std::time::Duration::from_secs)
        .min(SYNC_NOW_WAIT);
    let mut runs = serde_json::Map::new();
    for (name, status, run) in fired {
        let Some(outcome) = status.wait_for_run(run, limit).await else {
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                format!("the {name} run did not finish within {} s", limit.as_secs()),
            );
        };
        runs.insert(name.to_string(), json!(outcome));
    }
    Json(json!({ "triggered": names, "runs": runs })).into_response()
}

/// Query parameters of `/admin/audit` (and of the dashboard's audit page).
#[derive(Deserialize, Default)]
pub(crate) struct AuditParams {
    since: Option<String>,
    until: Option<String>,
    outcome: Option<OutcomeKind>,
    direction: Option<Direction>,
    category: Option<String>,
    #[serde(rename = "type")]
    resource_type: Option<String>,
    resource: Option<String>,
    node: Option<String>,
    before: Option<String>,
    limit: Option<usize>,
}

pub(crate) fn audit_query(p: AuditParams) -> Result<AuditQuery, Box<Response>> {
    let time = |t: Option<String>| -> Result<Option<Timestamp>, Box<Response>> {
        t.map(|t| {
            Timestamp::parse_rfc3339(&t)
                .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, e.to_string())))
        })
        .transpose()
    };
    let before = match p.before {
        Some(c) => Some(AuditKey::from_cursor(&c).ok_or_else(|| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                format!("`{c}` is not an audit cursor"),
            ))
        })?),
        None => None,
    };
    Ok(AuditQuery {
        since: time(p.since)?,
        until: time(p.until)?,
        outcome: p.outcome,
        direction: p.direction,
        category: p.category,
        resource_type: p.resource_type,
        resource_id: p.resource,
        node: p.node,
        before,
        limit: p.limit.unwrap_or(0).min(1000),
    })
}

async fn audit_list(State(node): State<Shared>, Query(p): Query<AuditParams>) -> Response {
    let query = match audit_query(p) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    match node.state.audit().query(&query) {
        Ok(page) => Json(json!({
            "entries": page.entries,
            "next": page.next.map(|k| k.to_cursor()),
        }))
        .into_response(),
        Err(e) => internal(e),
    }
}

async fn audit_export(State(node): State<Shared>, Query(p): Query<AuditParams>) -> Response {
    let query = match audit_query(p) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    let mut out = Vec::new();
    match node.state.audit().export_jsonl(&query, &mut out) {
        Ok(_) => ([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response(),
        Err(e) => internal(e),
    }
}

async fn audit_show(State(node): State<Shared>, Path(cursor): Path<String>) -> Response {
    let Some(key) = AuditKey::from_cursor(&cursor) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{cursor}` is not an audit id"),
        );
    };
    match node.state.audit().get(key) {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no audit record {cursor}")),
        Err(e) => internal(e),
    }
}

async fn retries(State(node): State<Shared>) -> Response {
    match node.state.retry_queue() {
        Ok(entries) => Json(entries).into_response(),
        Err(e) => internal(e),
    }
}

async fn dead_letters(State(node): State<Shared>) -> Response {
    match node.state.dead_letters(10_000) {
        Ok(entries) => Json(entries).into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct RetryParams {
    id: Option<u64>,
    #[serde(default)]
    dead: bool,
}

async fn retry(State(node): State<Shared>, Query(p): Query<RetryParams>) -> Response {
    let which = match (p.id, p.dead) {
        (_, true) => None,
        (Some(id), false) => Some(id),
        (None, false) => {
            return error(
                StatusCode::BAD_REQUEST,
                "give `id=<n>` or `dead=true`".into(),
            );
        }
    };
    match requeue(&node, which) {
        Ok(0) => error(StatusCode::NOT_FOUND, "no such dead letter".into()),
        Ok(n) => Json(json!({ "requeued": n })).into_response(),
        Err(e) => internal(e),
    }
}

/// Requeues dead letter `id`, or every one when `id` is `None`, and pokes both directions so
/// the requeued events run now; returns how many were requeued.
pub(crate) fn requeue(
    node: &NodeHandle,
    id: Option<u64>,
) -> Result<usize, crate::state::StateError> {
    let now = Timestamp::now();
    let requeued = match id {
        Some(id) => requeue_one(node, id, now)?,
        None => node.state.requeue_all_dead_letters(now)?,
    };
    if requeued > 0 {
        for (trigger, _) in node.pull.iter().chain(node.push.iter()) {
            trigger.fire();
        }
    }
    Ok(requeued)
}

fn requeue_one(
    node: &NodeHandle,
    id: u64,
    now: Timestamp,
) -> Result<usize, crate::state::StateError> {
    let found: Option<FailureKey> = node
        .state
        .dead_letters(usize::MAX)?
        .into_iter()
        .find(|e| e.id == id)
        .map(|e| e.key);
    let Some(key) = found else { return Ok(0) };
    Ok(usize::from(
        node.state.requeue_dead_letter(&key, now)?.is_some(),
    ))
}

#[derive(Deserialize)]
struct ConflictParams {
    status: Option<String>,
}

async fn conflicts(State(node): State<Shared>, Query(p): Query<ConflictParams>) -> Response {
    let filter = match p.status.as_deref() {
        None | Some("open") => ConflictFilter::Open,
        Some("resolved") => ConflictFilter::Resolved,
        Some("all") => ConflictFilter::All,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("status `{other}` is not open, resolved or all"),
            );
        }
    };
    match node.state.conflicts(filter, 10_000) {
        Ok(list) => Json(list).into_response(),
        Err(e) => internal(e),
    }
}

async fn conflict_show(State(node): State<Shared>, Path(id): Path<u64>) -> Response {
    match node.state.conflict(id) {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no conflict {id}")),
        Err(e) => internal(e),
    }
}

async fn conflict_resolve(
    State(node): State<Shared>,
    Path(id): Path<u64>,
    Json(how): Json<Resolve>,
) -> Response {
    match resolve_conflict(&node, id, how).await {
        Ok(record) => Json(record).into_response(),
        Err(e) => error(e.status(), crate::error_chain::chain(&e)),
    }
}

//! The web dashboard at `/ui/`, served by every node from templates compiled into the binary
//! (maud) and one small script. It shows the network below this node, node details, the
//! audit, conflicts (this node's and, through decisions, its descendants'), dead letters and
//! plugins, and offers exactly what the admin API allows: an operator logs in with an admin
//! token, and every state-changing form carries the session's CSRF token.

mod audit;
mod conflicts;
mod dead_letters;
mod json_diff;
mod layout;
mod login;
mod network;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::request::Parts;
use http::{Method, StatusCode};
use sync_host_store::auth::Clients;

use crate::node::NodeHandle;
use session::{SESSION_COOKIE, Session, Sessions, cookie};

/// Largest form the dashboard reads (a merged resource body).
const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

/// What every dashboard handler can reach.
#[derive(Clone)]
pub struct Ui {
    pub node: Arc<NodeHandle>,
    pub clients: Arc<Clients>,
    pub sessions: Arc<Sessions>,
}

/// The dashboard's routes under `/ui`.
pub fn router(node: Arc<NodeHandle>, clients: Arc<Clients>) -> Router {
    let ui = Ui {
        node,
        clients,
        sessions: Arc::default(),
    };
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/network") }))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/assets/app.css", get(layout::stylesheet))
        .route("/ui/assets/app.js", get(layout::script))
        .route("/ui/network", get(network::tree))
        .route("/ui/nodes/{node}", get(network::detail))
        .route("/ui/plugins", get(network::plugins))
        .route("/ui/audit", get(audit::search))
        .route("/ui/audit/export", get(audit::export))
        .route("/ui/conflicts", get(conflicts::list))
        .route(
            "/ui/conflicts/{id}",
            get(conflicts::local).post(conflicts::resolve_local),
        )
        .route(
            "/ui/nodes/{node}/conflicts/{id}",
            get(conflicts::remote).post(conflicts::resolve_remote),
        )
        .route("/ui/dead-letters", get(dead_letters::list))
        .route("/ui/dead-letters/retry", post(dead_letters::retry))
        .layer(from_fn_with_state(ui.clone(), require_csrf))
        .with_state(ui)
}

/// The logged-in operator of a request; without a live session, the request is sent to the
/// login page.
pub struct Operator(pub Session);

impl FromRequestParts<Ui> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ui: &Ui) -> Result<Self, Self::Rejection> {
        cookie(&parts.headers, SESSION_COOKIE)
            .and_then(|id| ui.sessions.get(id))
            .map(Operator)
            .ok_or_else(|| Redirect::to("/ui/login").into_response())
    }
}

/// Every state-changing request but the login (which has its own check) must carry the
/// session's CSRF token in its form field `csrf`; otherwise it is refused with 403 before any
/// handler runs.
async fn require_csrf(State(ui): State<Ui>, request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    if safe || request.uri().path() == "/ui/login" {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response();
    };
    let session = cookie(&parts.headers, SESSION_COOKIE).and_then(|id| ui.sessions.get(id));
    let presented = form_field(&bytes, "csrf");
    let allowed = match (&session, &presented) {
        (Some(session), Some(token)) => session.csrf_matches(token),
        _ => false,
    };
    if !allowed {
        tracing::warn!(path = %parts.uri.path(), "dashboard request without a valid CSRF token refused");
        return (
            StatusCode::FORBIDDEN,
            "this request lacks the session's CSRF token; reload the page and try again",
        )
            .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The first value of `name` in a URL-encoded form.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

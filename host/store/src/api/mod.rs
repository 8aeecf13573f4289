//! The store's HTTP API: FHIR R4, OpenMRS REST documents and Atom change feeds, composed as one
//! axum [`Router`] that a node serves on a socket or dispatches to in process.
//!
//! With the default [`ApiConfig`] bases:
//!
//! | Endpoint | What it does |
//! |---|---|
//! | `GET /healthz` | liveness, the only endpoint without a bearer token |
//! | `GET /ws/fhir2/R4/metadata` | CapabilityStatement |
//! | `POST /ws/fhir2/R4` | `batch` or `transaction` Bundle |
//! | `GET /ws/fhir2/R4/{type}?_id=&_lastUpdated=&_count=` | search, `next` links page on |
//! | `POST /ws/fhir2/R4/{type}` | create with a server id (`If-None-Exist` honoured) |
//! | `GET/PUT/DELETE /ws/fhir2/R4/{type}/{id}` | read, update-or-create, delete (`If-Match`) |
//! | `GET /ws/fhir2/R4/{type}[/{id}]/_history[/{vid}]` | history (`_since`, `_count`), vread |
//! | `GET/POST/DELETE /ws/rest/v1/{resource}/{uuid}`, `POST /ws/rest/v1/{resource}` | REST documents |
//! | `GET /ws/atomfeed/{category}/recent` (`?wait=N`), `GET /ws/atomfeed/{category}/{n}` | Atom feed pages |
//!
//! Reads need the `read` scope, everything else `write`. Errors carry a FHIR OperationOutcome,
//! or `{"error":{"message":...}}` under the REST base.

pub mod body;
pub mod error;
pub mod feed;
pub mod fhir;
pub mod guard;
pub mod headers;
mod log_budget;
pub mod rest;
pub mod seen;
pub mod splice;

use std::future::Future;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use http::{StatusCode, header};
use tokio::sync::watch;

use crate::auth::Clients;
use crate::config::ApiConfig;
use crate::store::Store;
use error::ApiError;

/// Everything the API's handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The node's store.
    pub store: Store,
    /// URL bases, page size and limits.
    pub config: ApiConfig,
    /// The clients allowed to call the API.
    pub clients: Arc<Clients>,
    /// The long-polls held open now, bounded by `config`.
    pub long_polls: Arc<feed::LongPolls>,
    /// Feed pages rendered once for every reader.
    pub pages: Arc<feed::RenderedPages>,
    /// Where writes refused for their data scope are reported (the node's audit); `None`
    /// leaves them to the log.
    pub refusals: Option<seen::Refusals>,
}

/// The whole API: `/healthz` without authentication, everything else behind a bearer token.
pub fn router(state: ApiState) -> Router {
    let state = Arc::new(state);
    let protected = Router::new()
        .merge(fhir::routes(&state.config))
        .merge(rest::routes(&state.config))
        .merge(feed::routes(&state.config))
        .fallback(unknown_path)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(Arc::clone(&state), guard::authenticate));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(protected)
        .layer(from_fn_with_state(Arc::clone(&state), guard::time_limit))
        .with_state(state)
}

/// Liveness check; needs no token.
async fn healthz() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok\n",
    )
        .into_response()
}

async fn unknown_path(
    axum::extract::State(state): axum::extract::State<Arc<ApiState>>,
    request: Request,
) -> Response {
    let path = request.uri().path();
    let style = guard::error_style(&state, path);
    let shown = guard::loggable_path(path);
    ApiError::NotFound(format!("no endpoint at {shown}")).into_styled_response(style)
}

async fn method_not_allowed(
    axum::extract::State(state): axum::extract::State<Arc<ApiState>>,
    request: Request,
) -> Response {
    let path = request.uri().path();
    let style = guard::error_style(&state, path);
    let method = request.method();
    let shown = guard::loggable_path(path);
    ApiError::MethodNotAllowed(format!("{method} is not supported on {shown}"))
        .into_styled_response(style)
}

/// Tells long-polls that the server is shutting down (`true`), so they answer at once instead
/// of holding graceful shutdown open. Added as a request extension by [`serve`].
#[derive(Clone)]
pub struct Closing(pub watch::Receiver<bool>);

/// Serves `router` on `listener` until `shutdown` completes, then ends pending long-polls and
/// lets in-flight requests finish before returning.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let (closing, closing_seen) = watch::channel(false);
    let router = router.layer(Extension(Closing(closing_seen)));
    let shutdown = async move {
        shutdown.await;
        tracing::info!("store API shutting down");
        let _ = closing.send(true);
    };
    tracing::info!(%address, "store API listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!(%address, "store API stopped");
    Ok(())
}

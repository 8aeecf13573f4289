//! Middleware in front of every route but `/healthz`: bearer-token authentication, scope check,
//! and the request timeout. Refusals are logged within a budget per minute.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header;
use tracing::Instrument;

use super::ApiState;
use super::error::{ApiError, ErrorStyle};
use super::log_budget::{LogBudget, Verdict};
use crate::auth::{bearer_token, required_scope};

/// The error style of a request path: REST errors under the REST base, FHIR otherwise.
pub fn error_style(state: &ApiState, path: &str) -> ErrorStyle {
    if path_is_under(path, &state.config.rest_base) {
        ErrorStyle::Rest
    } else {
        ErrorStyle::Fhir
    }
}

/// The most of a request path that goes into a log line or an error message.
const LOGGED_PATH_BYTES: usize = 160;

/// `path` cut to `LOGGED_PATH_BYTES` (at a character boundary, with `…` when cut): paths are
/// chosen by the caller, who may not even be authenticated.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.len() <= LOGGED_PATH_BYTES {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut end = LOGGED_PATH_BYTES;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &path[..end]))
}

/// Whether `path` is `base` or below it.
pub fn path_is_under(path: &str, base: &str) -> bool {
    path.strip_prefix(base)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Authenticates the request's bearer token, checks its scope, and adds the
/// [`AuthenticatedClient`](crate::auth::AuthenticatedClient) to the request's extensions.
pub async fn authenticate(
    State(state): State<Arc<ApiState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let style = error_style(&state, request.uri().path());
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    let Some(token) = token else {
        let error = ApiError::Unauthorized("a bearer token is required".into());
        return error.into_styled_response(style);
    };
    let Some(client) = state.clients.authenticate(token) else {
        static BUDGET: LogBudget = LogBudget::new();
        if let Verdict::Log { suppressed } = BUDGET.spend(Instant::now()) {
            tracing::warn!(path = %loggable_path(request.uri().path()), suppressed,
                "request with an unknown bearer token");
        }
        let error = ApiError::Unauthorized("the bearer token is not valid".into());
        return error.into_styled_response(style);
    };
    let scope = required_scope(request.method());
    if !client.has_scope(scope) {
        static BUDGET: LogBudget = LogBudget::new();
        if let Verdict::Log { suppressed } = BUDGET.spend(Instant::now()) {
            tracing::warn!(client = %client.name, %scope, method = %request.method(),
                path = %loggable_path(request.uri().path()), suppressed,
                "request without the needed scope");
        }
        let error = ApiError::Forbidden(format!(
            "client `{}` lacks the `{scope}` scope needed for {} requests",
            client.name,
            request.method()
        ));
        return error.into_styled_response(style);
    }
    let span = tracing::debug_span!("api_request", client = %client.name,
        method = %request.method(), path = %loggable_path(request.uri().path()));
    request.extensions_mut().insert(client);
    next.run(request).instrument(span).await
}

/// Answers 503 when the request takes longer than `request_timeout`.
pub async fn time_limit(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let style = error_style(&state, request.uri().path());
    let limit = state.config.request_timeout;
    let path = loggable_path(request.uri().path()).into_owned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(format!(
            "request for {path} took longer than {} s",
            limit.as_secs_f64()
        ))
        .into_styled_response(style),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_a_base() {
        assert!(path_is_under("/ws/rest/v1/patient/x", "/ws/rest/v1"));
        assert!(path_is_under("/ws/rest/v1", "/ws/rest/v1"));
        assert!(!path_is_under("/ws/rest/v10/x", "/ws/rest/v1"));
    }

    #[test]
    fn logged_paths_are_bounded() {
        assert_eq!(loggable_path("/ws/rest/v1/x"), "/ws/rest/v1/x");
        let long = format!("/{}", "é".repeat(1000));
        let cut = loggable_path(&long);
        assert!(cut.len() <= LOGGED_PATH_BYTES + "…".len());
        assert!(cut.ends_with('…'));
    }
}

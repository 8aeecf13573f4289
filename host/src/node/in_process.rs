//! Serves a node's own HTTP API to its plugins in process: requests a plugin addresses to the
//! node's local base URL reach the router directly, without a socket or a second auth hop.

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use sync_host_runtime::LocalService;
use sync_host_store::store::serve_together;
use tower::ServiceExt;

/// The largest response body the in-process path will buffer; matches the store's own limits
/// on what it serves, so it is never the tighter bound in practice.
const MAX_IN_PROCESS_RESPONSE: usize = 256 * 1024 * 1024;

/// An axum router seen as a [`LocalService`].
#[derive(Clone)]
pub struct InProcessRouter {
    router: Router,
}

impl InProcessRouter {
    /// Wraps `router`, which must already carry its state and authentication layers.
    pub fn new(router: Router) -> Self {
        Self { router }
    }
}

#[async_trait]
impl LocalService for InProcessRouter {
    async fn call(&self, request: Request<Bytes>) -> Response<Bytes> {
        self.answer(request).await
    }

    /// The requests of one `send-all` (a page's writes, typically) are served together, so
    /// the store commits all their writes in one transaction with one flush.
    async fn call_all(&self, requests: Vec<Request<Bytes>>) -> Vec<Response<Bytes>> {
        serve_together(requests.into_iter().map(|r| self.answer(r)).collect()).await
    }
}

impl InProcessRouter {
    async fn answer(&self, request: Request<Bytes>) -> Response<Bytes> {
        let request = request.map(Body::from);
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        match axum::body::to_bytes(body, MAX_IN_PROCESS_RESPONSE).await {
            Ok(bytes) => Response::from_parts(parts, bytes),
            Err(e) => {
                let mut failed = Response::new(Bytes::from(format!(
                    "in-process response could not be read: {e}"
                )));
                *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                failed
            }
        }
    }
}

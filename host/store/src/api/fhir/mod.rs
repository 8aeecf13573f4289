//! The FHIR R4 API of the store: routes and the helpers its handlers share.

pub mod batch;
pub mod bundle;
pub mod capability;
pub mod crud;
pub mod history;
pub mod search;
pub mod search_query;
pub mod types;
pub mod validate;

use std::sync::Arc;

use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::ApiState;
use super::error::fhir_json;
use super::headers::{http_date, version_etag};
use crate::config::ApiConfig;
use crate::store::{Kind, ResourceKey, VersionRecord, WriteOutcome};

/// Header a child node uses to name the node a change originated at.
pub const ORIGIN_HEADER: &str = "x-sync-origin";

/// The FHIR routes under `config.fhir_base`.
pub fn routes(config: &ApiConfig) -> Router<Arc<ApiState>> {
    let base = &config.fhir_base;
    Router::new()
        .route(base, post(batch::post_bundle))
        .route(&format!("{base}/metadata"), get(capability::metadata))
        .route(
            &format!("{base}/{{resource_type}}"),
            get(search::search).post(crud::create),
        )
        .route(
            &format!("{base}/{{resource_type}}/_history"),
            get(history::type_history),
        )
        .route(
            &format!("{base}/{{resource_type}}/{{id}}"),
            get(crud::read).put(crud::update).delete(crud::delete),
        )
        .route(
            &format!("{base}/{{resource_type}}/{{id}}/_history"),
            get(history::instance_history),
        )
        .route(
            &format!("{base}/{{resource_type}}/{{id}}/_history/{{version}}"),
            get(crud::vread),
        )
}

/// The store key of a FHIR resource.
pub fn fhir_key(resource_type: &str, id: &str) -> ResourceKey {
    ResourceKey {
        kind: Kind::Fhir,
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
    }
}

/// `scheme://host` of the request, for absolute URLs in bundles and feeds; empty when the
/// request carries no `Host` (in-process dispatch), which leaves the URLs relative.
pub fn public_origin(headers: &HeaderMap) -> String {
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
    else {
        return String::new();
    };
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .filter(|scheme| *scheme == "https" || *scheme == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// A response carrying a stored resource version: its exact stored bytes, `ETag` and
/// `Last-Modified`.
pub fn resource_response(status: StatusCode, record: &VersionRecord) -> Response {
    let body = record.body.clone().unwrap_or_default();
    let mut response = fhir_json(status, body);
    add_version_headers(response.headers_mut(), record);
    response
}

/// Adds `ETag` and `Last-Modified` for `record`.
pub fn add_version_headers(headers: &mut HeaderMap, record: &VersionRecord) {
    if let Ok(etag) = HeaderValue::from_str(&version_etag(record.version_id)) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(modified) = HeaderValue::from_str(&http_date(record.last_updated)) {
        headers.insert(header::LAST_MODIFIED, modified);
    }
}

/// The HTTP status and resulting version of a write, `None` when there was nothing to delete.
pub fn outcome_status(outcome: &WriteOutcome) -> Option<(StatusCode, &VersionRecord)> {
    match outcome {
        WriteOutcome::Created(record) => Some((StatusCode::CREATED, record)),
        WriteOutcome::Updated(record)
        | WriteOutcome::Unchanged(record)
        | WriteOutcome::Deleted(record) => Some((StatusCode::OK, record)),
        WriteOutcome::AlreadyGone => None,
    }
}

/// The relative URL of a resource version: `{type}/{id}/_history/{vid}`.
pub fn version_path(key: &ResourceKey, version_id: u64) -> String {
    format!("{}/{}/_history/{version_id}", key.resource_type, key.id)
}

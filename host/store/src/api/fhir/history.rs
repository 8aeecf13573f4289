//! FHIR `_history` of one resource and of a whole type: newest first, deletes included, with
//! `_since` and `_count`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::bundle::{BundleOut, history_entry};
use super::crud::checked_key;
use super::public_origin;
use super::search::query_pairs;
use super::search_query::parse_history;
use super::validate::check_type;
use crate::api::ApiState;
use crate::api::error::{ApiError, FhirError, fhir_json};
use crate::api::seen::Seen;
use crate::auth::AuthenticatedClient;
use crate::store::VersionRecord;

/// `GET {type}/{id}/_history`.
pub async fn instance_history(
    State(state): State<Arc<ApiState>>,
    Path((resource_type, id)): Path<(String, String)>,
    Extension(client): Extension<Arc<AuthenticatedClient>>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let key = checked_key(&resource_type, &id)?;
    let (since, count) = parse_history(&query_pairs(raw_query.as_deref()), state.config.page_size)?;
    let versions = Seen::new(&state, &client)
        .history(&key, since, count)?
        .ok_or_else(|| ApiError::NotFound(format!("{resource_type}/{id} is not known")))?;
    Ok(history_response(&state, &headers, &versions))
}

/// `GET {type}/_history`.
pub async fn type_history(
    State(state): State<Arc<ApiState>>,
    Path(resource_type): Path<String>,
    Extension(client): Extension<Arc<AuthenticatedClient>>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    check_type(&resource_type)?;
    let (since, count) = parse_history(&query_pairs(raw_query.as_deref()), state.config.page_size)?;
    let versions = Seen::new(&state, &client).type_history(&resource_type, since, count)?;
    Ok(history_response(&state, &headers, &versions))
}

fn history_response(state: &ApiState, headers: &HeaderMap, versions: &[VersionRecord]) -> Response {
    let resource_base = format!("{}{}", public_origin(headers), state.config.fhir_base);
    let mut bundle = BundleOut::new("history");
    for record in versions {
        bundle.push(history_entry(&resource_base, record));
    }
    fhir_json(StatusCode::OK, bundle.to_json())
}

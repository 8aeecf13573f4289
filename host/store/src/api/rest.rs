//! OpenMRS-style REST documents: `GET/POST/DELETE {rest_base}/{resource}/{uuid}` and
//! `POST {rest_base}/{resource}`, stored as opaque JSON keyed by (resource, uuid).

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;

use super::ApiState;
use super::body::RestBody;
use super::error::{ApiError, RestError};
use super::fhir::validate::check_id;
use super::fhir::{ORIGIN_HEADER, add_version_headers, outcome_status};
use super::headers::{header_text, write_precondition};
use super::splice::set_string_field;
use crate::api::seen::Seen;
use crate::auth::{AuthenticatedClient, effective_origin};
use crate::config::ApiConfig;
use crate::store::{Kind, ResourceKey, VersionRecord, WriteOutcome, WriteRequest};

/// The REST routes under `config.rest_base`.
pub fn routes(config: &ApiConfig) -> Router<Arc<ApiState>> {
    let base = &config.rest_base;
    Router::new()
        .route(&format!("{base}/{{resource}}"), post(create))
        .route(
            &format!("{base}/{{resource}}/{{uuid}}"),
            get(read).post(update).delete(delete),
        )
}

#[derive(Deserialize)]
struct RestHead {
    uuid: Option<String>,
}

/// `GET {resource}/{uuid}` (any `v=` representation is accepted; the stored document is
/// returned as written).
async fn read(
    State(state): State<Arc<ApiState>>,
    Path((resource, uuid)): Path<(String, String)>,
    Extension(client): Extension<Arc<AuthenticatedClient>>,
) -> Result<Response, RestError> {
    let key = rest_key(&resource, &uuid)?;
    let seen = Seen::new(&state, &client);
    let record = seen.read(&key)?.ok_or_else(|| not_found(&key))?;
    if record.deleted {
        return Err(ApiError::Gone(format!("{resource} {uuid} was deleted")).into());
    }
    Ok(document_response(StatusCode::OK, &record))
}

/// `POST {resource}`: stores the document under its own `uuid`, or a new one added to it.
async fn create(
    State(state): State<Arc<ApiState>>,
    Path(resource): Path<String>,
    Extension(client): Extension<Arc<AuthenticatedClient>>,
    headers: HeaderMap,
    RestBody(body): RestBody,
) -> Result<Response, RestError> {
    check_resource_name(&resource)?;
    let head = parse_head(&body)?;
    let (uuid, body) = match head.uuid {
        Some(uuid) => (uuid, body),
        None => {
            let uuid = uuid::Uuid::new_v4().to_string();
            let body = set_string_field(&body, "uuid", &uuid, None)?;
            (uuid, body)
        }
    };
    let key = rest_key(&resource, &uuid)?;
    write(&state, &client, &headers, key, Some(body)).await
}

/// `POST {resource}/{uuid}`: replaces the document; a body `uuid` must match the URL's.
async fn update(
    State(state): State<Arc<ApiState>>,
    Path((resource, uuid)): Path<(String, String)>,
    Extension(client): Extension<Arc<AuthenticatedClient>>,
    headers: HeaderMap,
    RestBody(body): RestBody,
) -> Result<Response, RestError> {
    let key = rest_key(&resource, &uuid)?;
    let body = match parse_head(&body)?.uuid {
        Some(body_uuid) if body_uuid == uuid => body,
        Some(body_uuid) => {
            return Err(ApiError::Invalid(format!(
                "uuid {body_uuid:?} in the body does not match the URL's uuid {uuid:?}"
            ))
            .into());
        }
        None => set_string_field(&body, "uuid", &uuid, None)?,
    };
    write(&state, &client, &headers, key, Some(body)).await
}

/// `DELETE {resource}/{uuid}`: records a delete; 204 on success, 404 when never stored.
async fn delete(
    State(state): State<Arc<ApiState>>,
    Path((resource, uuid)): Path<(String, String)>,
    Extension(client): Extension<Arc<AuthenticatedClient>>,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    let key = rest_key(&resource, &uuid)?;
    if Seen::new(&state, &client).read(&key)?.is_none() {
        return Err(not_found(&key).into());
    }
    write(&state, &client, &headers, key, None).await
}

async fn write(
    state: &ApiState,
    client: &AuthenticatedClient,
    headers: &HeaderMap,
    key: ResourceKey,
    body: Option<String>,
) -> Result<Response, RestError> {
    let request = WriteRequest {
        key,
        body,
        precondition: write_precondition(headers)?,
        origin: effective_origin(client, header_text(headers, ORIGIN_HEADER), None),
    };
    let outcome = Seen::new(state, client).write(request).await?;
    Ok(match &outcome {
        WriteOutcome::Deleted(record) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            add_version_headers(response.headers_mut(), record);
            response
        }
        WriteOutcome::AlreadyGone => StatusCode::NO_CONTENT.into_response(),
        other => match outcome_status(other) {
            Some((status, record)) => document_response(status, record),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    })
}

fn document_response(status: StatusCode, record: &VersionRecord) -> Response {
    let body = record.body.clone().unwrap_or_default();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    add_version_headers(headers, record);
    response
}

fn parse_head(body: &str) -> Result<RestHead, ApiError> {
    // serde would also accept an array for a struct, so check the shape first.
    if !body.trim_start().starts_with('{') {
        return Err(ApiError::Invalid(
            "request body must be a JSON object".into(),
        ));
    }
    serde_json::from_str(body)
        .map_err(|error| ApiError::Invalid(format!("request body is not valid JSON: {error}")))
}

/// Checks a REST resource name such as `patient` or `encountertype`.
fn check_resource_name(resource: &str) -> Result<(), ApiError> {
    let well_formed = (1..=64).contains(&resource.len())
        && resource
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
    if well_formed {
        Ok(())
    } else {
        Err(ApiError::Invalid(format!(
            "invalid resource name {resource:?}: expected 1 to 64 of A-Z, a-z, 0-9, '_' and '-'"
        )))
    }
}

fn rest_key(resource: &str, uuid: &str) -> Result<ResourceKey, ApiError> {
    check_resource_name(resource)?;
    check_id(uuid).map_err(|_| {
        ApiError::Invalid(format!(
            "invalid uuid {uuid:?}: expected 1 to 64 of A-Z, a-z, 0-9, '-' and '.'"
        ))
    })?;
    Ok(ResourceKey {
        kind: Kind::Rest,
        resource_type: resource.to_owned(),
        id: uuid.to_owned(),
    })
}

fn not_found(key: &ResourceKey) -> ApiError {
    ApiError::NotFound(format!("{} {} is not known", key.resource_type, key.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_and_uuids_are_checked() {
        assert!(rest_key("patient", "a65fc361-f6ac-40ba-8485-94749c061509").is_ok());
        assert!(rest_key("patient/x", "a").is_err());
        assert!(rest_key("patient", "a b").is_err());
    }

    #[test]
    fn heads_must_be_objects_with_string_uuids() {
        assert!(parse_head("[]").is_err());
        assert!(parse_head("{\"uuid\":5}").is_err());
        assert_eq!(parse_head("{\"a\":1}").unwrap().uuid, None);
    }
}

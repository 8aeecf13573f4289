//! FHIR instance interactions: read, vread, create (POST, with `If-None-Exist`), update-or-create
//! (PUT) and delete, with `ETag`/`If-Match`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::validate::{check_id, check_type, validate_resource, validate_update};
use super::{ORIGIN_HEADER, fhir_key, outcome_status, resource_response, version_path};
use crate::api::ApiState;
use crate::api::body::FhirBody;
use crate::api::error::{ApiError, FhirError, fhir_json, operation_outcome};
use crate::api::headers::{header_text, version_etag, write_precondition};
use crate::api::seen::Seen;
use crate::api::splice::set_string_field;
use crate::auth::{AuthenticatedClient, effective_origin};
use crate::store::{Precondition, ResourceKey, VersionRecord, WriteOutcome, WriteRequest};

/// `GET {type}/{id}`: the current version; 410 when deleted.
pub async fn read(
    State(state): State<Arc<ApiState>>,
    Path((resource_type, id)): Path<(String, String)>,
    Extension(client): Extension<Arc<AuthenticatedClient>>,
) -> Result<Response, FhirError> {
    let key = checked_key(&resource_type, &id)?;
    let seen = Seen::new(&state, &client);
    let record = seen.read(&key)?.ok_or_else(|| not_found(&key))?;
    live(record).map(|record| resource_response(StatusCode::OK, &record))
}

/// `GET {type}/{id}/_history/{vid}`: one version; 410 when that version is the delete.
pub async fn vread(
    State(state): State<Arc<ApiState>>,
    Path((resource_type, id, version)): Path<(String, String, String)>,
    Extension(client): Extension<Arc<AuthenticatedClient>>,
) -> Result<Response, FhirError> {
    let key = checked_key(&resource_type, &id)?;
    let version_id: u64 = version.parse().map_err(|_| {
        ApiError::NotFound(format!(
            "{resource_type}/{id} has no version {version:?}: versions are numbers"
        ))
    })?;
    let seen = Seen::new(&state, &client);
    let record = seen.vread(&key, version_id)?.ok_or_else(|| {
        ApiError::NotFound(format!("{resource_type}/{id} has no version {version_id}"))
    })?;
    live(record).map(|record| resource_response(StatusCode::OK, &record))
}

/// `POST {type}`: creates the resource under a new server-assigned id. With `If-None-Exist`,
/// an existing match is returned instead (200), and several matches fail (412).
pub async fn create(
    State(state): State<Arc<ApiState>>,
    Path(resource_type): Path<String>,
    Extension(client): Extension<Arc<AuthenticatedClient>>,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<Response, FhirError> {
    check_type(&resource_type)?;
    let head = validate_resource(&body, &resource_type)?;
    let seen = Seen::new(&state, &client);
    if let Some(query) = header_text(&headers, "if-none-exist") {
        let matches = super::search::find_for_condition(seen, &resource_type, query)?;
        match matches.as_slice() {
            [] => {}
            [existing] => return Ok(resource_response(StatusCode::OK, existing)),
            _ => {
                return Err(ApiError::PreconditionFailed(format!(
                    "If-None-Exist {query:?} matches {} {resource_type} resources",
                    matches.len()
                ))
                .into());
            }
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let body = set_string_field(&body, "id", &id, Some("resourceType"))?;
    let origin = effective_origin(
        &client,
        header_text(&headers, ORIGIN_HEADER),
        head.meta_source.as_deref(),
    );
    let request = WriteRequest {
        key: fhir_key(&resource_type, &id),
        body: Some(body),
        precondition: Precondition::Any,
        origin,
    };
    let outcome = seen.write(request).await?;
    tracing::debug!(client = %client.name, %resource_type, %id, "resource created");
    written_response(&state.config.fhir_base, &outcome)
}

/// `PUT {type}/{id}`: updates the resource, or creates it with the client's id (201).
pub async fn update(
    State(state): State<Arc<ApiState>>,
    Path((resource_type, id)): Path<(String, String)>,
    Extension(client): Extension<Arc<AuthenticatedClient>>,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<Response, FhirError> {
    let key = checked_key(&resource_type, &id)?;
    let head = validate_update(&body, &resource_type, &id)?;
    let request = WriteRequest {
        key,
        body: Some(body),
        precondition: write_precondition(&headers)?,
        origin: effective_origin(
            &client,
            header_text(&headers, ORIGIN_HEADER),
            head.meta_source.as_deref(),
        ),
    };
    let outcome = Seen::new(&state, &client).write(request).await?;
    written_response(&state.config.fhir_base, &outcome)
}

/// `DELETE {type}/{id}`: records a delete (later reads answer 410); 404 when it never existed.
pub async fn delete(
    State(state): State<Arc<ApiState>>,
    Path((resource_type, id)): Path<(String, String)>,
    Extension(client): Extension<Arc<AuthenticatedClient>>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let key = checked_key(&resource_type, &id)?;
    let seen = Seen::new(&state, &client);
    if seen.read(&key)?.is_none() {
        return Err(not_found(&key).into());
    }
    let request = WriteRequest {
        key: key.clone(),
        body: None,
        precondition: write_precondition(&headers)?,
        origin: effective_origin(&client, header_text(&headers, ORIGIN_HEADER), None),
    };
    let outcome = seen.write(request).await?;
    Ok(delete_response(&key, &outcome))
}

/// The answer to a delete: an informational OperationOutcome, with the delete's version tag.
pub fn delete_response(key: &ResourceKey, outcome: &WriteOutcome) -> Response {
    let text = match outcome {
        WriteOutcome::AlreadyGone => {
            format!("{}/{} was already deleted", key.resource_type, key.id)
        }
        _ => format!("{}/{} deleted", key.resource_type, key.id),
    };
    let mut response = fhir_json(
        StatusCode::OK,
        operation_outcome("information", "informational", &text),
    );
    if let Some((_, record)) = outcome_status(outcome)
        && let Ok(etag) = HeaderValue::from_str(&version_etag(record.version_id))
    {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// The answer to a create or update: status 201 or 200 with the stored bytes.
fn written_response(fhir_base: &str, outcome: &WriteOutcome) -> Result<Response, FhirError> {
    let (status, record) = outcome_status(outcome)
        .ok_or_else(|| ApiError::Invalid("the write stored nothing".into()))?;
    let mut response = resource_response(status, record);
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&format!(
            "{fhir_base}/{}",
            version_path(&record.key, record.version_id)
        ))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Validates the type and id of a URL and builds the store key.
pub fn checked_key(resource_type: &str, id: &str) -> Result<ResourceKey, ApiError> {
    check_type(resource_type)?;
    check_id(id)?;
    Ok(fhir_key(resource_type, id))
}

fn not_found(key: &ResourceKey) -> ApiError {
    ApiError::NotFound(format!("{}/{} is not known", key.resource_type, key.id))
}

/// The record unless it is a delete (410).
fn live(record: VersionRecord) -> Result<VersionRecord, FhirError> {
    if record.deleted {
        return Err(ApiError::Gone(format!(
            "{}/{} was deleted (version {})",
            record.key.resource_type, record.key.id, record.version_id
        ))
        .into());
    }
    Ok(record)
}

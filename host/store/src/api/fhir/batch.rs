//! FHIR `batch` and `transaction` Bundles POSTed to the base URL. A batch applies each entry on
//! its own; a transaction applies all entries or none (`Store::write_all`).

use std::collections::HashSet;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::bundle::{BundleOut, EntryOut, failed_entry, written_entry};
use super::crud::checked_key;
use super::validate::{check_type, validate_resource, validate_update};
use super::{ORIGIN_HEADER, fhir_key, outcome_status};
use crate::api::ApiState;
use crate::api::body::FhirBody;
use crate::api::error::{ApiError, FhirError, fhir_json, operation_outcome};
use crate::api::headers::{header_text, parse_version_tag};
use crate::api::seen::Seen;
use crate::api::splice::set_string_field;
use crate::auth::{AuthenticatedClient, effective_origin};
use crate::store::{Precondition, ResourceKey, WriteOutcome, WriteRequest, serve_together};

#[derive(Deserialize)]
struct BundleIn<'a> {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    #[serde(rename = "type")]
    bundle_type: Option<String>,
    #[serde(default, borrow)]
    entry: Vec<EntryIn<'a>>,
}

#[derive(Deserialize)]
struct EntryIn<'a> {
    #[serde(default, borrow)]
    resource: Option<&'a RawValue>,
    request: Option<RequestIn>,
}

#[derive(Deserialize)]
struct RequestIn {
    method: String,
    url: String,
    #[serde(rename = "ifMatch")]
    if_match: Option<String>,
}

/// What one entry asks for.
enum Operation {
    Write(WriteRequest),
    Read(ResourceKey),
}

/// Who sent the bundle, for origin attribution.
struct Sender<'a> {
    client: &'a AuthenticatedClient,
    origin_header: Option<&'a str>,
    fhir_base: &'a str,
}

/// `POST {base}` with a `batch` or `transaction` Bundle.
pub async fn post_bundle(
    State(state): State<Arc<ApiState>>,
    Extension(client): Extension<Arc<AuthenticatedClient>>,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<Response, FhirError> {
    if !body.trim_start().starts_with('{') {
        return Err(ApiError::Invalid("request body must be a JSON object".into()).into());
    }
    let bundle: BundleIn<'_> = serde_json::from_str(&body)
        .map_err(|error| ApiError::Invalid(format!("Bundle is not valid: {error}")))?;
    if bundle.resource_type.as_deref() != Some("Bundle") {
        return Err(ApiError::Invalid(format!(
            "only a Bundle may be posted to the base URL, got resourceType {:?}",
            bundle.resource_type.unwrap_or_default()
        ))
        .into());
    }
    let sender = Sender {
        client: &client,
        origin_header: header_text(&headers, ORIGIN_HEADER),
        fhir_base: &state.config.fhir_base,
    };
    let response = match bundle.bundle_type.as_deref() {
        Some("transaction") => transaction(&state, &sender, &bundle.entry).await?,
        Some("batch") => batch(&state, &sender, &bundle.entry).await,
        other => {
            return Err(ApiError::Invalid(format!(
                "Bundle type {other:?} cannot be processed; expected batch or transaction"
            ))
            .into());
        }
    };
    Ok(fhir_json(StatusCode::OK, response.to_json()))
}

async fn transaction(
    state: &ApiState,
    sender: &Sender<'_>,
    entries: &[EntryIn<'_>],
) -> Result<BundleOut, ApiError> {
    let mut requests = Vec::with_capacity(entries.len());
    let mut keys = HashSet::new();
    for (index, entry) in entries.iter().enumerate() {
        let request = match plan(entry, sender).map_err(|error| at_entry(index, error))? {
            Operation::Write(request) => request,
            Operation::Read(_) => {
                return Err(at_entry(
                    index,
                    ApiError::Invalid("GET entries are not supported in transactions".into()),
                ));
            }
        };
        if !keys.insert((request.key.resource_type.clone(), request.key.id.clone())) {
            return Err(at_entry(
                index,
                ApiError::Invalid(format!(
                    "{}/{} appears twice in the transaction",
                    request.key.resource_type, request.key.id
                )),
            ));
        }
        requests.push(request);
    }
    let outcomes = Seen::new(state, sender.client).write_all(requests).await?;
    let mut response = BundleOut::new("transaction-response");
    for outcome in &outcomes {
        response.push(outcome_entry(outcome));
    }
    Ok(response)
}

/// Each entry on its own, all of them served together: their writes share one commit.
async fn batch(state: &ApiState, sender: &Sender<'_>, entries: &[EntryIn<'_>]) -> BundleOut {
    let answers = entries.iter().enumerate().map(|(index, entry)| async move {
        let result = match plan(entry, sender) {
            Ok(Operation::Write(request)) => Seen::new(state, sender.client)
                .write(request)
                .await
                .map(|outcome| outcome_entry(&outcome))
                .map_err(ApiError::from),
            Ok(Operation::Read(key)) => read_entry(Seen::new(state, sender.client), &key),
            Err(error) => Err(error),
        };
        result.unwrap_or_else(|error| error_entry(at_entry(index, error)))
    });
    let mut response = BundleOut::new("batch-response");
    for entry in serve_together(answers.collect()).await {
        response.push(entry);
    }
    response
}

/// Turns one entry into the operation it asks for, validating it completely.
fn plan(entry: &EntryIn<'_>, sender: &Sender<'_>) -> Result<Operation, ApiError> {
    let request = entry
        .request
        .as_ref()
        .ok_or_else(|| ApiError::Invalid("entry has no request".into()))?;
    let url = relative_url(&request.url, sender.fhir_base)?;
    let precondition = match &request.if_match {
        Some(tag) => Precondition::Version(parse_version_tag(tag).ok_or_else(|| {
            ApiError::Invalid(format!("ifMatch {tag:?} is not a version tag like W/\"3\""))
        })?),
        None => Precondition::Any,
    };
    let method = request.method.to_ascii_uppercase();
    let body = entry.resource.map(RawValue::get);
    let origin = |meta_source: Option<&str>| {
        effective_origin(sender.client, sender.origin_header, meta_source)
    };
    match (method.as_str(), url.split_once('/')) {
        ("POST", None) => {
            let body =
                body.ok_or_else(|| ApiError::Invalid("POST entry has no resource".into()))?;
            check_type(url)?;
            let head = validate_resource(body, url)?;
            let id = uuid::Uuid::new_v4().to_string();
            let body = set_string_field(body, "id", &id, Some("resourceType"))?;
            Ok(Operation::Write(WriteRequest {
                key: fhir_key(url, &id),
                body: Some(body),
                precondition,
                origin: origin(head.meta_source.as_deref()),
            }))
        }
        ("PUT", Some((resource_type, id))) => {
            let key = checked_key(resource_type, id)?;
            let body = body.ok_or_else(|| ApiError::Invalid("PUT entry has no resource".into()))?;
            let head = validate_update(body, resource_type, id)?;
            Ok(Operation::Write(WriteRequest {
                key,
                body: Some(body.to_owned()),
                precondition,
                origin: origin(head.meta_source.as_deref()),
            }))
        }
        ("DELETE", Some((resource_type, id))) => Ok(Operation::Write(WriteRequest {
            key: checked_key(resource_type, id)?,
            body: None,
            precondition,
            origin: origin(None),
        })),
        ("GET", Some((resource_type, id))) => Ok(Operation::Read(checked_key(resource_type, id)?)),
        _ => Err(ApiError::Invalid(format!(
            "entry request {method} {url:?} is not supported; use POST Type, PUT/DELETE/GET Type/id"
        ))),
    }
}

/// The entry URL relative to the FHIR base, refusing conditional (query) URLs.
fn relative_url<'a>(url: &'a str, fhir_base: &str) -> Result<&'a str, ApiError> {
    if url.contains('?') {
        return Err(ApiError::Invalid(format!(
            "entry URL {url:?}: conditional operations are not supported"
        )));
    }
    let path = match url.find(fhir_base) {
        Some(start) if url.contains("://") || start == 0 => &url[start + fhir_base.len()..],
        _ => url,
    };
    Ok(path.trim_matches('/'))
}

fn read_entry(seen: Seen<'_>, key: &ResourceKey) -> Result<EntryOut, ApiError> {
    match seen.read(key)? {
        None => Err(ApiError::NotFound(format!(
            "{}/{} is not known",
            key.resource_type, key.id
        ))),
        Some(record) if record.deleted => Err(ApiError::Gone(format!(
            "{}/{} was deleted",
            key.resource_type, key.id
        ))),
        Some(record) => Ok(written_entry("200 OK", &record, true)),
    }
}

fn outcome_entry(outcome: &WriteOutcome) -> EntryOut {
    match outcome_status(outcome) {
        Some((status, record)) => written_entry(&status_line(status), record, false),
        None => failed_entry(
            "200 OK",
            operation_outcome("information", "informational", "already deleted"),
        ),
    }
}

fn error_entry(error: ApiError) -> EntryOut {
    let status = error.status();
    let outcome = operation_outcome("error", "processing", &error.to_string());
    failed_entry(&status_line(status), outcome)
}

fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    )
}

fn at_entry(index: usize, error: ApiError) -> ApiError {
    match error {
        ApiError::Invalid(text) => ApiError::Invalid(format!("Bundle entry {index}: {text}")),
        ApiError::NotFound(text) => ApiError::NotFound(format!("Bundle entry {index}: {text}")),
        ApiError::Gone(text) => ApiError::Gone(format!("Bundle entry {index}: {text}")),
        other => other,
    }
}

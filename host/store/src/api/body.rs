//! Reading JSON request bodies: media type check (415), size cap (413), UTF-8 and nesting depth
//! (400), with the error rendered in the style of the API the request is for.

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use http::{HeaderMap, header};

use super::ApiState;
use super::error::{ApiError, FhirError, RestError};

/// Media types a FHIR request body may have.
const FHIR_MEDIA_TYPES: &[&str] = &["application/fhir+json", "application/json"];
/// Media types a REST request body may have.
const REST_MEDIA_TYPES: &[&str] = &["application/json"];

/// Checks that the `Content-Type` header names one of `accepted` (parameters ignored).
pub fn check_media_type(headers: &HeaderMap, accepted: &[&str]) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "missing Content-Type; expected one of {}",
            accepted.join(", ")
        )));
    };
    let text = value.to_str().unwrap_or_default();
    let essence = text.split(';').next().unwrap_or_default().trim();
    if accepted
        .iter()
        .any(|media| essence.eq_ignore_ascii_case(media))
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {text:?} is not accepted; expected one of {}",
            accepted.join(", ")
        )))
    }
}

/// Reads the whole body of `request` as UTF-8 text of at most `limit` bytes.
async fn read_text(request: Request, accepted: &[&str], limit: usize) -> Result<String, ApiError> {
    check_media_type(request.headers(), accepted)?;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::TooLarge { limit });
    }
    let bytes = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| ApiError::TooLarge { limit })?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|error| ApiError::Invalid(format!("request body is not UTF-8: {error}")))?;
    // Every handler parses the body, and some walk it recursively: refuse deep nesting once,
    // here, before any of them sees it.
    crate::json::check_depth(&text)
        .map_err(|error| ApiError::Invalid(format!("request body refused: {error}")))?;
    Ok(text)
}

/// A FHIR request body (`application/fhir+json` or `application/json`), as text.
#[derive(Debug)]
pub struct FhirBody(pub String);

impl FromRequest<Arc<ApiState>> for FhirBody {
    type Rejection = FhirError;

    async fn from_request(request: Request, state: &Arc<ApiState>) -> Result<Self, FhirError> {
        let text = read_text(request, FHIR_MEDIA_TYPES, state.config.max_body_bytes).await?;
        Ok(FhirBody(text))
    }
}

/// An OpenMRS REST request body (`application/json`), as text.
#[derive(Debug)]
pub struct RestBody(pub String);

impl FromRequest<Arc<ApiState>> for RestBody {
    type Rejection = RestError;

    async fn from_request(request: Request, state: &Arc<ApiState>) -> Result<Self, RestError> {
        let text = read_text(request, REST_MEDIA_TYPES, state.config.max_body_bytes).await?;
        Ok(RestBody(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn media_types_ignore_parameters_and_case() {
        let ok = with_type("Application/FHIR+json; charset=utf-8");
        assert!(check_media_type(&ok, FHIR_MEDIA_TYPES).is_ok());
        let xml = with_type("application/fhir+xml");
        assert!(check_media_type(&xml, FHIR_MEDIA_TYPES).is_err());
        assert!(check_media_type(&HeaderMap::new(), REST_MEDIA_TYPES).is_err());
    }
}

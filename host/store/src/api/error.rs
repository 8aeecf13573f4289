//! Errors of the HTTP API and how they are rendered: FHIR `OperationOutcome` bodies for FHIR and
//! feed requests, `{"error":{"message":...}}` for OpenMRS REST requests.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::store::StoreError;

/// Why a request failed; the message names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or invalid (400).
    #[error("{0}")]
    Invalid(String),
    /// No token, or a token no client owns (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The client lacks the scope this request needs (403).
    #[error("{0}")]
    Forbidden(String),
    /// The resource or page does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The method is not supported on this URL (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The resource was deleted (410).
    #[error("{0}")]
    Gone(String),
    /// A precondition (`If-Match`, `If-None-Exist`) failed (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// The request body exceeds the configured cap (413).
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The configured cap.
        limit: usize,
    },
    /// The request body is not JSON of an accepted media type (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request took longer than allowed (503).
    #[error("{0}")]
    Timeout(String),
    /// The store failed (500), or reported a conflict or bad input (mapped by kind).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How an error body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// FHIR `OperationOutcome` (also used for feeds and unknown paths).
    Fhir,
    /// OpenMRS REST `{"error":{"message":...}}`.
    Rest,
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(error) => store_status(error),
        }
    }

    /// The FHIR `IssueType` code describing this error.
    fn issue_code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid",
            ApiError::Unauthorized(_) => "login",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed(_) => "not-supported",
            ApiError::Gone(_) => "deleted",
            ApiError::PreconditionFailed(_) => "conflict",
            ApiError::TooLarge { .. } => "too-long",
            ApiError::UnsupportedMediaType(_) => "not-supported",
            ApiError::Timeout(_) => "timeout",
            ApiError::Store(error) => match store_status(error) {
                StatusCode::PRECONDITION_FAILED => "conflict",
                StatusCode::NOT_FOUND => "not-found",
                StatusCode::BAD_REQUEST => "invalid",
                StatusCode::FORBIDDEN => "forbidden",
                _ => "exception",
            },
        }
    }

    /// Renders the error in `style`.
    pub fn into_styled_response(self, style: ErrorStyle) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        } else if matches!(self, ApiError::Store(StoreError::OutOfScope(_))) {
            // A child writing outside its scope is misconfigured or misbehaving: an operator
            // must hear of it.
            tracing::warn!(status = status.as_u16(), error = %self, "write refused");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request rejected");
        }
        let mut response = match style {
            ErrorStyle::Fhir => {
                let body = operation_outcome("error", self.issue_code(), &self.to_string());
                fhir_json(status, body)
            }
            ErrorStyle::Rest => {
                let body = json!({ "error": { "message": self.to_string() } }).to_string();
                (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
            }
        };
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sync-host\""),
            );
        }
        response
    }
}

fn store_status(error: &StoreError) -> StatusCode {
    match error {
        StoreError::VersionMismatch { .. } | StoreError::AlreadyExists { .. } => {
            StatusCode::PRECONDITION_FAILED
        }
        StoreError::NotFound(_) => StatusCode::NOT_FOUND,
        StoreError::OutOfScope(_) => StatusCode::FORBIDDEN,
        StoreError::InvalidJson(_) | StoreError::InvalidKey(_) => StatusCode::BAD_REQUEST,
        StoreError::Closed => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A FHIR `OperationOutcome` with one issue, as JSON text.
pub fn operation_outcome(severity: &str, code: &str, diagnostics: &str) -> String {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": severity, "code": code, "diagnostics": diagnostics }],
    })
    .to_string()
}

/// A response with an `application/fhir+json` body.
pub fn fhir_json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json; charset=utf-8")],
        body,
    )
        .into_response()
}

/// An [`ApiError`] rendered as a FHIR `OperationOutcome`.
#[derive(Debug)]
pub struct FhirError(pub ApiError);

impl From<ApiError> for FhirError {
    fn from(error: ApiError) -> Self {
        FhirError(error)
    }
}

impl From<StoreError> for FhirError {
    fn from(error: StoreError) -> Self {
        FhirError(ApiError::Store(error))
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        self.0.into_styled_response(ErrorStyle::Fhir)
    }
}

/// An [`ApiError`] rendered in the OpenMRS REST error shape.
#[derive(Debug)]
pub struct RestError(pub ApiError);

impl From<ApiError> for RestError {
    fn from(error: ApiError) -> Self {
        RestError(error)
    }
}

impl From<StoreError> for RestError {
    fn from(error: StoreError) -> Self {
        RestError(ApiError::Store(error))
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        self.0.into_styled_response(ErrorStyle::Rest)
    }
}

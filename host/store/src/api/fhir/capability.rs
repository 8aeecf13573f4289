//! The FHIR `metadata` endpoint: a CapabilityStatement describing what this server supports.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::types::R4_RESOURCE_TYPES;
use crate::api::ApiState;
use crate::api::error::fhir_json;

/// `GET metadata`.
pub async fn metadata(State(state): State<Arc<ApiState>>) -> Response {
    fhir_json(
        StatusCode::OK,
        capability_statement(&state.config.fhir_base).to_string(),
    )
}

/// The CapabilityStatement of this server, whose FHIR API lives at `fhir_base`.
pub fn capability_statement(fhir_base: &str) -> Value {
    let resources: Vec<Value> = R4_RESOURCE_TYPES
        .iter()
        .map(|name| resource_entry(name))
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-01",
        "publisher": "sync-host",
        "kind": "instance",
        "software": { "name": "sync-host", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "sync-host embedded store", "url": fhir_base },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "security": {
                "service": [{ "text": "Bearer token (RFC 6750), one per client" }],
                "description": "Every request needs a bearer token; reads need the read scope, writes the write scope."
            },
            "interaction": [
                { "code": "transaction" },
                { "code": "batch" }
            ],
            "resource": resources,
        }],
    })
}

fn resource_entry(name: &str) -> Value {
    let interactions: Vec<Value> = [
        "read",
        "vread",
        "update",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ]
    .iter()
    .map(|code| json!({ "code": code }))
    .collect();
    json!({
        "type": name,
        "interaction": interactions,
        "versioning": "versioned-update",
        "readHistory": true,
        "updateCreate": true,
        "conditionalCreate": true,
        "conditionalUpdate": false,
        "conditionalDelete": "not-supported",
        "searchParam": [
            { "name": "_id", "type": "token" },
            { "name": "_lastUpdated", "type": "date" }
        ],
    })
}

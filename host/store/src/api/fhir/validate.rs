//! Validation of FHIR request bodies and URL parts: a JSON object, a known R4 `resourceType`
//! matching the URL, and a well-formed id. Pure functions, no I/O.

use serde::Deserialize;

use super::types::is_r4_resource_type;
use crate::api::error::ApiError;

/// The top-level fields of a resource that the API looks at; everything else is left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceHead {
    /// `resourceType`.
    pub resource_type: String,
    /// `id`, when present.
    pub id: Option<String>,
    /// `meta.source`, when present.
    pub meta_source: Option<String>,
}

#[derive(Deserialize)]
struct RawHead {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    id: Option<String>,
    meta: Option<RawMeta>,
}

#[derive(Deserialize)]
struct RawMeta {
    source: Option<String>,
}

/// Parses `body` as a JSON object and reads its `resourceType`, `id` and `meta.source`.
pub fn parse_head(body: &str) -> Result<ResourceHead, ApiError> {
    // serde would also accept an array for a struct, so check the shape first.
    if !body.trim_start().starts_with('{') {
        return Err(ApiError::Invalid(
            "request body must be a JSON object".into(),
        ));
    }
    let head: RawHead = serde_json::from_str(body)
        .map_err(|error| ApiError::Invalid(format!("request body is not valid JSON: {error}")))?;
    let resource_type = head
        .resource_type
        .ok_or_else(|| ApiError::Invalid("resource has no resourceType".into()))?;
    Ok(ResourceHead {
        resource_type,
        id: head.id,
        meta_source: head.meta.and_then(|meta| meta.source),
    })
}

/// Checks that `name` is a FHIR R4 resource type.
pub fn check_type(name: &str) -> Result<(), ApiError> {
    if is_r4_resource_type(name) {
        Ok(())
    } else {
        Err(ApiError::Invalid(format!(
            "unknown resource type {name:?}: not a FHIR R4 resource type"
        )))
    }
}

/// Checks a FHIR logical id: 1 to 64 of `A-Z a-z 0-9 - .`.
pub fn check_id(id: &str) -> Result<(), ApiError> {
    let well_formed = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.');
    if well_formed {
        Ok(())
    } else {
        Err(ApiError::Invalid(format!(
            "invalid resource id {id:?}: expected 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'"
        )))
    }
}

/// Validates a resource body sent to `{url_type}`: known type equal to the URL's, and a
/// well-formed id when it has one.
pub fn validate_resource(body: &str, url_type: &str) -> Result<ResourceHead, ApiError> {
    let head = parse_head(body)?;
    check_type(&head.resource_type)?;
    if head.resource_type != url_type {
        return Err(ApiError::Invalid(format!(
            "resourceType {:?} does not match the URL's type {url_type:?}",
            head.resource_type
        )));
    }
    if let Some(id) = &head.id {
        check_id(id)?;
    }
    Ok(head)
}

/// Validates a body for an update of `{url_type}/{url_id}`: as [`validate_resource`], and the
/// body's id must be present and equal to the URL's.
pub fn validate_update(body: &str, url_type: &str, url_id: &str) -> Result<ResourceHead, ApiError> {
    let head = validate_resource(body, url_type)?;
    match head.id.as_deref() {
        Some(id) if id == url_id => Ok(head),
        Some(id) => Err(ApiError::Invalid(format!(
            "resource id {id:?} in the body does not match the URL's id {url_id:?}"
        ))),
        None => Err(ApiError::Invalid(format!(
            "resource body has no id; an update of {url_type}/{url_id} must carry id {url_id:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_valid_resource() {
        let body = r#"{"resourceType":"Patient","id":"p-1.2","meta":{"source":"clinic"}}"#;
        let head = validate_update(body, "Patient", "p-1.2").unwrap();
        assert_eq!(head.meta_source.as_deref(), Some("clinic"));
    }

    #[test]
    fn rejects_bad_bodies_with_a_reason() {
        let cases = [
            ("[1]", "JSON object"),
            ("{\"resourceType\":", "not valid JSON"),
            ("{\"id\":\"x\"}", "no resourceType"),
            ("{\"resourceType\":\"Patientz\"}", "unknown resource type"),
            ("{\"resourceType\":\"Observation\"}", "does not match"),
            (
                "{\"resourceType\":\"Patient\",\"id\":\"a b\"}",
                "invalid resource id",
            ),
            ("{\"resourceType\":\"Patient\",\"id\":7}", "not valid JSON"),
        ];
        for (body, reason) in cases {
            let error = validate_resource(body, "Patient").unwrap_err().to_string();
            assert!(error.contains(reason), "{body}: {error}");
        }
    }

    #[test]
    fn update_requires_the_url_id() {
        let body = r#"{"resourceType":"Patient","id":"a"}"#;
        assert!(validate_update(body, "Patient", "b").is_err());
        let no_id = r#"{"resourceType":"Patient"}"#;
        assert!(validate_update(no_id, "Patient", "b").is_err());
    }

    #[test]
    fn ids_are_limited() {
        assert!(check_id(&"a".repeat(64)).is_ok());
        assert!(check_id(&"a".repeat(65)).is_err());
        assert!(check_id("").is_err());
        assert!(check_id("é").is_err());
    }
}

//! Conditional-request headers (`ETag`, `If-Match`, `If-None-Match`) and the date formats the
//! API writes, as pure functions.

use std::time::SystemTime;

use http::HeaderMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::ApiError;
use crate::store::Precondition;

/// The weak ETag of a resource version: `W/"<versionId>"`.
pub fn version_etag(version_id: u64) -> String {
    format!("W/\"{version_id}\"")
}

/// The version named by an `If-Match` value such as `W/"3"` or `"3"`.
pub fn parse_version_tag(value: &str) -> Option<u64> {
    let value = value.trim();
    let value = value.strip_prefix("W/").unwrap_or(value);
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    inner.parse().ok()
}

/// The version required by the request's `If-Match` header, if it has one.
pub fn if_match_version(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::Invalid("If-Match header is not visible ASCII".into()))?;
    parse_version_tag(text).map(Some).ok_or_else(|| {
        ApiError::Invalid(format!(
            "If-Match header {text:?} is not a version tag like W/\"3\""
        ))
    })
}

/// What a write request requires of the current state: `If-Match: W/"3"` names a version,
/// `If-None-Match: *` asks for a create only. Both at once is refused as contradictory.
pub fn write_precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let version = if_match_version(headers)?;
    let create_only = match headers.get(http::header::IF_NONE_MATCH) {
        None => false,
        Some(value) if value.as_bytes().trim_ascii() == b"*" => true,
        Some(_) => {
            return Err(ApiError::Invalid(
                "If-None-Match on a write must be `*` (create only)".into(),
            ));
        }
    };
    match (version, create_only) {
        (Some(_), true) => Err(ApiError::Invalid(
            "If-Match and If-None-Match: * contradict each other".into(),
        )),
        (Some(version), false) => Ok(Precondition::Version(version)),
        (None, true) => Ok(Precondition::Absent),
        (None, false) => Ok(Precondition::Any),
    }
}

/// Whether an `If-None-Match` header value matches `etag` (weak comparison, `*` matches all).
pub fn none_match_hits(header: &str, etag: &str) -> bool {
    let wanted = opaque_tag(etag);
    header
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || opaque_tag(candidate) == wanted)
}

fn opaque_tag(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// The request's `If-None-Match` header as text, when present and readable.
pub fn if_none_match(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
}

/// An HTTP date (`Last-Modified`) for `at`.
pub fn http_date(at: OffsetDateTime) -> String {
    httpdate::fmt_http_date(SystemTime::from(at))
}

/// A FHIR `instant` (RFC 3339) for `at`.
pub fn fhir_instant(at: OffsetDateTime) -> String {
    // Formatting a valid OffsetDateTime as RFC 3339 only fails for years outside 0..=9999,
    // which `now()` and stored timestamps never reach; the fallback keeps the response valid.
    at.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// A header value, when present and readable text.
pub fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_tags_round_trip() {
        assert_eq!(parse_version_tag(&version_etag(42)), Some(42));
        assert_eq!(parse_version_tag("\"7\""), Some(7));
        assert_eq!(parse_version_tag("W/7"), None);
        assert_eq!(parse_version_tag("W/\"x\""), None);
    }

    #[test]
    fn none_match_compares_weakly_and_lists() {
        assert!(none_match_hits("\"a\", W/\"b\"", "\"b\""));
        assert!(none_match_hits("*", "\"b\""));
        assert!(!none_match_hits("\"a\"", "\"b\""));
    }

    #[test]
    fn dates_are_formatted() {
        let at = time::macros::datetime!(2024-03-01 10:20:30 UTC);
        assert_eq!(http_date(at), "Fri, 01 Mar 2024 10:20:30 GMT");
        assert_eq!(fhir_instant(at), "2024-03-01T10:20:30Z");
    }
}

//! Reading what a FHIR server said: OperationOutcome text for failures, and
//! the version of a resource from `ETag` or `meta.versionId`.

use serde::Deserialize;
use sync_plugin_sdk::Failure;
use sync_plugin_sdk::http::Response;

/// Longest excerpt of a non-FHIR error body kept in a failure message.
const EXCERPT_LIMIT: usize = 300;

#[derive(Deserialize)]
struct Outcome {
    #[serde(rename = "resourceType")]
    resource_type: String,
    #[serde(default)]
    issue: Vec<Issue>,
}

#[derive(Deserialize)]
struct Issue {
    diagnostics: Option<String>,
    details: Option<Details>,
    code: Option<String>,
}

#[derive(Deserialize)]
struct Details {
    text: Option<String>,
}

/// The operator-facing text of an error body: the OperationOutcome's issues
/// (diagnostics, else details text, else code) joined by `; `, or an
/// excerpt of whatever else the server sent.
pub fn error_message(status: u16, body: &[u8]) -> String {
    if let Ok(outcome) = serde_json::from_slice::<Outcome>(body)
        && outcome.resource_type == "OperationOutcome"
    {
        let texts: Vec<String> = outcome.issue.into_iter().filter_map(issue_text).collect();
        if !texts.is_empty() {
            return texts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("HTTP {status} with an empty body");
    }
    text.chars().take(EXCERPT_LIMIT).collect()
}

fn issue_text(issue: Issue) -> Option<String> {
    let from_details = issue.details.and_then(|d| d.text);
    [issue.diagnostics, from_details, issue.code]
        .into_iter()
        .flatten()
        .find(|text| !text.trim().is_empty())
}

/// The failure for a response that is not a success.
pub fn failure(response: &Response) -> Failure {
    Failure::from_status(
        response.status,
        error_message(response.status, &response.body),
    )
}

/// The version in a weak or strong `ETag` (`W/"3"` -> `3`).
pub fn version_from_etag(etag: &str) -> Option<String> {
    let tag = etag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let tag = tag.trim_matches('"');
    (!tag.is_empty()).then(|| tag.to_string())
}

#[derive(Deserialize)]
struct WithMeta {
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "versionId")]
    version_id: Option<String>,
}

/// `meta.versionId` of a JSON resource body, if present.
pub fn version_from_body(body: &str) -> Option<String> {
    serde_json::from_str::<WithMeta>(body)
        .ok()?
        .meta?
        .version_id
}

/// The version a response reports: `ETag` first, then the body's meta.
pub fn response_version(response: &Response) -> Option<String> {
    response
        .header("etag")
        .and_then(version_from_etag)
        .or_else(|| version_from_body(&String::from_utf8_lossy(&response.body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_outcome_issues_become_the_message() {
        let body = br#"{"resourceType":"OperationOutcome","issue":[
            {"severity":"error","code":"conflict","diagnostics":"Version 2 is not current"},
            {"severity":"error","code":"invalid","details":{"text":"birthDate is malformed"}},
            {"severity":"error","code":"not-found"}]}"#;
        assert_eq!(
            error_message(412, body),
            "Version 2 is not current; birthDate is malformed; not-found"
        );
    }

    #[test]
    fn other_bodies_are_excerpted() {
        assert_eq!(error_message(502, b"  Bad gateway \n"), "Bad gateway");
        assert_eq!(error_message(503, b""), "HTTP 503 with an empty body");
        assert_eq!(
            error_message(500, "x".repeat(1000).as_bytes()).len(),
            EXCERPT_LIMIT
        );
    }

    #[test]
    fn versions_come_from_etag_or_meta() {
        assert_eq!(version_from_etag("W/\"7\""), Some("7".into()));
        assert_eq!(version_from_etag("\"abc\""), Some("abc".into()));
        assert_eq!(version_from_etag("W/\"\""), None);
        assert_eq!(
            version_from_body(r#"{"meta":{"versionId":"4"}}"#),
            Some("4".into())
        );
        assert_eq!(version_from_body(r#"{"id":"x"}"#), None);
    }
}

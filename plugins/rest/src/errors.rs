//! Failures from OpenMRS REST answers: `{"error":{"message":...}}` bodies
//! become the failure message.

use serde::Deserialize;
use sync_plugin_sdk::Failure;
use sync_plugin_sdk::http::Response;

/// Longest excerpt of an unstructured error body kept in a message.
const EXCERPT_LIMIT: usize = 300;

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
    detail: Option<String>,
    code: Option<String>,
}

/// The operator-facing text of an error body.
pub fn error_message(status: u16, body: &[u8]) -> String {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        let detail = parsed.error;
        if let Some(text) = [detail.message, detail.detail, detail.code]
            .into_iter()
            .flatten()
            .find(|t| !t.trim().is_empty())
        {
            return text;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        text.chars().take(EXCERPT_LIMIT).collect()
    }
}

/// The failure for a response that is not a success.
pub fn failure(response: &Response) -> Failure {
    Failure::from_status(
        response.status,
        error_message(response.status, &response.body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmrs_error_messages_are_extracted() {
        let body = br#"{"error":{"message":"[Object with uuid u1 not found]","code":"x"}}"#;
        assert_eq!(error_message(404, body), "[Object with uuid u1 not found]");
        assert_eq!(
            error_message(500, br#"{"error":{"code":"webservices.rest.error"}}"#),
            "webservices.rest.error"
        );
    }

    #[test]
    fn other_bodies_are_excerpted() {
        assert_eq!(
            error_message(502, b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(error_message(503, b""), "HTTP 503 with an empty body");
    }
}

//! HTTP through the host: the only network a plugin has.
//!
//! The host resolves every URL, lets it through only if it lies under an
//! endpoint the plugin was given, adds the credentials itself and follows no
//! redirects. Batches should use [`send_all`], which the host runs
//! concurrently.
//!
//! ```no_run
//! use sync_plugin_sdk::http::{self, Request};
//!
//! let url = "http://127.0.0.1:8080/ws/fhir2/R4/Patient/p1";
//! let response = http::get(url, &[("accept", "application/fhir+json")]).map_err(|e| e.describe())?;
//! if response.is_success() {
//!     let patient: serde_json::Value = response.json().map_err(|e| e.to_string())?;
//!     sync_plugin_sdk::log::info(format!("patient {}", patient["id"]));
//! }
//!
//! let requests = vec![
//!     Request::get("http://127.0.0.1:8080/ws/fhir2/R4/Patient/p1"),
//!     Request::put("http://127.0.0.1:8080/ws/fhir2/R4/Patient/p2")
//!         .header("content-type", "application/fhir+json")
//!         .body(br#"{"resourceType":"Patient","id":"p2"}"#.to_vec()),
//! ];
//! for result in http::send_all(requests) {
//!     println!("{:?}", result.map(|r| r.status));
//! }
//! # Ok::<(), String>(())
//! ```

use crate::bindings::base::sync::plugin::http as wit;
pub use crate::bindings::base::sync::plugin::http::{HttpError, Request, Response};
use crate::types::Failure;

/// Sends one request and waits for its response.
pub fn send(request: Request) -> Result<Response, HttpError> {
    wit::send(&request)
}

/// Sends several requests concurrently; results come back in request order.
pub fn send_all(requests: Vec<Request>) -> Vec<Result<Response, HttpError>> {
    if requests.is_empty() {
        return Vec::new();
    }
    wit::send_all(&requests)
}

/// Sends a `GET` with the given headers.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
    let mut request = Request::get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(request)
}

impl Request {
    /// A request with `method` to the absolute `url`, no headers, no body.
    pub fn new(method: &str, url: impl Into<String>) -> Request {
        Request {
            method: method.to_string(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Request {
        Request::new("GET", url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Request {
        Request::new("PUT", url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Request {
        Request::new("POST", url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> Request {
        Request::new("DELETE", url)
    }

    /// Adds a header (names are sent as given; HTTP treats them case-insensitively).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }
}

impl Response {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The version an `ETag` header names: `W/"3"` and `"3"` give `3`.
    pub fn etag_version(&self) -> Option<String> {
        let tag = self.header("etag")?.trim();
        let tag = tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"');
        (!tag.is_empty()).then(|| tag.to_string())
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as UTF-8 text, replacing invalid sequences.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

impl HttpError {
    /// A one-line description for logs and failure messages.
    pub fn describe(&self) -> String {
        match self {
            HttpError::Denied(m) => format!("denied: {m}"),
            HttpError::InvalidRequest(m) => format!("invalid request: {m}"),
            HttpError::Timeout(m) => format!("timeout: {m}"),
            HttpError::Connection(m) => format!("connection failed: {m}"),
            HttpError::TooLarge(m) => format!("response too large: {m}"),
        }
    }
}

impl From<HttpError> for Failure {
    /// Timeouts and connection errors may pass; a denied, malformed or
    /// oversized request will fail the same way again.
    fn from(error: HttpError) -> Failure {
        match error {
            HttpError::Timeout(_) | HttpError::Connection(_) => {
                Failure::transient(error.describe())
            }
            HttpError::Denied(_) | HttpError::InvalidRequest(_) | HttpError::TooLarge(_) => {
                Failure::invalid(error.describe())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_collects_method_headers_and_body() {
        let request = Request::put("http://h/x")
            .header("If-Match", "W/\"2\"")
            .body("{}");
        assert_eq!(request.method, "PUT");
        assert_eq!(
            request.headers,
            vec![("If-Match".to_string(), "W/\"2\"".to_string())]
        );
        assert_eq!(request.body.as_deref(), Some(&b"{}"[..]));
    }

    #[test]
    fn response_headers_are_case_insensitive() {
        let response = Response {
            status: 200,
            headers: vec![("ETag".into(), "W/\"4\"".into())],
            body: br#"{"a":1}"#.to_vec(),
        };
        assert_eq!(response.header("etag"), Some("W/\"4\""));
        assert_eq!(response.etag_version().as_deref(), Some("4"));
        let value: serde_json::Value = response.json().unwrap();
        assert_eq!(value["a"], 1);
    }

    #[test]
    fn timeouts_are_transient_and_denials_permanent() {
        assert!(matches!(
            Failure::from(HttpError::Timeout("t".into())),
            Failure::Transient(_)
        ));
        assert!(matches!(
            Failure::from(HttpError::Denied("d".into())),
            Failure::Invalid(_)
        ));
    }
}

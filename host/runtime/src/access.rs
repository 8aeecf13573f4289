//! What a plugin's HTTP may reach and with which credentials, and the pure
//! allow-list decision (`check_url`) the host applies to every request.

use std::fmt;
use std::sync::Arc;

use url::Url;

/// Serves requests for endpoints marked `in_process` (the node's own embedded
/// store) without a socket.
#[async_trait::async_trait]
pub trait LocalService: Send + Sync + 'static {
    /// Answers one request. The URL is absolute; credentials were added by the host.
    async fn call(&self, request: http::Request<bytes::Bytes>) -> http::Response<bytes::Bytes>;

    /// Answers the requests of one `send-all`, in order. A service that can serve a batch
    /// together (the embedded store commits its writes as one group) overrides this; the
    /// default answers them concurrently, one by one.
    async fn call_all(
        &self,
        requests: Vec<http::Request<bytes::Bytes>>,
    ) -> Vec<http::Response<bytes::Bytes>> {
        futures::future::join_all(requests.into_iter().map(|request| self.call(request))).await
    }
}

/// Credentials the host adds to requests for an endpoint. Never shown to plugins.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// HTTP Basic, as an OpenMRS server expects.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets must not reach logs through a Debug print.
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credentials::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
        }
    }
}

/// One base URL a plugin may reach: everything under it, on the same scheme,
/// host and port.
#[derive(Clone, Debug)]
pub struct AllowedEndpoint {
    /// The base; requests must lie under its path.
    pub base_url: Url,
    /// Added by the host to every request under this base.
    pub credentials: Option<Credentials>,
    /// Dispatch to [`HttpAccess::local_service`] instead of the network.
    pub in_process: bool,
}

impl AllowedEndpoint {
    /// An endpoint reached over the network, without credentials.
    pub fn open(base_url: Url) -> Self {
        Self {
            base_url,
            credentials: None,
            in_process: false,
        }
    }
}

/// What a plugin's HTTP may reach, and with which credentials.
#[derive(Clone, Default)]
pub struct HttpAccess {
    /// The allow-list.
    pub endpoints: Vec<AllowedEndpoint>,
    /// Serves `in_process` endpoints.
    pub local_service: Option<Arc<dyn LocalService>>,
}

impl fmt::Debug for HttpAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpAccess")
            .field("endpoints", &self.endpoints)
            .field("local_service", &self.local_service.is_some())
            .finish()
    }
}

/// Why a URL was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefusal {
    /// Not a usable absolute URL (maps to `http-error::invalid-request`).
    Invalid(String),
    /// Not under any allowed endpoint (maps to `http-error::denied`).
    Denied(String),
}

/// Decides whether `raw` may be requested. On success returns the normalised
/// URL and the endpoint it lies under.
///
/// A URL is allowed only when its scheme, host and port equal an endpoint's
/// and its path, after `url` normalisation (which resolves `.` and `..`,
/// including their percent-encoded forms), lies under the endpoint's path.
pub fn check_url<'a>(
    raw: &str,
    endpoints: &'a [AllowedEndpoint],
) -> Result<(Url, &'a AllowedEndpoint), UrlRefusal> {
    let url = Url::parse(raw)
        .map_err(|error| UrlRefusal::Invalid(format!("{raw} is not an absolute URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(not_reachable(&url));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Denied(format!(
            "{url} carries user information; the host adds credentials itself"
        )));
    }
    if has_encoded_separator(url.path()) {
        // A server may decode %2F into a separator after our prefix check.
        return Err(not_reachable(&url));
    }
    endpoints
        .iter()
        .find(|endpoint| lies_under(&url, &endpoint.base_url))
        .map(|endpoint| (url.clone(), endpoint))
        .ok_or_else(|| not_reachable(&url))
}

fn not_reachable(url: &Url) -> UrlRefusal {
    UrlRefusal::Denied(format!("{url} is not an endpoint this plugin may reach"))
}

fn has_encoded_separator(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("%2f") || lower.contains("%5c")
}

fn lies_under(url: &Url, base: &Url) -> bool {
    url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default()
        && path_under(url.path(), base.path())
}

fn path_under(path: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    base.is_empty()
        || path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;

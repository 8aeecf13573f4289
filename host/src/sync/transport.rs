//! How a feed reader gets a page: over HTTP with the endpoint's credentials, or in process
//! from this node's own store. Both answer the same conditional GET.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sync_host_runtime::{Credentials, LocalService};

/// The answer to a conditional GET of a feed page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageResponse {
    /// `304 Not Modified`: the page is what the caller already has.
    NotModified,
    /// A page, with its `ETag` when the server sent one.
    Page { body: String, etag: Option<String> },
}

/// Why a page could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("GET {url} answered HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("GET {url} failed: {message}")]
    Connection { url: String, message: String },
    #[error("GET {url} returned a body that is not UTF-8")]
    NotText { url: String },
    #[error("GET {url} returned a page larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
}

/// A source of feed pages.
#[async_trait]
pub trait FeedTransport: Send + Sync {
    /// GETs `url`, sending `If-None-Match` when `etag` is given.
    async fn get(&self, url: &str, etag: Option<&str>) -> Result<PageResponse, TransportError>;
}

/// Feed pages over HTTP(S), with the credentials the endpoint is configured with.
pub struct HttpTransport {
    client: reqwest::Client,
    credentials: Option<Credentials>,
    max_page_bytes: usize,
}

impl HttpTransport {
    /// A transport with its own connection pool. `timeout` bounds each request, long-polls
    /// included, so it must exceed the long-poll wait; a body over `max_page_bytes` is refused
    /// as soon as that much has arrived.
    pub fn new(
        credentials: Option<Credentials>,
        timeout: Duration,
        max_page_bytes: usize,
    ) -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TransportError::Connection {
                url: String::new(),
                message: e.to_string(),
            })?;
        Ok(Self {
            client,
            credentials,
            max_page_bytes,
        })
    }
}

/// `request` with the credentials of the endpoint it goes to, if it has any.
pub fn with_credentials(
    request: reqwest::RequestBuilder,
    credentials: Option<&Credentials>,
) -> reqwest::RequestBuilder {
    match credentials {
        Some(Credentials::Bearer(token)) => request.bearer_auth(token),
        Some(Credentials::Basic { username, password }) => {
            request.basic_auth(username, Some(password))
        }
        None => request,
    }
}

/// Reads `response`'s body chunk by chunk, refusing it once it exceeds `limit` bytes.
async fn capped_body(
    url: &str,
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, TransportError> {
    let too_large = || TransportError::TooLarge {
        url: url.to_string(),
        limit,
    };
    let declared = usize::try_from(response.content_length().unwrap_or(0)).unwrap_or(usize::MAX);
    if declared > limit {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| TransportError::Connection {
            url: url.to_string(),
            message: e.to_string(),
        })?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

#[async_trait]
impl FeedTransport for HttpTransport {
    async fn get(&self, url: &str, etag: Option<&str>) -> Result<PageResponse, TransportError> {
        let mut request = self
            .client
            .get(url)
            .header("accept", "application/atom+xml");
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        request = with_credentials(request, self.credentials.as_ref());
        // reqwest's own message names only the request; the cause (refused, timed out, DNS)
        // is further down its chain.
        let connection = |e: reqwest::Error| TransportError::Connection {
            url: url.to_string(),
            message: crate::error_chain::chain(&e),
        };
        let response = request.send().await.map_err(connection)?;
        let status = response.status().as_u16();
        let etag = header_text(response.headers().get("etag"));
        let body = capped_body(url, response, self.max_page_bytes).await?;
        page_response(url, status, etag, body)
    }
}

/// Feed pages from this node's own HTTP API, without a socket.
pub struct InProcessTransport {
    service: Arc<dyn LocalService>,
    token: String,
}

impl InProcessTransport {
    /// Reads through `service`, authenticating with the node's internal `token`.
    pub fn new(service: Arc<dyn LocalService>, token: String) -> Self {
        Self { service, token }
    }
}

#[async_trait]
impl FeedTransport for InProcessTransport {
    async fn get(&self, url: &str, etag: Option<&str>) -> Result<PageResponse, TransportError> {
        let path = url::Url::parse(url)
            .map(|u| match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            })
            .unwrap_or_else(|_| url.to_string());
        let mut builder = http::Request::get(path)
            .header("accept", "application/atom+xml")
            .header("authorization", format!("Bearer {}", self.token));
        if let Some(etag) = etag {
            builder = builder.header("if-none-match", etag);
        }
        let request = builder
            .body(Bytes::new())
            .map_err(|e| TransportError::Connection {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        let response = self.service.call(request).await;
        let status = response.status().as_u16();
        let etag = header_text(response.headers().get("etag"));
        page_response(url, status, etag, response.into_body())
    }
}

fn header_text(value: Option<&http::HeaderValue>) -> Option<String> {
    value.and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn page_response(
    url: &str,
    status: u16,
    etag: Option<String>,
    body: Bytes,
) -> Result<PageResponse, TransportError> {
    if status == 304 {
        return Ok(PageResponse::NotModified);
    }
    let text = String::from_utf8(body.to_vec()).map_err(|_| TransportError::NotText {
        url: url.to_string(),
    })?;
    if !(200..300).contains(&status) {
        let message: String = text.chars().take(300).collect();
        return Err(TransportError::Status {
            url: url.to_string(),
            status,
            message,
        });
    }
    Ok(PageResponse::Page { body: text, etag })
}

//! The host side of `sync:plugin/http`: allow-list, credential injection,
//! header scrubbing, size cap, and dispatch to the network or the in-process
//! service.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::access::{AllowedEndpoint, Credentials, HttpAccess, UrlRefusal, check_url};
use crate::bindings::http as wit_http;
use crate::bindings::http::{HttpError, Request, Response};
use crate::engine::HttpLimits;
use crate::instance::HostState;

/// How many requests of one `send-all` are in flight at once over the network: enough to
/// hide latency, few enough not to swamp a parent that many children share.
const SEND_ALL_CONCURRENCY: usize = 16;

/// Request headers a plugin may not set: credentials are the host's business,
/// and framing headers are computed by the HTTP client.
const STRIPPED_REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
];

/// Response headers a plugin does not get to see: session cookies are secrets.
const STRIPPED_RESPONSE_HEADERS: &[&str] = &["set-cookie", "set-cookie2"];

/// What one instance's HTTP import may do.
pub(crate) struct HttpContext {
    client: reqwest::Client,
    limits: HttpLimits,
    access: Arc<HttpAccess>,
}

impl HttpContext {
    pub(crate) fn new(
        client: reqwest::Client,
        limits: HttpLimits,
        access: Arc<HttpAccess>,
    ) -> Self {
        Self {
            client,
            limits,
            access,
        }
    }

    /// The request's URL, parsed and normalised, and the allowed endpoint it falls under.
    fn checked(&self, request: &Request) -> Result<(url::Url, &AllowedEndpoint), HttpError> {
        check_url(&request.url, &self.access.endpoints).map_err(|refusal| match refusal {
            UrlRefusal::Invalid(message) => HttpError::InvalidRequest(message),
            UrlRefusal::Denied(message) => HttpError::Denied(message),
        })
    }

    async fn send(&self, request: Request) -> Result<Response, HttpError> {
        let (url, endpoint) = self.checked(&request)?;
        let prepared = self.prepare(&request, url, endpoint)?;
        if endpoint.in_process {
            self.send_in_process(prepared).await
        } else {
            self.send_over_network(prepared).await
        }
    }

    /// Builds the outgoing request: the plugin's method, headers and body with
    /// forbidden headers removed and the endpoint's credentials added.
    fn prepare(
        &self,
        request: &Request,
        url: url::Url,
        endpoint: &AllowedEndpoint,
    ) -> Result<reqwest::Request, HttpError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|_| {
            HttpError::InvalidRequest(format!("`{}` is not an HTTP method", request.method))
        })?;
        let mut builder = self
            .client
            .request(method, url)
            .headers(plugin_headers(&request.headers)?);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        builder = match &endpoint.credentials {
            Some(Credentials::Bearer(token)) => builder.bearer_auth(token),
            Some(Credentials::Basic { username, password }) => {
                builder.basic_auth(username, Some(password))
            }
            None => builder,
        };
        builder
            .build()
            .map_err(|error| HttpError::InvalidRequest(error_text(&error)))
    }

    async fn send_over_network(&self, request: reqwest::Request) -> Result<Response, HttpError> {
        let url = request.url().clone();
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|error| transport_error(&url, &error))?;
        let status = response.status().as_u16();
        let headers = response_headers(response.headers());
        let body = self.read_capped(&url, response).await?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Reads the body chunk by chunk so an oversized answer is cut off early.
    async fn read_capped(
        &self,
        url: &url::Url,
        response: reqwest::Response,
    ) -> Result<Vec<u8>, HttpError> {
        let cap = self.limits.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > cap as u64)
        {
            return Err(too_large(url, cap));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| transport_error(url, &error))?;
            if body.len() + chunk.len() > cap {
                return Err(too_large(url, cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn send_in_process(&self, request: reqwest::Request) -> Result<Response, HttpError> {
        let url = request.url().clone();
        let service = self.local_service(&url)?;
        let local = to_http_request(request)?;
        let response = tokio::time::timeout(self.limits.request_timeout, service.call(local))
            .await
            .map_err(|_| self.no_answer(&url))?;
        self.local_response(&url, response)
    }

    /// The requests of one `send-all`, answered in order. When every one is for the
    /// in-process service, they are handed to it as one batch (which may serve them together)
    /// under one deadline; otherwise each is sent on its own, a few at a time.
    async fn send_all(&self, requests: Vec<Request>) -> Vec<Result<Response, HttpError>> {
        let checked: Vec<_> = requests.iter().map(|r| self.checked(r)).collect();
        let all_local = checked
            .iter()
            .all(|c| c.as_ref().is_ok_and(|(_, endpoint)| endpoint.in_process));
        if !all_local {
            return futures::stream::iter(requests)
                .map(|request| self.send(request))
                .buffered(SEND_ALL_CONCURRENCY)
                .collect()
                .await;
        }
        let mut urls = Vec::new();
        let mut batch = Vec::new();
        // `None` marks a request handed to the service; its answer fills the place below.
        let mut refused: Vec<Option<HttpError>> = Vec::with_capacity(requests.len());
        for (request, checked) in requests.iter().zip(checked) {
            let prepared = checked
                .and_then(|(url, endpoint)| self.prepare(request, url, endpoint))
                .and_then(|prepared| Ok((prepared.url().clone(), to_http_request(prepared)?)));
            match prepared {
                Ok((url, local)) => {
                    urls.push(url);
                    batch.push(local);
                    refused.push(None);
                }
                Err(error) => refused.push(Some(error)),
            }
        }
        let mut answers = self.call_batch(&urls, batch).await.into_iter();
        refused
            .into_iter()
            .map(|refusal| match refusal {
                Some(error) => Err(error),
                None => answers
                    .next()
                    .unwrap_or_else(|| Err(HttpError::Connection("no answer".into()))),
            })
            .collect()
    }

    /// Hands prepared requests for `urls` to the in-process service as one batch, under one
    /// deadline; one answer per request.
    async fn call_batch(
        &self,
        urls: &[url::Url],
        requests: Vec<::http::Request<Bytes>>,
    ) -> Vec<Result<Response, HttpError>> {
        let Some(first) = urls.first() else {
            return Vec::new();
        };
        let Ok(service) = self.local_service(first) else {
            return urls.iter().map(|url| Err(no_service(url))).collect();
        };
        match tokio::time::timeout(self.limits.request_timeout, service.call_all(requests)).await {
            Ok(responses) => urls
                .iter()
                .zip(responses)
                .map(|(url, response)| self.local_response(url, response))
                .collect(),
            Err(_) => urls.iter().map(|url| Err(self.no_answer(url))).collect(),
        }
    }

    fn local_service(&self, url: &url::Url) -> Result<Arc<dyn crate::LocalService>, HttpError> {
        self.access
            .local_service
            .clone()
            .ok_or_else(|| no_service(url))
    }

    fn no_answer(&self, url: &url::Url) -> HttpError {
        HttpError::Timeout(format!(
            "{url}: no answer within {:?}",
            self.limits.request_timeout
        ))
    }

    fn local_response(
        &self,
        url: &url::Url,
        response: ::http::Response<Bytes>,
    ) -> Result<Response, HttpError> {
        let (parts, body) = response.into_parts();
        if body.len() > self.limits.max_response_bytes {
            return Err(too_large(url, self.limits.max_response_bytes));
        }
        Ok(Response {
            status: parts.status.as_u16(),
            headers: response_headers(&parts.headers),
            body: body.to_vec(),
        })
    }
}

impl wit_http::Host for HostState {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, HttpError>> {
        let started = Instant::now();
        let result = self.http.send(request).await;
        self.clock.add_host_time(started.elapsed());
        Ok(result)
    }

    async fn send_all(
        &mut self,
        requests: Vec<Request>,
    ) -> wasmtime::Result<Vec<Result<Response, HttpError>>> {
        let started = Instant::now();
        let results = self.http.send_all(requests).await;
        self.clock.add_host_time(started.elapsed());
        Ok(results)
    }
}

fn plugin_headers(headers: &[(String, String)]) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("`{name}` is not a header name")))?;
        if STRIPPED_REQUEST_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let value = HeaderValue::from_str(value).map_err(|_| {
            HttpError::InvalidRequest(format!("the value of header `{name}` is not valid"))
        })?;
        map.append(name, value);
    }
    Ok(map)
}

fn response_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !STRIPPED_RESPONSE_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn to_http_request(request: reqwest::Request) -> Result<::http::Request<Bytes>, HttpError> {
    let body = request
        .body()
        .and_then(|body| body.as_bytes())
        .map(Bytes::copy_from_slice)
        .unwrap_or_default();
    let mut local = ::http::Request::builder()
        .method(request.method().clone())
        .uri(request.url().as_str())
        .body(body)
        .map_err(|error| HttpError::InvalidRequest(error.to_string()))?;
    *local.headers_mut() = request.headers().clone();
    Ok(local)
}

fn no_service(url: &url::Url) -> HttpError {
    HttpError::Connection(format!("{url}: no in-process service is configured"))
}

fn too_large(url: &url::Url, cap: usize) -> HttpError {
    HttpError::TooLarge(format!("{url}: response larger than {cap} bytes"))
}

fn transport_error(url: &url::Url, error: &reqwest::Error) -> HttpError {
    let message = format!("{url}: {}", error_text(error));
    if error.is_timeout() {
        HttpError::Timeout(message)
    } else {
        HttpError::Connection(message)
    }
}

/// The error and its causes on one line; reqwest's own text alone is vague.
fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn credential_and_framing_headers_from_the_plugin_are_dropped() {
        let headers = plugin_headers(&pairs(&[
            ("Authorization", "Bearer forged"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("COOKIE", "JSESSIONID=stolen"),
            ("host", "evil.example"),
            ("content-length", "999"),
            ("accept", "application/fhir+json"),
            ("x-plugin", "1"),
        ]))
        .unwrap();
        let names: Vec<_> = headers.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["accept", "x-plugin"]);
    }

    #[test]
    fn repeated_plugin_headers_are_kept() {
        let headers = plugin_headers(&pairs(&[("accept", "a/b"), ("accept", "c/d")])).unwrap();
        assert_eq!(headers.get_all("accept").iter().count(), 2);
    }

    #[test]
    fn malformed_headers_are_invalid_requests() {
        let bad_name = plugin_headers(&pairs(&[("bad header", "x")])).unwrap_err();
        assert!(matches!(bad_name, HttpError::InvalidRequest(ref m) if m.contains("bad header")));
        let bad_value = plugin_headers(&pairs(&[("x-a", "line\nbreak")])).unwrap_err();
        assert!(matches!(bad_value, HttpError::InvalidRequest(ref m) if m.contains("x-a")));
    }

    #[test]
    fn session_cookies_are_not_shown_to_plugins() {
        let mut map = HeaderMap::new();
        map.append("set-cookie", HeaderValue::from_static("JSESSIONID=secret"));
        map.append("etag", HeaderValue::from_static("W/\"3\""));
        assert_eq!(
            response_headers(&map),
            vec![("etag".to_owned(), "W/\"3\"".to_owned())]
        );
    }
}

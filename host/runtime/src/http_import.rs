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

    /// True when every request goes to an in-process endpoint.
    fn all_in_process(&self, requests: &[Request]) -> bool {
        requests.iter().all(|request| {
            check_url(&request.url, &self.access.endpoints).is_ok_and(|(_, e)| e.in_process)
        })
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

    /// A `send-all` whose requests all go to the in-process service: checked and prepared one
    /// by one, then handed to the service as one batch, which may serve them together.
    async fn send_all_in_process(
        &self,
        requests: Vec<Request>,
    ) -> Vec<Result<Response, HttpError>> {
        let mut results: Vec<Result<Response, HttpError>> = Vec::with_capacity(requests.len());
        let mut batch = Vec::new();
        for (index, request) in requests.iter().enumerate() {
            match self.prepare_in_process(request) {
                Ok((url, local)) => {
                    batch.push((index, url, local));
                    // Replaced by the service's answer below.
                    results.push(Err(HttpError::Connection("not sent".into())));
                }
                Err(error) => results.push(Err(error)),
            }
        }
        for (index, result) in self.call_batch(batch).await {
            results[index] = result;
        }
        results
    }

    /// Hands prepared requests to the in-process service as one batch, under one deadline.
    async fn call_batch(
        &self,
        batch: Vec<(usize, url::Url, ::http::Request<Bytes>)>,
    ) -> Vec<(usize, Result<Response, HttpError>)> {
        let (places, requests): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|(index, url, request)| ((index, url), request))
            .unzip();
        let Some((_, first)) = places.first() else {
            return Vec::new();
        };
        let Ok(service) = self.local_service(first) else {
            return places
                .into_iter()
                .map(|(index, url)| (index, Err(no_service(&url))))
                .collect();
        };
        match tokio::time::timeout(self.limits.request_timeout, service.call_all(requests)).await {
            Ok(responses) => places
                .into_iter()
                .zip(responses)
                .map(|((index, url), response)| (index, self.local_response(&url, response)))
                .collect(),
            Err(_) => places
                .into_iter()
                .map(|(index, url)| (index, Err(self.no_answer(&url))))
                .collect(),
        }
    }

    /// Checks one request of an in-process batch and builds what the service receives.
    fn prepare_in_process(
        &self,
        request: &Request,
    ) -> Result<(url::Url, ::http::Request<Bytes>), HttpError> {
        let (url, endpoint) = self.checked(request)?;
        let prepared = self.prepare(request, url, endpoint)?;
        let url = prepared.url().clone();
        Ok((url, to_http_request(prepared)?))
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
        let context = &self.http;
        let results = if context.all_in_process(&requests) {
            context.send_all_in_process(requests).await
        } else {
            futures::stream::iter(requests)
                .map(|request| context.send(request))
                .buffered(SEND_ALL_CONCURRENCY)
                .collect()
                .await
        };
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

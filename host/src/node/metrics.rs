//! Prometheus metrics of a node at `/metrics` (`metrics` or `admin` scope): HTTP requests by
//! API and status class, the sync state's queues, and what the collectors read at scrape time
//! (`sync_metrics`: directions, plugins, the network below; `feed_metrics`: long-polls and
//! renders).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sync_host_store::auth::{Clients, Scope};

use crate::audit::Timestamp;
use crate::state::SyncState;

/// Every label value is one of a few fixed strings: a request's method and path are chosen by
/// whoever sends it, authenticated or not, and must not grow the label set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    api: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    queues: Family<QueueLabels, Gauge>,
    state: SyncState,
    clients: Arc<Clients>,
}

impl Metrics {
    /// Metrics over `state` and the `collectors` read at scrape time (the sync directions and
    /// plugins, an embedded store's feed), served to `clients` with the `metrics` scope.
    pub fn new(
        state: SyncState,
        clients: Arc<Clients>,
        collectors: Vec<Box<dyn prometheus_client::collector::Collector>>,
    ) -> Arc<Self> {
        let mut registry = Registry::with_prefix("sync_host");
        let requests = Family::<RequestLabels, Counter>::default();
        let queues = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests served, by API and status class",
            requests.clone(),
        );
        registry.register(
            "sync_queue",
            "Items in the sync state's queues",
            queues.clone(),
        );
        for collector in collectors {
            registry.register_collector(collector);
        }
        Arc::new(Self {
            registry,
            requests,
            queues,
            state,
            clients,
        })
    }

    fn observe(&self, method: &http::Method, api: &'static str, status: StatusCode) {
        let labels = RequestLabels {
            method: method_of(method),
            api,
            status: status_class(status),
        };
        self.requests.get_or_create(&labels).inc();
    }

    fn render(&self) -> Result<String, std::fmt::Error> {
        if let Ok(counts) = self.state.counts(Timestamp::now()) {
            let set = |queue, value: usize| {
                self.queues
                    .get_or_create(&QueueLabels { queue })
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            };
            set("retries", counts.retries);
            set("dead_letters", counts.dead_letters);
            set("open_conflicts", counts.open_conflicts);
            set("audit_records", counts.audit_records);
        }
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The method's name when it is one the API serves, else `other`.
fn method_of(method: &http::Method) -> &'static str {
    const KNOWN: [(http::Method, &str); 7] = [
        (http::Method::GET, "GET"),
        (http::Method::HEAD, "HEAD"),
        (http::Method::POST, "POST"),
        (http::Method::PUT, "PUT"),
        (http::Method::DELETE, "DELETE"),
        (http::Method::PATCH, "PATCH"),
        (http::Method::OPTIONS, "OPTIONS"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, name)| name)
}

fn api_of(path: &str) -> &'static str {
    const APIS: [(&str, &str); 5] = [
        ("/ws/fhir2/", "fhir"),
        ("/ws/rest/", "rest"),
        ("/ws/atomfeed/", "feed"),
        ("/admin/", "admin"),
        ("/metrics", "metrics"),
    ];
    APIS.iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map_or("other", |(_, api)| api)
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Counts every request that passes through `router`, and adds `/metrics`.
pub fn instrument(router: Router, metrics: Arc<Metrics>) -> Router {
    let endpoint = Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::clone(&metrics));
    router
        .merge(endpoint)
        .layer(from_fn_with_state(metrics, count))
}

async fn count(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let api = api_of(request.uri().path());
    let response = next.run(request).await;
    metrics.observe(&method, api, response.status());
    response
}

async fn scrape(State(metrics): State<Arc<Metrics>>, request: Request) -> Response {
    if let Err(denied) =
        crate::node::admin::check_scope(&metrics.clients, request.headers(), Scope::Metrics)
    {
        return *denied;
    }
    match metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

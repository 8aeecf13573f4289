//! A small OpenMRS-shaped parent on loopback: per-category Atom feeds in the numbered archive
//! layout of the OpenMRS atomfeed module (built from the fixture pages), REST documents under
//! `/openmrs/ws/rest/v1` and FHIR resources under `/openmrs/ws/fhir2/R4`. The feed is anonymous;
//! resources need HTTP Basic. Every request is logged so tests can count what a reader asked.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use tokio_util::sync::CancellationToken;

use super::pages::{FeedEntry, page_count, render_page};

/// The web application's context path, as a stock OpenMRS install has it.
pub const CONTEXT: &str = "/openmrs";
/// The user and password the resources accept.
pub const USER: &str = "admin";
pub const PASSWORD: &str = "Admin123";
/// `Basic base64("admin:Admin123")`, written out because the test has no base64 crate.
const BASIC_HEADER: &str = "Basic YWRtaW46QWRtaW4xMjM=";
/// OpenMRS atomfeed pages hold five entries.
pub const PAGE_SIZE: usize = 5;

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    /// Path and query, e.g. `/openmrs/ws/atomfeed/patient/recent`.
    pub target: String,
    /// Whether it carried any `Authorization` header.
    pub had_credentials: bool,
}

/// A canned answer for one resource path.
#[derive(Debug, Clone)]
pub struct Served {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Served {
    /// A 200 JSON document (`application/json` for REST, FHIR's media type for FHIR).
    pub fn json(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            content_type: content_type.to_string(),
            body: body.into(),
        }
    }
}

#[derive(Default)]
struct Catalog {
    feeds: BTreeMap<String, Vec<FeedEntry>>,
    /// (category, page name such as `2` or `recent`) → a raw body served instead.
    page_overrides: HashMap<(String, String), String>,
    /// Path under the context (`/ws/rest/v1/patient/<uuid>`) → answer.
    resources: HashMap<String, Served>,
    log: Vec<Logged>,
}

/// A running OpenMRS-shaped server.
pub struct OpenMrs {
    /// `http://127.0.0.1:<port>/openmrs`: what a child configures as its parent base URL.
    pub base_url: String,
    catalog: Arc<Mutex<Catalog>>,
    cancel: CancellationToken,
}

impl OpenMrs {
    /// Starts an empty server on an ephemeral loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let catalog = Arc::new(Mutex::new(Catalog::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&catalog));
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                eprintln!("test OpenMRS server stopped: {e}");
            }
        });
        Ok(Self {
            base_url: format!("http://{address}{CONTEXT}"),
            catalog,
            cancel,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Catalog> {
        // A panic in a handler poisons the lock; the data is still usable for assertions.
        self.catalog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an entry to a category's feed.
    pub fn publish(&self, category: &str, entry: FeedEntry) {
        self.lock()
            .feeds
            .entry(category.to_string())
            .or_default()
            .push(entry);
    }

    /// Serves `answer` at `path` (under the context path, without query).
    pub fn serve(&self, path: &str, answer: Served) {
        self.lock().resources.insert(path.to_string(), answer);
    }

    /// Serves `body` instead of the rendered page `page` (`"2"`, `"recent"`) of `category`;
    /// `None` removes the override.
    pub fn override_page(&self, category: &str, page: &str, body: Option<String>) {
        let key = (category.to_string(), page.to_string());
        let mut catalog = self.lock();
        match body {
            Some(body) => catalog.page_overrides.insert(key, body),
            None => catalog.page_overrides.remove(&key),
        };
    }

    /// Number of archive pages `category` has now (the newest is also `recent`).
    pub fn pages(&self, category: &str) -> u64 {
        let catalog = self.lock();
        page_count(catalog.feeds.get(category).map_or(0, Vec::len), PAGE_SIZE)
    }

    /// Every request so far, oldest first.
    pub fn log(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    /// The feed requests of `category` so far, as page names (`recent`, `1`, `2`...).
    pub fn feed_requests(&self, category: &str) -> Vec<String> {
        let prefix = format!("{CONTEXT}/ws/atomfeed/{category}/");
        self.log()
            .iter()
            .filter_map(|r| r.target.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    /// Stops the server.
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for OpenMrs {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn handle(State(catalog): State<Arc<Mutex<Catalog>>>, request: Request) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().path().to_string(), |p| p.to_string());
    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut catalog = catalog.lock().unwrap_or_else(|e| e.into_inner());
    catalog.log.push(Logged {
        method: request.method().to_string(),
        target: target.clone(),
        had_credentials: authorization.is_some(),
    });
    let path = request.uri().path();
    let query = request.uri().query().unwrap_or_default();
    let Some(inner) = path.strip_prefix(CONTEXT) else {
        return plain(404, "not under the OpenMRS context path");
    };
    if let Some(feed_path) = inner.strip_prefix("/ws/atomfeed/") {
        return feed_page(&catalog, feed_path);
    }
    if authorization.as_deref() != Some(BASIC_HEADER) {
        return unauthorized();
    }
    if let Some(search) = fhir_search(inner, query) {
        return search_bundle(&catalog, &search.0, &search.1);
    }
    match catalog.resources.get(inner) {
        Some(served) => respond(served),
        None => plain(404, &format!("no resource at {inner}")),
    }
}

fn feed_page(catalog: &Catalog, feed_path: &str) -> Response {
    let Some((category, page)) = feed_path.split_once('/') else {
        return plain(404, "no such feed");
    };
    if let Some(body) = catalog
        .page_overrides
        .get(&(category.to_string(), page.to_string()))
    {
        return atom(body.clone());
    }
    let Some(entries) = catalog.feeds.get(category) else {
        return plain(404, &format!("no feed {category}"));
    };
    let newest = page_count(entries.len(), PAGE_SIZE);
    let number = match page {
        "recent" => newest,
        n => match n.parse::<u64>() {
            Ok(n) if (1..=newest).contains(&n) => n,
            _ => return plain(404, &format!("no page {page} of feed {category}")),
        },
    };
    atom(render_page(
        category, entries, number, newest, page, PAGE_SIZE,
    ))
}

/// `(type, ids)` of a FHIR `_id` search such as `/ws/fhir2/R4/Encounter?_id=a,b`.
fn fhir_search(inner: &str, query: &str) -> Option<(String, Vec<String>)> {
    let resource_type = inner.strip_prefix("/ws/fhir2/R4/")?;
    if resource_type.contains('/') {
        return None;
    }
    let ids = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("_id="))?
        .split(',')
        .map(str::to_string)
        .collect();
    Some((resource_type.to_string(), ids))
}

/// A searchset Bundle of the found resources, their bodies spliced in unchanged.
fn search_bundle(catalog: &Catalog, resource_type: &str, ids: &[String]) -> Response {
    let entries: Vec<String> = ids
        .iter()
        .filter_map(|id| {
            let path = format!("/ws/fhir2/R4/{resource_type}/{id}");
            let served = catalog.resources.get(&path)?;
            let body = std::str::from_utf8(&served.body).ok()?;
            (served.status == 200)
                .then(|| format!(r#"{{"fullUrl":"{resource_type}/{id}","resource":{body}}}"#))
        })
        .collect();
    let bundle = format!(
        r#"{{"resourceType":"Bundle","type":"searchset","total":{},"entry":[{}]}}"#,
        entries.len(),
        entries.join(",")
    );
    respond(&Served::json("application/fhir+json", bundle))
}

fn respond(served: &Served) -> Response {
    Response::builder()
        .status(served.status)
        .header(http::header::CONTENT_TYPE, served.content_type.as_str())
        .body(Body::from(served.body.clone()))
        .unwrap_or_default()
}

fn atom(body: String) -> Response {
    Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/atom+xml")
        .body(Body::from(body))
        .unwrap_or_default()
}

fn plain(status: u16, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(Body::from(message.to_string()))
        .unwrap_or_default()
}

fn unauthorized() -> Response {
    Response::builder()
        .status(401)
        .header(http::header::WWW_AUTHENTICATE, "Basic realm=\"OpenMRS\"")
        .body(Body::from("authentication required"))
        .unwrap_or_default()
}

//! A stand-in for an OpenMRS parent: a patient Atom feed in the atomfeed module's shape
//! (recent page plus numbered archive pages with RFC 5005 links, REST links only, optional
//! location feed-filter tags) and the REST documents it links, counting every read.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

/// A running stand-in. Cheap to clone; the server stops when the token given to `start` is
/// cancelled.
#[derive(Clone)]
pub struct OpenMrs {
    /// `http://127.0.0.1:<port>/openmrs`.
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    entries: Vec<String>,
    page_size: usize,
    documents: BTreeMap<String, String>,
    served: Vec<String>,
}

/// A patient feed entry as the atomfeed module writes it, with an escaped feed-filter tag
/// when `location` is given. `n` makes the entry id unique.
pub fn entry(n: usize, uuid: &str, action: &str, location: Option<&str>) -> String {
    let tag = location.map_or(String::new(), |l| {
        format!(
            "<category term=\"&lt;?xml version=&quot;1.0&quot; encoding=&quot;UTF-8&quot; standalone=&quot;yes&quot;?&gt;&lt;feedFilter&gt;&lt;beanName&gt;atomfeed.locationFeedFilterStrategy&lt;/beanName&gt;&lt;filter&gt;{l}&lt;/filter&gt;&lt;/feedFilter&gt;\" />"
        )
    });
    format!(
        r#"<entry><title>Patient</title><category term="{action}" />{tag}<category term="patient" />
<id>tag:atomfeed.ict4h.org:entry-{n}-{uuid}</id><updated>2026-11-05T10:{:02}:00Z</updated><published>2026-11-05T10:{:02}:00Z</published>
<content type="application/vnd.atomfeed+xml"><![CDATA[{{"rest":"/ws/rest/v1/patient/{uuid}?v=full"}}]]></content></entry>"#,
        n % 60,
        n % 60
    )
}

impl OpenMrs {
    /// Serves an empty feed with `page_size` entries per page on an ephemeral port.
    pub async fn start(page_size: usize, cancel: CancellationToken) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}/openmrs", listener.local_addr()?);
        let inner = Inner {
            page_size: page_size.max(1),
            ..Inner::default()
        };
        let server = Self {
            base,
            inner: Arc::new(Mutex::new(inner)),
        };
        let app = axum::Router::new()
            .route(
                "/openmrs/ws/atomfeed/patient/{page}",
                axum::routing::get(feed_page),
            )
            .route(
                "/openmrs/ws/rest/v1/patient/{uuid}",
                axum::routing::get(document),
            )
            .with_state(server.clone());
        tokio::spawn(async move {
            let stopped = cancel.cancelled_owned();
            let serving = axum::serve(listener, app).with_graceful_shutdown(stopped);
            if let Err(e) = serving.await {
                eprintln!("OpenMRS stand-in stopped: {e}");
            }
        });
        Ok(server)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking handler cannot leave the data half-written, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds (or replaces) the REST document with `uuid`.
    pub fn put_document(&self, uuid: &str, document: String) {
        self.lock().documents.insert(uuid.to_string(), document);
    }

    /// Appends entries to the feed, oldest first.
    pub fn publish(&self, entries: impl IntoIterator<Item = String>) {
        self.lock().entries.extend(entries);
    }

    /// Every document uuid a client has read, in order.
    pub fn served(&self) -> Vec<String> {
        self.lock().served.clone()
    }

    /// The Atom XML of `page` (`recent` or an archive number), if it exists.
    fn render(&self, page: &str) -> Option<String> {
        let inner = self.lock();
        let pages: Vec<&[String]> = inner.entries.chunks(inner.page_size).collect();
        let count = pages.len().max(1);
        let number = match page {
            "recent" => count,
            n => n.parse().ok().filter(|n| (1..=count).contains(n))?,
        };
        let entries = pages.get(number - 1).map_or(&[][..], |p| *p);
        let base = &self.base;
        let link = |rel: &str, n: usize| {
            format!(
                r#"<link rel="{rel}" type="application/atom+xml" href="{base}/ws/atomfeed/patient/{n}" />"#
            )
        };
        let mut links = vec![link("via", number)];
        if number > 1 {
            links.push(link("prev-archive", number - 1));
        }
        if number < count {
            links.push(link("next-archive", number + 1));
        }
        let self_name = if number == count {
            "recent".to_string()
        } else {
            number.to_string()
        };
        Some(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>OpenMRS Feed Publisher</title>
<link rel="self" type="application/atom+xml" href="{base}/ws/atomfeed/patient/{self_name}" />
{}
<author><name>OpenMRS</name></author><id>patient-feed+{number}</id><updated>2026-11-05T10:00:00Z</updated>
{}
</feed>"#,
            links.join("\n"),
            entries.join("\n")
        ))
    }
}

async fn feed_page(State(s): State<OpenMrs>, Path(page): Path<String>) -> Response {
    match s.render(&page) {
        Some(xml) => ([(http::header::CONTENT_TYPE, "application/atom+xml")], xml).into_response(),
        None => http::StatusCode::NOT_FOUND.into_response(),
    }
}

async fn document(State(s): State<OpenMrs>, Path(uuid): Path<String>) -> Response {
    let mut inner = s.lock();
    inner.served.push(uuid.clone());
    match inner.documents.get(&uuid) {
        Some(doc) => (
            [(http::header::CONTENT_TYPE, "application/json")],
            doc.clone(),
        )
            .into_response(),
        None => http::StatusCode::NOT_FOUND.into_response(),
    }
}

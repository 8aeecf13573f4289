//! The Atom change feeds: `{feed_base}/{category}/recent` and `{feed_base}/{category}/{n}`, one
//! category per resource type plus `all` (every change in commit order), with ETags, immutable
//! archive pages, spans of archive pages for a catch-up (`?count=`) and an optional long-poll
//! on `recent`.

mod encoding;
pub mod entries;
mod long_poll;
pub mod paging;
mod rendered;
mod waiters;

pub use rendered::{PageKey, Rendered, RenderedPages};
pub use waiters::{Bounds, LongPolls, Waiting};

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::error::{ApiError, FhirError};
use super::fhir::public_origin;
use super::fhir::search::query_pairs;
use super::headers::{if_none_match, none_match_hits};
use super::{ApiState, Closing};
use crate::auth::AuthenticatedClient;
use crate::config::ApiConfig;
use crate::scope::DataScope;
use encoding::{accepts_gzip, gzip_tag};
use entries::{feed_entry, feed_page, left_scope_entry};
use long_poll::LongPoll;
use paging::{
    PagePlan, PageRequest, cache_control, page_etag, page_links, plan_page, span_count,
    wait_duration, widen_to_span,
};

/// The combined category carrying every change.
pub const ALL_CATEGORY: &str = "all";

/// The feed routes under `config.feed_base`.
pub fn routes(config: &ApiConfig) -> Router<Arc<ApiState>> {
    Router::new().route(
        &format!("{}/{{category}}/{{page}}", config.feed_base),
        get(page),
    )
}

/// `GET {category}/recent` or `GET {category}/{n}`.
async fn page(
    State(state): State<Arc<ApiState>>,
    Path((category, page)): Path<(String, String)>,
    RawQuery(raw_query): RawQuery,
    closing: Option<Extension<Closing>>,
    client: Option<Extension<Arc<AuthenticatedClient>>>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    check_category(&category)?;
    let request = parse_page(&category, &page)?;
    let pairs = query_pairs(raw_query.as_deref());
    let param = |wanted: &str| {
        pairs
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.as_str())
    };
    let (wait, span) = match request {
        PageRequest::Recent => (
            wait_duration(param("wait"), state.config.long_poll_max)?,
            None,
        ),
        PageRequest::Number(_) => (None, span_count(param("count"))?),
    };
    // A wait beyond the node's or the client's bound of long-polls is answered at once.
    let closing = closing.map(|Extension(Closing(closing))| closing);
    let mut long_poll =
        wait.and_then(|wait| LongPoll::admit(&state, client.as_deref(), wait, closing));
    let store_category = (category != ALL_CATEGORY).then_some(category.as_str());
    let size = state.config.page_size;
    let gzip = accepts_gzip(&headers);
    let scope = client.as_ref().and_then(|client| client.data_scope.clone());
    // A scoped reader's page holds other entries under the same number: its tag says so.
    let tag_name = match &scope {
        Some(scope) => format!("{category}.{}", scope.digest()),
        None => category.clone(),
    };
    loop {
        let count = state.store.change_count(store_category)?;
        let plan = plan_page(request, count, size)
            .ok_or_else(|| ApiError::NotFound(format!("feed {category} has no page {page}")))?;
        let plan = match span {
            Some(wanted) => widen_to_span(plan, wanted, state.config.catch_up_page_max, size),
            None => plan,
        };
        let plain_tag = page_etag(state.store.instance_id(), &tag_name, &plan, size);
        let gzip_tag = gzip_tag(&plain_tag);
        // A reader holding either form of the page (plain or compressed) has it.
        let unchanged = if_none_match(&headers).is_some_and(|tags| {
            none_match_hits(tags, &plain_tag) || none_match_hits(tags, &gzip_tag)
        });
        let etag = if gzip { gzip_tag } else { plain_tag };
        if !unchanged {
            let reader = Reader {
                category: &category,
                scope: scope.as_ref(),
            };
            let (key, page) = render(&state, &headers, reader, request, &plan).await?;
            let body = if gzip {
                state.pages.gzip(&key, &page).await
            } else {
                page.xml.clone()
            };
            if let Some(long_poll) = &long_poll {
                long_poll.answered();
            }
            return Ok(page_response(body, gzip, &etag, &plan));
        }
        let woke = match long_poll.as_mut() {
            Some(long_poll) => long_poll.next_change().await,
            None => false,
        };
        if !woke {
            return Ok(not_modified(&etag, &plan));
        }
    }
}

/// Which feed a page is read from, and the data scope of the client reading it.
#[derive(Clone, Copy)]
struct Reader<'a> {
    category: &'a str,
    scope: Option<&'a Arc<DataScope>>,
}

/// The page `plan` of a category and its name, rendered once for every reader asking for it
/// (once per data scope).
async fn render(
    state: &ApiState,
    headers: &HeaderMap,
    reader: Reader<'_>,
    request: PageRequest,
    plan: &PagePlan,
) -> Result<(PageKey, Arc<Rendered>), FhirError> {
    let category_url = format!(
        "{}{}/{}",
        public_origin(headers),
        state.config.feed_base,
        reader.category
    );
    let key = PageKey {
        category_url,
        category: reader.category.to_owned(),
        request,
        plan: *plan,
        scope: reader.scope.map(|scope| scope.digest()),
    };
    let page = state
        .pages
        .get_or_render(key.clone(), || render_page(state, &key, reader.scope))
        .await?;
    Ok((key, page))
}

/// A `200` carrying `body`, the page (already compressed when `gzip`).
fn page_response(body: bytes::Bytes, gzip: bool, etag: &str, plan: &PagePlan) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/atom+xml; charset=utf-8"),
    );
    if gzip {
        // Already compressed: the server's compression layer leaves it as it is.
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    add_cache_headers(headers, etag, plan);
    response
}

/// Reads the changes of the page named `key` and renders those the reader's `scope` admits.
/// A scoped page may hold fewer entries than its plan, or none; paging stays the same.
fn render_page(
    state: &ApiState,
    key: &PageKey,
    scope: Option<&Arc<DataScope>>,
) -> Result<bytes::Bytes, FhirError> {
    let category = key.category.as_str();
    let store_category = (category != ALL_CATEGORY).then_some(category);
    let changes = state
        .store
        .changes_by_position(store_category, key.plan.start, key.plan.len)?;
    let node_id = state.store.node_id();
    let config = &state.config;
    let entries = changes
        .iter()
        .filter_map(|change| match scope {
            None => Some(feed_entry(change, node_id, config)),
            Some(scope) if scope.admits(&change.placement) => {
                Some(feed_entry(change, node_id, config))
            }
            // The reader held the resource and must learn it is gone from its scope.
            Some(scope) if scope.intersects(&change.left_keys) => {
                Some(left_scope_entry(change, node_id, config))
            }
            Some(_) => None,
        })
        .collect();
    let links = page_links(&key.category_url, key.request, &key.plan);
    let page = feed_page(node_id, category, key.plan.number, links, entries);
    Ok(sync_host_feed::render_page(&page).into())
}

fn not_modified(etag: &str, plan: &PagePlan) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    add_cache_headers(response.headers_mut(), etag, plan);
    response
}

fn add_cache_headers(headers: &mut HeaderMap, etag: &str, plan: &PagePlan) {
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    // Who asks decides whether they may see the page (and, with data scopes, what it holds),
    // and the bytes depend on the encoding asked for: a shared cache must key on both.
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Authorization, Accept-Encoding"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control(plan)),
    );
}

fn parse_page(category: &str, page: &str) -> Result<PageRequest, ApiError> {
    if page == "recent" {
        return Ok(PageRequest::Recent);
    }
    match page.parse::<u64>() {
        Ok(number) if number >= 1 => Ok(PageRequest::Number(number)),
        _ => Err(ApiError::NotFound(format!(
            "feed {category} has no page {page:?}: pages are `recent` or numbers from 1"
        ))),
    }
}

/// Categories are lower-case resource type names (or `all`).
fn check_category(category: &str) -> Result<(), ApiError> {
    let well_formed = (1..=64).contains(&category.len())
        && category.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_' || byte == b'-'
        });
    if well_formed {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no feed category {category:?}: categories are lower-case resource types or `all`"
        )))
    }
}

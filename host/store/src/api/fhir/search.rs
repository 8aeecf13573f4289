//! FHIR type search (`_id`, `_lastUpdated`, `_count`) with `next` links carrying an opaque
//! cursor, and the lookup behind conditional create (`If-None-Exist`).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use url::form_urlencoded;

use super::bundle::{BundleOut, search_entry};
use super::search_query::{CURSOR_PARAM, SearchQuery, encode_cursor, parse_search};
use super::validate::check_type;
use super::{fhir_key, public_origin};
use crate::api::ApiState;
use crate::api::error::{ApiError, FhirError, fhir_json};
use crate::api::seen::Seen;
use crate::auth::AuthenticatedClient;
use crate::store::{Kind, StoreError, VersionRecord};

/// How many ids to ask the store for at a time while filtering by `_lastUpdated`.
const SCAN_BATCH: usize = 500;

/// `GET {type}?...`: a searchset Bundle of current resources, ordered by id.
pub async fn search(
    State(state): State<Arc<ApiState>>,
    Path(resource_type): Path<String>,
    Extension(client): Extension<Arc<AuthenticatedClient>>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    check_type(&resource_type)?;
    let pairs = query_pairs(raw_query.as_deref());
    let query = parse_search(&pairs, state.config.page_size)?;
    let seen = Seen::new(&state, &client);
    let (page, more) = run_search(seen, &resource_type, &query)?;
    let origin = public_origin(&headers);
    let resource_base = format!("{origin}{}", state.config.fhir_base);
    let type_url = format!("{resource_base}/{resource_type}");
    let mut bundle = BundleOut::new("searchset");
    bundle.add_link("self", with_query(&type_url, &pairs));
    if more && let Some(last) = page.last() {
        bundle.add_link("next", next_url(&type_url, &pairs, &last.key.id));
    }
    for record in &page {
        bundle.push(search_entry(&resource_base, record));
    }
    Ok(fhir_json(StatusCode::OK, bundle.to_json()))
}

/// Resources matching an `If-None-Exist` query (at most two: enough to tell 0, 1 or many).
pub fn find_for_condition(
    seen: Seen<'_>,
    resource_type: &str,
    condition: &str,
) -> Result<Vec<VersionRecord>, ApiError> {
    let pairs = query_pairs(Some(condition.trim_start_matches('?')));
    let mut query = parse_search(&pairs, 2)
        .map_err(|error| ApiError::Invalid(format!("If-None-Exist {condition:?}: {error}")))?;
    query.count = 2;
    Ok(run_search(seen, resource_type, &query)?.0)
}

/// Runs `query`: up to `count` matches after the cursor, and whether more exist.
pub fn run_search(
    store: Seen<'_>,
    resource_type: &str,
    query: &SearchQuery,
) -> Result<(Vec<VersionRecord>, bool), StoreError> {
    let wanted = query.count + 1;
    let mut found = match &query.ids {
        Some(ids) => search_ids(store, resource_type, query, ids, wanted)?,
        None => scan_type(store, resource_type, query, wanted)?,
    };
    let more = found.len() > query.count;
    found.truncate(query.count);
    Ok((found, more))
}

fn search_ids(
    store: Seen<'_>,
    resource_type: &str,
    query: &SearchQuery,
    ids: &[String],
    wanted: usize,
) -> Result<Vec<VersionRecord>, StoreError> {
    let mut found = Vec::new();
    let after = query.after_id.as_deref();
    for id in ids
        .iter()
        .filter(|id| after.is_none_or(|after| id.as_str() > after))
    {
        if found.len() == wanted {
            break;
        }
        if let Some(record) = store.read(&fhir_key(resource_type, id))?
            && !record.deleted
            && query.date_matches(record.last_updated)
        {
            found.push(record);
        }
    }
    Ok(found)
}

fn scan_type(
    store: Seen<'_>,
    resource_type: &str,
    query: &SearchQuery,
    wanted: usize,
) -> Result<Vec<VersionRecord>, StoreError> {
    let mut found = Vec::new();
    let mut after = query.after_id.clone();
    // A scoped reader sees only part of what is listed: ask for more at a time.
    let batch = if query.last_updated.is_empty() && !store.is_scoped() {
        wanted
    } else {
        SCAN_BATCH
    };
    loop {
        let listed = store.list(Kind::Fhir, resource_type, after.as_deref(), batch)?;
        let exhausted = listed.exhausted;
        after = listed.last_id;
        for record in listed.records {
            if found.len() == wanted {
                return Ok(found);
            }
            if query.date_matches(record.last_updated) {
                found.push(record);
            }
        }
        if exhausted || found.len() == wanted || after.is_none() {
            return Ok(found);
        }
    }
}

/// The decoded `name=value` pairs of a query string.
pub fn query_pairs(raw_query: Option<&str>) -> Vec<(String, String)> {
    raw_query
        .map(|query| {
            form_urlencoded::parse(query.as_bytes())
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn with_query(url: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return url.to_owned();
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(pairs);
    format!("{url}?{}", query.finish())
}

/// The `next` link: the same search continuing after `last_id`.
fn next_url(url: &str, pairs: &[(String, String)], last_id: &str) -> String {
    let mut next: Vec<(String, String)> = pairs
        .iter()
        .filter(|(name, _)| name != CURSOR_PARAM)
        .cloned()
        .collect();
    next.push((CURSOR_PARAM.to_owned(), encode_cursor(last_id)));
    with_query(url, &next)
}

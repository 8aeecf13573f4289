//! The audit page: records searched by time, outcome, direction, type and resource, newest
//! first, a page at a time, and exported as NDJSON with the same filters.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, Uri, header};
use maud::html;

use super::layout::{message, page};
use super::{Operator, Ui};
use crate::audit::AuditQuery;
use crate::node::admin::{AuditParams, audit_query};

/// Records per page.
const PAGE: usize = 50;

/// The filters of the request, without the empty fields a form sends, as the admin API reads
/// them.
fn filters(uri: &Uri) -> Result<(AuditQuery, String), String> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let kept = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().filter(|(k, _)| k != "before"))
        .finish();
    let all = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let uri: Uri = format!("/?{all}")
        .parse()
        .map_err(|_| "unreadable filters".to_string())?;
    let Query(params) = Query::<AuditParams>::try_from_uri(&uri).map_err(|e| e.body_text())?;
    let mut query = audit_query(params)
        .map_err(|_| "a filter is not valid (times are RFC 3339)".to_string())?;
    query.limit = if query.limit == 0 {
        PAGE
    } else {
        query.limit.min(500)
    };
    Ok((query, kept))
}

/// `GET /ui/audit`.
pub async fn search(State(ui): State<Ui>, Operator(session): Operator, uri: Uri) -> Response {
    let this = &ui.node.node_id;
    let (query, kept) = match filters(&uri) {
        Ok(found) => found,
        Err(e) => return message(StatusCode::BAD_REQUEST, this, &session, &e),
    };
    let found = match ui.node.state.audit().query(&query) {
        Ok(found) => found,
        Err(e) => {
            let text = crate::error_chain::chain(&e);
            return message(StatusCode::INTERNAL_SERVER_ERROR, this, &session, &text);
        }
    };
    let value = |v: Option<&str>| v.unwrap_or("").to_string();
    let time = |t: Option<crate::audit::Timestamp>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    let body = html! {
        form method="get" action="/ui/audit" {
            label { "Since " input name="since" placeholder="2026-01-01T00:00:00Z" value=(time(query.since)); } " "
            label { "Until " input name="until" value=(time(query.until)); } " "
            label { "Outcome " select name="outcome" {
                option value="" { "any" }
                @for o in ["applied", "unchanged", "skipped", "filtered", "conflict", "failed", "settled"] {
                    option value=(o) selected[query.outcome.map(|k| format!("{k:?}").to_lowercase()) == Some(o.to_string())] { (o) }
                }
            } } " "
            label { "Direction " select name="direction" {
                option value="" { "any" } option value="pull" { "pull" } option value="push" { "push" }
            } } " "
            label { "Type " input name="type" value=(value(query.resource_type.as_deref())); } " "
            label { "Resource id " input name="resource" value=(value(query.resource_id.as_deref())); } " "
            button type="submit" { "Search" }
        }
        p { a href={ "/ui/audit/export?" (kept) } { "Export these records (NDJSON)" } }
        table #audit {
            tr { th { "Time" } th { "Direction" } th { "Resource" } th { "Outcome" } th { "Node" } }
            @for entry in &found.entries {
                tr {
                    td { (entry.record.time) }
                    td { (entry.record.direction.name()) }
                    td { (entry.record.resource_type) "/" (entry.record.resource_id) }
                    td { (serde_json::to_string(&entry.record.outcome).unwrap_or_default()) }
                    td { (entry.record.node) }
                }
            }
        }
        @if let Some(next) = found.next {
            p { a href={ "/ui/audit?" (kept) "&before=" (next.to_cursor()) } { "Older records" } }
        }
    };
    page(this, &session, "Audit", body).into_response()
}

/// `GET /ui/audit/export`.
pub async fn export(State(ui): State<Ui>, Operator(session): Operator, uri: Uri) -> Response {
    let this = &ui.node.node_id;
    let (query, _) = match filters(&uri) {
        Ok(found) => found,
        Err(e) => return message(StatusCode::BAD_REQUEST, this, &session, &e),
    };
    let mut out = Vec::new();
    match ui.node.state.audit().export_jsonl(&query, &mut out) {
        Ok(_) => (
            [
                (header::CONTENT_TYPE, "application/x-ndjson"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"audit.ndjson\"",
                ),
            ],
            out,
        )
            .into_response(),
        Err(e) => {
            let text = crate::error_chain::chain(&e);
            message(StatusCode::INTERNAL_SERVER_ERROR, this, &session, &text)
        }
    }
}

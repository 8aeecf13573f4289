//! The network page (this node and every node below it, with their health), a node's detail
//! (directions, recent failures, plugins, open conflicts) and this node's plugins.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::{Markup, html};

use super::layout::{message, page, when};
use super::{Operator, Ui};
use crate::audit::Timestamp;
use crate::node::reporting::own_report;
use crate::report::model::{DirectionReport, NodeReport};
use crate::report::{Health, NetworkRow, network};

fn health(row: &NetworkRow) -> Markup {
    match row.health {
        Health::Ok => html! { span.ok { "ok" } },
        Health::Stale => html! { span.stale { "stale" } },
        Health::NeverReported => html! { span.never { "never reported" } },
    }
}

fn count(value: Option<u64>) -> String {
    value.map_or("-".into(), |v| v.to_string())
}

/// `GET /ui/network`.
pub async fn tree(State(ui): State<Ui>, Operator(session): Operator) -> Response {
    let node = &ui.node;
    let rows = match rows(&ui) {
        Ok(rows) => rows,
        Err(e) => {
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                &node.node_id,
                &session,
                &e,
            );
        }
    };
    let body = html! {
        p { "Nodes report after each sync run and at least every few minutes; a node silent for "
            (node.reporting.stale_after.as_secs() / 60) " minutes is stale." }
        table #network {
            tr { th { "Node" } th { "Health" } th { "Last report" } th { "Pull lag" } th { "Push lag" }
                 th { "Last sync" } th { "Conflicts" } th { "Retries" } th { "Dead letters" } th { "Last failure" } }
            @for row in &rows {
                tr data-node=(row.node) {
                    td { (("\u{a0}\u{a0}").repeat(row.depth)) a href={ "/ui/nodes/" (row.node) } { (row.node) } }
                    td { (health(row)) }
                    td { (when(row.reported_at)) }
                    td { (count(row.pull_lag)) }
                    td { (count(row.push_lag)) }
                    td { (when(row.last_success)) }
                    td.conflicts { (count(row.counts.map(|c| c.open_conflicts))) }
                    td { (count(row.counts.map(|c| c.retries))) }
                    td { (count(row.counts.map(|c| c.dead_letters))) }
                    td { @if let Some(f) = &row.last_failure { (f.at) ": " (f.message) } }
                }
            }
        }
    };
    page(&node.node_id, &session, "Network", body).into_response()
}

fn rows(ui: &Ui) -> Result<Vec<NetworkRow>, String> {
    let node = &ui.node;
    let this = own_report(node).map_err(|e| crate::error_chain::chain(&e))?;
    let kept = node
        .reporting
        .book
        .all()
        .map_err(|e| crate::error_chain::chain(&e))?;
    let standing = node.reporting.standing(node, None, &kept);
    let here = standing.position();
    Ok(network::view(
        &this,
        &kept,
        &here,
        Timestamp::now(),
        node.reporting.stale_after,
    ))
}

/// The latest report of `id`: this node's own, made now, or a kept one with its age.
fn report_of(ui: &Ui, id: &str) -> Result<Option<(NodeReport, u64)>, String> {
    if id == ui.node.node_id {
        return own_report(&ui.node)
            .map(|r| Some((r, 0)))
            .map_err(|e| crate::error_chain::chain(&e));
    }
    let kept = ui
        .node
        .reporting
        .book
        .get(id)
        .map_err(|e| crate::error_chain::chain(&e))?;
    Ok(kept.and_then(|k| {
        let age = k.age_secs(Timestamp::now())?;
        Some((k.report?, age))
    }))
}

fn direction(name: &str, report: Option<&DirectionReport>) -> Markup {
    html! {
        tr {
            th { (name) }
            @if let Some(d) = report {
                td { (count(d.lag_entries)) }
                td { (when(d.last_success)) }
                td { @if let Some(f) = &d.last_failure { span.failed { (f.at) ": " (f.message) } } }
                td { (if d.running { "running" } else { "idle" }) }
                td { (d.runs) }
                td { @if let Some(run) = &d.last_run {
                    (run.finished) ": " (run.events) " events on " (run.pages) " pages, "
                    (run.applied) " applied, " (run.failed) " failed"
                    @if let Some(e) = &run.error { span.failed { " · " (e) } }
                } }
            } @else {
                td colspan="6" { "off" }
            }
        }
    }
}

/// `GET /ui/nodes/{node}`.
pub async fn detail(
    State(ui): State<Ui>,
    Operator(session): Operator,
    Path(id): Path<String>,
) -> Response {
    let this = &ui.node.node_id;
    let (report, age) = match report_of(&ui, &id) {
        Ok(Some(found)) => found,
        Ok(None) => {
            let text = format!("No report from node `{id}` has reached this node.");
            return message(StatusCode::NOT_FOUND, this, &session, &text);
        }
        Err(e) => return message(StatusCode::INTERNAL_SERVER_ERROR, this, &session, &e),
    };
    let conflict_link = |conflict_id: u64| {
        if id == *this {
            format!("/ui/conflicts/{conflict_id}")
        } else {
            format!("/ui/nodes/{id}/conflicts/{conflict_id}")
        }
    };
    let body = html! {
        p { "sync-host " (report.version) " · parent " (report.parent.as_deref().unwrap_or("none"))
            " · reported " (age) " s ago" }
        h2 { "Directions" }
        table { tr { th {} th { "Lag" } th { "Last success" } th { "Last failure" } th { "Now" } th { "Runs" } th { "Last run" } }
            (direction("pull", report.pull.as_ref())) (direction("push", report.push.as_ref())) }
        h2 { "Open conflicts (" (report.counts.open_conflicts) ")" }
        table #conflicts {
            tr { th { "Id" } th { "Resource" } th { "Detected" } th { "Policy" } }
            @for c in &report.conflicts {
                tr { td { a href=(conflict_link(c.id)) { (c.id) } } td { (c.resource) }
                     td { (c.detected_at) } td { (format!("{:?}", c.policy)) } }
            }
        }
        h2 { "Recent failures" }
        table { tr { th { "When" } th { "Direction" } th { "Resource" } th { "Kind" } th { "Message" } }
            @for f in &report.recent_failures {
                tr { td { (f.at) } td { (f.direction.name()) } td { (f.resource) }
                     td { (format!("{:?}", f.kind)) } td { (f.message) } }
            }
        }
        h2 { "Plugins" }
        (plugin_table(&report))
        p { "Retries " (report.counts.retries) " · dead letters " (report.counts.dead_letters) }
    };
    page(this, &session, &format!("Node {id}"), body).into_response()
}

fn plugin_table(report: &NodeReport) -> Markup {
    html! {
        table { tr { th { "Name" } th { "Version" } th { "World" } th { "Digest" } }
            @for p in &report.plugins {
                tr { td { (p.name) } td { (p.version) } td { (p.world) } td { code { (p.digest) } } }
            }
        }
    }
}

/// `GET /ui/plugins`.
pub async fn plugins(State(ui): State<Ui>, Operator(session): Operator) -> Response {
    let this = &ui.node.node_id;
    match own_report(&ui.node) {
        Ok(report) => page(this, &session, "Plugins", plugin_table(&report)).into_response(),
        Err(e) => {
            let text = crate::error_chain::chain(&e);
            message(StatusCode::INTERNAL_SERVER_ERROR, this, &session, &text)
        }
    }
}

//! Conflict pages: the open conflicts of this node and of every node below it; this node's
//! conflict with both versions side by side and the differing JSON paths marked; a
//! descendant's conflict from its report; and the forms that keep a side or send a merged
//! body (checked in the page, and again here before anything is written or sent).

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;

use super::json_diff::{differing_paths, is_marked, lines};
use super::layout::{csrf_field, message, page, when};
use super::session::Session;
use super::{Operator, Ui};
use crate::node::remote_resolve::decide;
use crate::node::resolve::{Resolve, resolve_conflict};
use crate::report::decisions::merged_body_problem;
use crate::state::{ConflictFilter, ConflictVersion};
use crate::sync::conflict::Side;

/// Open conflicts listed from this node's state at most.
const LIST_LIMIT: usize = 500;

/// `GET /ui/conflicts`.
pub async fn list(State(ui): State<Ui>, Operator(session): Operator) -> Response {
    let this = &ui.node.node_id;
    let local = match ui.node.state.conflicts(ConflictFilter::Open, LIST_LIMIT) {
        Ok(local) => local,
        Err(e) => {
            let text = crate::error_chain::chain(&e);
            return message(StatusCode::INTERNAL_SERVER_ERROR, this, &session, &text);
        }
    };
    let below = ui.node.reporting.book.all().unwrap_or_default();
    let body = html! {
        table #conflict-list {
            tr { th { "Node" } th { "Conflict" } th { "Resource" } th { "Detected" } th { "Direction" } }
            @for c in &local {
                tr { td { (this) } td { a href={ "/ui/conflicts/" (c.id) } { (c.id) } }
                     td { (c.resource_type) "/" (c.resource_id) } td { (c.detected_at) } td { (c.direction.name()) } }
            }
            @for kept in &below {
                @if let Some(report) = &kept.report {
                    @for c in &report.conflicts {
                        tr { td { (kept.node) }
                             td { a href={ "/ui/nodes/" (kept.node) "/conflicts/" (c.id) } { (c.id) } }
                             td { (c.resource) } td { (c.detected_at) } td { (c.direction.name()) } }
                    }
                }
            }
        }
    };
    page(this, &session, "Open conflicts", body).into_response()
}

/// One version as marked lines.
fn version_block(title: &str, version: &ConflictVersion, other: &ConflictVersion) -> Markup {
    let parsed = |v: &ConflictVersion| serde_json::from_str::<serde_json::Value>(&v.body).ok();
    let differing = match (parsed(version), parsed(other)) {
        (Some(a), Some(b)) => differing_paths(&a, &b),
        _ => Default::default(),
    };
    html! {
        div.side {
            h2 { (title) }
            p { "version " (version.version.as_deref().unwrap_or("-")) " · updated "
                (when(version.last_updated)) }
            @if version.deleted {
                p.failed { "deleted on this side" }
            } @else if let Some(value) = parsed(version) {
                pre { @for line in lines(&value) {
                    @if is_marked(&line.path, &differing) { span.diff data-path=(line.path) { (line.text) } }
                    @else { (line.text) "\n" }
                } }
            } @else {
                pre { (version.body) }
            }
        }
    }
}

fn choice_forms(session: &Session, action: &str, merged_start: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(session)) input type="hidden" name="side" value="parent";
            button #keep-parent type="submit" { "Keep the parent's version" }
        }
        " "
        form.inline method="post" action=(action) {
            (csrf_field(session)) input type="hidden" name="side" value="child";
            button #keep-child type="submit" { "Keep the child's version" }
        }
        h2 { "Or write a merged version" }
        form method="post" action=(action) {
            (csrf_field(session))
            textarea name="body" { (merged_start) }
            p.body-error.error {}
            button #send-merged type="submit" { "Send the merged version" }
        }
    }
}

/// `GET /ui/conflicts/{id}`: one of this node's conflicts.
pub async fn local(
    State(ui): State<Ui>,
    Operator(session): Operator,
    Path(id): Path<u64>,
) -> Response {
    let this = &ui.node.node_id;
    let record = match ui.node.state.conflict(id) {
        Ok(Some(record)) => record,
        Ok(None) => {
            return message(
                StatusCode::NOT_FOUND,
                this,
                &session,
                &format!("No conflict {id}."),
            );
        }
        Err(e) => {
            let text = crate::error_chain::chain(&e);
            return message(StatusCode::INTERNAL_SERVER_ERROR, this, &session, &text);
        }
    };
    let open = record.resolution.is_none();
    let body = html! {
        p { (record.resource_type) "/" (record.resource_id) " · " (record.direction.name())
            " · detected " (record.detected_at) " · policy " (format!("{:?}", record.policy)) }
        @if let Some(resolution) = &record.resolution {
            p.notice { "Resolved by " (resolution.by) " at " (resolution.at) }
        }
        div.sides {
            (version_block("Parent", &record.parent, &record.child))
            (version_block("Child", &record.child, &record.parent))
        }
        @if open { (choice_forms(&session, &format!("/ui/conflicts/{id}"), &record.child.body)) }
    };
    page(this, &session, &format!("Conflict {id}"), body).into_response()
}

/// A resolution form.
#[derive(Deserialize)]
pub struct Choice {
    side: Option<Side>,
    body: Option<String>,
}

impl Choice {
    /// The resolution `operator` chose; an empty body field counts as none.
    fn into_resolve(self, operator: &str) -> Result<Resolve, String> {
        let body = self.body.filter(|b| !b.trim().is_empty());
        let body = body
            .map(|b| {
                serde_json::value::RawValue::from_string(b)
                    .map_err(|e| format!("The merged body is not JSON: {e}"))
            })
            .transpose()?;
        Ok(Resolve {
            side: self.side,
            body,
            by: operator.to_string(),
        })
    }
}

/// `POST /ui/conflicts/{id}`.
pub async fn resolve_local(
    State(ui): State<Ui>,
    Operator(session): Operator,
    Path(id): Path<u64>,
    Form(choice): Form<Choice>,
) -> Response {
    let this = &ui.node.node_id;
    let how = match choice.into_resolve(&session.operator) {
        Ok(how) => how,
        Err(e) => return message(StatusCode::BAD_REQUEST, this, &session, &e),
    };
    let resource = ui
        .node
        .state
        .conflict(id)
        .ok()
        .flatten()
        .map(|r| format!("{}/{}", r.resource_type, r.resource_id))
        .unwrap_or_default();
    if let Some(problem) = how
        .body
        .as_ref()
        .and_then(|b| merged_body_problem(&resource, b.get()))
    {
        return message(StatusCode::BAD_REQUEST, this, &session, &problem);
    }
    match resolve_conflict(&ui.node, id, how).await {
        Ok(_) => Redirect::to(&format!("/ui/conflicts/{id}")).into_response(),
        Err(e) => message(e.status(), this, &session, &crate::error_chain::chain(&e)),
    }
}

/// `GET /ui/nodes/{node}/conflicts/{id}`: a descendant's conflict, from its latest report.
pub async fn remote(
    State(ui): State<Ui>,
    Operator(session): Operator,
    Path((node, id)): Path<(String, u64)>,
) -> Response {
    let this = &ui.node.node_id;
    let report = ui
        .node
        .reporting
        .book
        .get(&node)
        .ok()
        .flatten()
        .and_then(|k| k.report);
    let decisions: Vec<_> = ui
        .node
        .reporting
        .decisions
        .all()
        .unwrap_or_default()
        .into_iter()
        .filter(|k| k.decision.target == node && k.decision.conflict_id == id)
        .collect();
    let conflict = report
        .as_ref()
        .and_then(|r| r.conflicts.iter().find(|c| c.id == id));
    let body = html! {
        @for kept in &decisions {
            @match &kept.outcome {
                None => p.notice.decision data-state="pending" { "Decision " (kept.decision.id) " by " (kept.decision.by)
                        " is on its way to " (node) "; it is delivered when " (node) " next reports." },
                Some(o) => p.notice.decision data-state=(if o.applied { "applied" } else { "refused" }) {
                        "Decision " (kept.decision.id) ": " (o.message) " (" (o.at) ")" },
            }
        }
        @if let Some(c) = conflict {
            p { (c.resource) " on " (node) " · " (c.direction.name()) " · detected " (c.detected_at) }
            p { "Reports carry no resource bodies; the versions are compared on " (node) "'s dashboard." }
            table {
                tr { th {} th { "Version" } th { "Content hash" } th { "Deleted" } }
                tr { th { "Parent" } td { (c.parent.version.as_deref().unwrap_or("-")) } td { code { (c.parent.content_hash) } } td { (c.parent.deleted) } }
                tr { th { "Child" } td { (c.child.version.as_deref().unwrap_or("-")) } td { code { (c.child.content_hash) } } td { (c.child.deleted) } }
            }
            @if decisions.iter().all(|k| k.outcome.is_some()) {
                (choice_forms(&session, &format!("/ui/nodes/{node}/conflicts/{id}"), ""))
            }
        } @else if decisions.is_empty() {
            p { (node) " does not report an open conflict " (id) "." }
        }
    };
    page(this, &session, &format!("Conflict {id} on {node}"), body).into_response()
}

/// `POST /ui/nodes/{node}/conflicts/{id}`: the decision waits here for the node's next report.
pub async fn resolve_remote(
    State(ui): State<Ui>,
    Operator(session): Operator,
    Path((node, id)): Path<(String, u64)>,
    Form(choice): Form<Choice>,
) -> Response {
    let this = &ui.node.node_id;
    let how = match choice.into_resolve(&session.operator) {
        Ok(how) => how,
        Err(e) => return message(StatusCode::BAD_REQUEST, this, &session, &e),
    };
    match decide(&ui.node, &node, id, how) {
        Ok(_) => Redirect::to(&format!("/ui/nodes/{node}/conflicts/{id}")).into_response(),
        Err(e) => message(e.status(), this, &session, &e.to_string()),
    }
}

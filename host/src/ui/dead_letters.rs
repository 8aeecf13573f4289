//! The dead letters: events that ran out of attempts, with their last failure, and forms to
//! put one or all of them back in the retry queue once the cause is fixed.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use maud::html;
use serde::Deserialize;

use super::layout::{csrf_field, message, page};
use super::{Operator, Ui};
use crate::node::admin::requeue;

/// Dead letters listed at most.
const LIST_LIMIT: usize = 1000;

/// `GET /ui/dead-letters`.
pub async fn list(State(ui): State<Ui>, Operator(session): Operator) -> Response {
    let this = &ui.node.node_id;
    let dead = match ui.node.state.dead_letters(LIST_LIMIT) {
        Ok(dead) => dead,
        Err(e) => {
            let text = crate::error_chain::chain(&e);
            return message(StatusCode::INTERNAL_SERVER_ERROR, this, &session, &text);
        }
    };
    let body = html! {
        @if dead.is_empty() { p { "No dead letters." } } @else {
            form method="post" action="/ui/dead-letters/retry" {
                (csrf_field(&session)) input type="hidden" name="all" value="true";
                button #retry-all type="submit" { "Retry all " (dead.len()) }
            }
            table #dead-letters {
                tr { th { "Id" } th { "Resource" } th { "Direction" } th { "Attempts" } th { "Last failure" } th {} }
                @for entry in &dead {
                    tr {
                        td { (entry.id) }
                        td { (entry.key.resource_type) "/" (entry.key.resource_id) }
                        td { (entry.key.direction.name()) }
                        td { (entry.attempt) }
                        td { (entry.last_failure.at) ": " (entry.last_failure.message) }
                        td { form.inline method="post" action="/ui/dead-letters/retry" {
                            (csrf_field(&session)) input type="hidden" name="id" value=(entry.id);
                            button type="submit" { "Retry" }
                        } }
                    }
                }
            }
        }
    };
    page(this, &session, "Dead letters", body).into_response()
}

/// What to requeue.
#[derive(Deserialize)]
pub struct Retry {
    id: Option<u64>,
    #[serde(default)]
    all: bool,
}

/// `POST /ui/dead-letters/retry`.
pub async fn retry(
    State(ui): State<Ui>,
    Operator(session): Operator,
    Form(retry): Form<Retry>,
) -> Response {
    let this = &ui.node.node_id;
    let which = match (retry.id, retry.all) {
        (_, true) => None,
        (Some(id), false) => Some(id),
        (None, false) => {
            return message(
                StatusCode::BAD_REQUEST,
                this,
                &session,
                "Choose a dead letter.",
            );
        }
    };
    match requeue(&ui.node, which) {
        Ok(_) => Redirect::to("/ui/dead-letters").into_response(),
        Err(e) => {
            let text = crate::error_chain::chain(&e);
            message(StatusCode::INTERNAL_SERVER_ERROR, this, &session, &text)
        }
    }
}

//! `fetch`: one `GET ...?v=full` per event, all sent concurrently; bodies
//! are returned exactly as the server sent them.

use sync_plugin_sdk::http::{self, Request, Response};
use sync_plugin_sdk::{Endpoint, Event, Failure, Resource};

use crate::errors::failure;
use crate::location::fetch_url;

/// Fetches the documents `events` point to, one result per event.
pub fn fetch(source: &Endpoint, events: &[Event]) -> Vec<Result<Resource, Failure>> {
    let requests = events
        .iter()
        .map(|event| Request::get(fetch_url(source, event)).header("accept", "application/json"))
        .collect();
    events
        .iter()
        .zip(http::send_all(requests))
        .map(|(event, answer)| {
            answer
                .map_err(Failure::from)
                .and_then(|response| read_outcome(event, response))
        })
        .collect()
}

/// 200 is the document, 410 a tombstone, anything else a failure.
fn read_outcome(event: &Event, response: Response) -> Result<Resource, Failure> {
    let tombstone = response.status == 410;
    let version = response.etag_version();
    if !response.is_success() && !tombstone {
        return Err(failure(&response));
    }
    let body = if tombstone {
        String::new()
    } else {
        String::from_utf8(response.body).map_err(|_| {
            Failure::invalid(format!(
                "{} {}: the body is not UTF-8",
                event.resource_type, event.resource_id
            ))
        })?
    };
    Ok(Resource {
        resource_type: event.resource_type.clone(),
        id: event.resource_id.clone(),
        version,
        body,
        deleted: tombstone,
    })
}

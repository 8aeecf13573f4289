//! `store`: updates are `POST {resource}/{uuid}`; documents the target does
//! not have yet (404) are then created with `POST {resource}`, keeping their
//! uuid in the body; tombstones are `DELETE {resource}/{uuid}`. Each round
//! is sent concurrently. A write that expects a version sends `If-Match`, so
//! a target that changed meanwhile answers 412 instead of being overwritten;
//! a create-only write goes straight to `POST {resource}` with
//! `If-None-Match: *`, so a document created there meanwhile is refused.

use sync_plugin_sdk::http::{self, HttpError, Request, Response};
use sync_plugin_sdk::{Endpoint, Failure, Precondition, Stored, Write, WriteOutcome};

use crate::errors::failure;
use crate::location::{collection_url, document_url};

/// The header that tells the target which node a change came from.
pub const ORIGIN_HEADER: &str = "X-Sync-Origin";

type Answer = Result<Response, HttpError>;

/// Writes every document to `target`, one result per write.
pub fn store(target: &Endpoint, writes: &[Write]) -> Vec<Result<Stored, Failure>> {
    let first_round = writes.iter().map(|w| opening_request(target, w)).collect();
    let mut answers: Vec<(Answer, bool)> = writes
        .iter()
        .zip(http::send_all(first_round))
        .map(|(write, answer)| (answer, is_create_only(write)))
        .collect();
    let missing: Vec<usize> = writes
        .iter()
        .zip(&answers)
        .enumerate()
        .filter(|(_, (write, (answer, _)))| needs_create(write, answer))
        .map(|(index, _)| index)
        .collect();
    let creates = missing
        .iter()
        .map(|&i| create_request(target, &writes[i]))
        .collect();
    for (index, answer) in missing.into_iter().zip(http::send_all(creates)) {
        answers[index] = (answer, true);
    }
    writes
        .iter()
        .zip(answers)
        .map(|(write, (answer, created))| {
            answer
                .map_err(Failure::from)
                .and_then(|response| write_outcome(write, &response, created))
        })
        .collect()
}

fn needs_create(write: &Write, answer: &Answer) -> bool {
    !write.resource.deleted
        && !is_create_only(write)
        && matches!(answer, Ok(response) if response.status == 404)
}

/// A live document the target must not hold yet: it is created straight away, so a
/// document created there meanwhile is refused instead of updated.
fn is_create_only(write: &Write) -> bool {
    !write.resource.deleted && write.precondition() == Precondition::Absent
}

/// The first request of a write: the create of a create-only write, else the update.
fn opening_request(target: &Endpoint, write: &Write) -> Request {
    if is_create_only(write) {
        create_request(target, write)
    } else {
        first_request(target, write)
    }
}

fn with_common_headers(mut request: Request, write: &Write) -> Request {
    request = request.header("accept", "application/json");
    match write.precondition() {
        Precondition::None => {}
        Precondition::Version(version) => {
            request = request.header("if-match", format!("W/\"{version}\""));
        }
        Precondition::Absent => request = request.header("if-none-match", "*"),
    }
    if let Some(origin) = &write.origin {
        request = request.header(ORIGIN_HEADER, origin.as_str());
    }
    request
}

/// The update (or delete) tried first.
pub fn first_request(target: &Endpoint, write: &Write) -> Request {
    let resource = &write.resource;
    let url = document_url(target, &resource.resource_type, &resource.id);
    let request = if resource.deleted {
        Request::delete(url)
    } else {
        Request::post(url)
            .header("content-type", "application/json")
            .body(resource.body.as_bytes())
    };
    with_common_headers(request, write)
}

/// The create sent when the update found nothing to update.
pub fn create_request(target: &Endpoint, write: &Write) -> Request {
    let resource = &write.resource;
    let request = Request::post(collection_url(target, &resource.resource_type))
        .header("content-type", "application/json")
        .body(resource.body.as_bytes());
    with_common_headers(request, write)
}

/// What the target's answer means for one write.
pub fn write_outcome(write: &Write, response: &Response, created: bool) -> Result<Stored, Failure> {
    let resource = &write.resource;
    let outcome = match (resource.deleted, response.status, created) {
        (false, 200..=299, true) => WriteOutcome::Created,
        (false, 201, false) => WriteOutcome::Created,
        (false, 200..=299, false) => WriteOutcome::Updated,
        (true, 200..=299, _) => WriteOutcome::Deleted,
        // Deleting what is already gone changes nothing: replays stay harmless.
        (true, 404 | 410, _) => WriteOutcome::Unchanged,
        _ => return Err(failure(response)),
    };
    Ok(Stored {
        resource_type: resource.resource_type.clone(),
        id: resource.id.clone(),
        version: response.etag_version(),
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_plugin_sdk::{Resource, Role};

    fn target() -> Endpoint {
        Endpoint {
            role: Role::Parent,
            base_url: "http://h/openmrs".into(),
        }
    }

    fn write(deleted: bool) -> Write {
        Write {
            resource: Resource {
                resource_type: "location".into(),
                id: "l1".into(),
                version: None,
                body: r#"{"uuid":"l1","name":"Ward"}"#.into(),
                deleted,
            },
            expected_version: Some("4".into()),
            origin: Some("clinic-1".into()),
        }
    }

    fn response(status: u16) -> Response {
        Response {
            status,
            headers: vec![],
            body: br#"{"error":{"message":"nope"}}"#.to_vec(),
        }
    }

    #[test]
    fn create_only_writes_go_to_the_collection_with_if_none_match() {
        let mut create = write(false);
        create.expected_version = Some(sync_plugin_sdk::CREATE_ONLY.into());
        let request = opening_request(&target(), &create);
        assert_eq!(request.url, "http://h/openmrs/ws/rest/v1/location");
        assert!(
            request
                .headers
                .contains(&("if-none-match".into(), "*".into()))
        );
        assert!(!request.headers.iter().any(|(name, _)| name == "if-match"));
        assert!(!needs_create(&create, &Ok(response(404))));
    }

    #[test]
    fn updates_post_to_the_document_and_creates_to_the_collection() {
        let update = first_request(&target(), &write(false));
        assert_eq!(update.url, "http://h/openmrs/ws/rest/v1/location/l1");
        assert_eq!(update.method, "POST");
        assert!(
            update
                .headers
                .contains(&(ORIGIN_HEADER.into(), "clinic-1".into()))
        );
        let create = create_request(&target(), &write(false));
        assert_eq!(create.url, "http://h/openmrs/ws/rest/v1/location");
        assert_eq!(
            create.body.as_deref(),
            Some(&br#"{"uuid":"l1","name":"Ward"}"#[..])
        );
        assert_eq!(first_request(&target(), &write(true)).method, "DELETE");
    }

    #[test]
    fn only_missing_updates_are_retried_as_creates() {
        assert!(needs_create(&write(false), &Ok(response(404))));
        assert!(!needs_create(&write(true), &Ok(response(404))));
        assert!(!needs_create(&write(false), &Ok(response(500))));
    }

    #[test]
    fn answers_become_outcomes() {
        let outcome =
            |deleted, status, created| write_outcome(&write(deleted), &response(status), created);
        assert_eq!(
            outcome(false, 201, true).unwrap().outcome,
            WriteOutcome::Created
        );
        assert_eq!(
            outcome(false, 200, false).unwrap().outcome,
            WriteOutcome::Updated
        );
        assert_eq!(
            outcome(true, 204, false).unwrap().outcome,
            WriteOutcome::Deleted
        );
        assert_eq!(
            outcome(true, 404, false).unwrap().outcome,
            WriteOutcome::Unchanged
        );
        let Failure::Invalid(detail) = outcome(false, 400, true).unwrap_err() else {
            panic!("a 400 must be invalid");
        };
        assert_eq!(detail.message, "nope");
    }
}

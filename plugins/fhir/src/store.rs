//! `store`: each write becomes a conditional `PUT` (or a `DELETE` for a
//! tombstone) on the target's FHIR base, all sent concurrently.
//!
//! Writes are separate requests rather than one transaction Bundle so that
//! one write's conflict or validation error fails only that write, and each
//! gets its own status, `ETag` and OperationOutcome.

use sync_plugin_sdk::http::{self, Request, Response};
use sync_plugin_sdk::{Endpoint, Failure, Precondition, Stored, Write, WriteOutcome};

use crate::location::{endpoint_base, instance_url};
use crate::outcome::{failure, response_version};
use crate::search::FHIR_JSON;

/// The header that tells the target which node a change came from.
pub const ORIGIN_HEADER: &str = "X-Sync-Origin";

/// Writes every resource to `target`, one result per write.
pub fn store(target: &Endpoint, writes: &[Write]) -> Vec<Result<Stored, Failure>> {
    let base = endpoint_base(target);
    let requests = writes.iter().map(|w| write_request(&base, w)).collect();
    writes
        .iter()
        .zip(http::send_all(requests))
        .map(|(write, answer)| {
            answer
                .map_err(Failure::from)
                .and_then(|response| write_outcome(write, &response))
        })
        .collect()
}

/// `PUT {base}/{type}/{id}` with the body, or `DELETE` for a tombstone.
pub fn write_request(base: &str, write: &Write) -> Request {
    let resource = &write.resource;
    let url = instance_url(base, &resource.resource_type, &resource.id);
    let mut request = if resource.deleted {
        Request::delete(url)
    } else {
        Request::put(url)
            .header("content-type", FHIR_JSON)
            .body(resource.body.as_bytes())
    };
    request = request.header("accept", FHIR_JSON);
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

/// What the target's answer means for one write.
pub fn write_outcome(write: &Write, response: &Response) -> Result<Stored, Failure> {
    let resource = &write.resource;
    let outcome = match (resource.deleted, response.status) {
        (false, 201) => WriteOutcome::Created,
        (false, 200) => WriteOutcome::Updated,
        (true, 200 | 202 | 204) => WriteOutcome::Deleted,
        // Deleting what is already gone changes nothing: replays stay harmless.
        (true, 404 | 410) => WriteOutcome::Unchanged,
        _ => return Err(failure(response)),
    };
    Ok(Stored {
        resource_type: resource.resource_type.clone(),
        id: resource.id.clone(),
        version: response_version(response),
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_plugin_sdk::Resource;

    fn write(deleted: bool, expected: Option<&str>, origin: Option<&str>) -> Write {
        Write {
            resource: Resource {
                resource_type: "Patient".into(),
                id: "p1".into(),
                version: None,
                body: if deleted {
                    String::new()
                } else {
                    r#"{"resourceType":"Patient","id":"p1"}"#.into()
                },
                deleted,
            },
            expected_version: expected.map(str::to_string),
            origin: origin.map(str::to_string),
        }
    }

    fn response(status: u16, etag: Option<&str>, body: &str) -> Response {
        Response {
            status,
            headers: etag
                .map(|e| ("ETag".to_string(), e.to_string()))
                .into_iter()
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn updates_are_conditional_puts_with_origin() {
        let request = write_request("http://h/R4", &write(false, Some("3"), Some("clinic-1")));
        assert_eq!(
            (request.method.as_str(), request.url.as_str()),
            ("PUT", "http://h/R4/Patient/p1")
        );
        assert!(
            request
                .headers
                .contains(&("if-match".into(), "W/\"3\"".into()))
        );
        assert!(
            request
                .headers
                .contains(&(ORIGIN_HEADER.into(), "clinic-1".into()))
        );
        assert!(request.body.is_some());
    }

    #[test]
    fn create_only_puts_send_if_none_match() {
        let request = write_request("http://h/R4", &write(false, Some(""), None));
        assert!(
            request
                .headers
                .contains(&("if-none-match".into(), "*".into()))
        );
        assert!(!request.headers.iter().any(|(name, _)| name == "if-match"));
    }

    #[test]
    fn tombstones_are_deletes() {
        let request = write_request("http://h/R4", &write(true, None, None));
        assert_eq!(request.method, "DELETE");
        assert!(request.body.is_none());
    }

    #[test]
    fn statuses_become_outcomes() {
        let created = write_outcome(
            &write(false, None, None),
            &response(201, Some("W/\"1\""), ""),
        )
        .unwrap();
        assert_eq!(
            (created.outcome, created.version.as_deref()),
            (WriteOutcome::Created, Some("1"))
        );
        let updated = write_outcome(
            &write(false, None, None),
            &response(200, None, r#"{"meta":{"versionId":"5"}}"#),
        )
        .unwrap();
        assert_eq!(
            (updated.outcome, updated.version.as_deref()),
            (WriteOutcome::Updated, Some("5"))
        );
        let gone = write_outcome(&write(true, None, None), &response(410, None, "")).unwrap();
        assert_eq!(gone.outcome, WriteOutcome::Unchanged);
        let conflict =
            write_outcome(&write(false, Some("1"), None), &response(412, None, "")).unwrap_err();
        assert!(matches!(conflict, Failure::Conflict(_)));
    }
}

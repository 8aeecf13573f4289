//! `fetch`: a batch of events becomes one `_id` search per FHIR base and
//! resource type; ids the search did not return are then read one by one
//! (concurrently) to tell "not found" from "deleted".

use std::collections::HashMap;

use sync_plugin_sdk::http::{self, HttpError, Request, Response};
use sync_plugin_sdk::{Endpoint, Event, Failure, Resource};

use crate::location::{event_base, instance_url};
use crate::outcome::{failure, response_version, version_from_body};
use crate::search::{FHIR_JSON, MAX_IDS_PER_SEARCH, parse_bundle, search_request};

/// (FHIR base, resource type, id): what one event asks for.
type Key = (String, String, String);

type Outcome = Result<Resource, Failure>;

/// One search: which ids of which group it asked for.
struct Search {
    base: String,
    resource_type: String,
    ids: Vec<String>,
}

/// Fetches the resources `events` point to, one result per event.
pub fn fetch(source: &Endpoint, events: &[Event]) -> Vec<Outcome> {
    let keys: Vec<Option<Key>> = events.iter().map(|e| key_of(source, e)).collect();
    let searches = plan_searches(&keys);
    let requests = searches
        .iter()
        .map(|s| {
            let ids: Vec<&str> = s.ids.iter().map(String::as_str).collect();
            search_request(&s.base, &s.resource_type, &ids)
        })
        .collect();
    let mut results: HashMap<Key, Outcome> = HashMap::new();
    let mut to_read: Vec<Key> = Vec::new();
    for (search, answer) in searches.iter().zip(http::send_all(requests)) {
        for (id, settled) in search.ids.iter().zip(settle_search(search, answer)) {
            let key = (
                search.base.clone(),
                search.resource_type.clone(),
                id.clone(),
            );
            match settled {
                Settled::Done(outcome) => {
                    results.insert(key, outcome);
                }
                Settled::Read => to_read.push(key),
            }
        }
    }
    read_individually(to_read, &mut results);
    keys.iter()
        .zip(events)
        .map(|(key, event)| match key {
            Some(key) => results.get(key).cloned().unwrap_or_else(|| {
                Err(Failure::invalid(format!(
                    "no answer for {} {}",
                    key.1, key.2
                )))
            }),
            None => Err(Failure::invalid(format!(
                "event {} names no resource id",
                event.id
            ))),
        })
        .collect()
}

fn key_of(source: &Endpoint, event: &Event) -> Option<Key> {
    if event.resource_id.is_empty() || event.resource_type.is_empty() {
        return None;
    }
    let base = event_base(source, event);
    Some((base, event.resource_type.clone(), event.resource_id.clone()))
}

/// Groups distinct ids by (base, type), in first-seen order, in chunks.
fn plan_searches(keys: &[Option<Key>]) -> Vec<Search> {
    let mut groups: Vec<(&str, &str, Vec<String>)> = Vec::new();
    for (base, resource_type, id) in keys.iter().flatten() {
        match groups
            .iter_mut()
            .find(|(b, t, _)| b == base && t == resource_type)
        {
            Some((_, _, ids)) if ids.contains(id) => {}
            Some((_, _, ids)) => ids.push(id.clone()),
            None => groups.push((base, resource_type, vec![id.clone()])),
        }
    }
    let mut searches = Vec::new();
    for (base, resource_type, ids) in groups {
        for chunk in ids.chunks(MAX_IDS_PER_SEARCH) {
            searches.push(Search {
                base: base.to_string(),
                resource_type: resource_type.to_string(),
                ids: chunk.to_vec(),
            });
        }
    }
    searches
}

/// What a search answer means for one id it asked for.
#[derive(Debug, Clone)]
enum Settled {
    /// The answer decides the id.
    Done(Outcome),
    /// The id must be read on its own.
    Read,
}

/// Decides every id of one search from its answer (pure, no I/O).
fn settle_search(search: &Search, answer: Result<Response, HttpError>) -> Vec<Settled> {
    let all =
        |settled: Settled| -> Vec<Settled> { search.ids.iter().map(|_| settled.clone()).collect() };
    let response = match answer {
        Ok(response) => response,
        Err(error) => return all(Settled::Done(Err(Failure::from(error)))),
    };
    if !response.is_success() {
        // A server that cannot search by _id may still read; auth and server
        // errors would fail the reads the same way, so they settle the batch.
        let fatal = matches!(response.status, 401 | 403) || response.status >= 500;
        return all(if fatal {
            Settled::Done(Err(failure(&response)))
        } else {
            Settled::Read
        });
    }
    let text = String::from_utf8_lossy(&response.body);
    let mut found = match parse_bundle(&text, &search.resource_type) {
        Ok(found) => found,
        Err(message) => return all(Settled::Done(Err(Failure::invalid(message)))),
    };
    search
        .ids
        .iter()
        .map(|id| match found.remove(id) {
            Some(hit) => Settled::Done(Ok(Resource {
                resource_type: search.resource_type.clone(),
                id: id.clone(),
                version: version_from_body(&hit.body),
                body: hit.body,
                deleted: false,
            })),
            None => Settled::Read,
        })
        .collect()
}

fn read_individually(keys: Vec<Key>, results: &mut HashMap<Key, Outcome>) {
    let requests: Vec<Request> = keys
        .iter()
        .map(|(base, resource_type, id)| {
            Request::get(instance_url(base, resource_type, id)).header("accept", FHIR_JSON)
        })
        .collect();
    for (key, answer) in keys.into_iter().zip(http::send_all(requests)) {
        let outcome = answer
            .map_err(Failure::from)
            .and_then(|response| read_outcome(&key, response));
        results.insert(key, outcome);
    }
}

/// 200 is the resource, 410 a tombstone, anything else a failure.
fn read_outcome(key: &Key, response: Response) -> Outcome {
    let (_, resource_type, id) = key;
    match response.status {
        200 => {
            let version = response_version(&response);
            let body = String::from_utf8(response.body).map_err(|_| {
                Failure::invalid(format!("{resource_type} {id}: the body is not UTF-8"))
            })?;
            Ok(Resource {
                resource_type: resource_type.clone(),
                id: id.clone(),
                version,
                body,
                deleted: false,
            })
        }
        410 => Ok(Resource {
            resource_type: resource_type.clone(),
            id: id.clone(),
            version: response
                .header("etag")
                .and_then(crate::outcome::version_from_etag),
            body: String::new(),
            deleted: true,
        }),
        _ => Err(failure(&response)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(base: &str, ty: &str, id: &str) -> Option<Key> {
        Some((base.into(), ty.into(), id.into()))
    }

    #[test]
    fn one_search_per_base_and_type_with_distinct_ids() {
        let keys = vec![
            key("b", "Patient", "1"),
            key("b", "Observation", "9"),
            key("b", "Patient", "2"),
            key("b", "Patient", "1"),
            None,
        ];
        let plan = plan_searches(&keys);
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].ids, vec!["1", "2"]);
        assert_eq!(plan[1].resource_type, "Observation");
    }

    fn search(ids: &[&str]) -> Search {
        Search {
            base: "http://h/R4".into(),
            resource_type: "Patient".into(),
            ids: ids.iter().map(|id| id.to_string()).collect(),
        }
    }

    fn answer(status: u16, body: &str) -> Result<Response, HttpError> {
        Ok(Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn found_ids_are_done_and_missing_ones_are_read() {
        let bundle = r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"b","meta":{"versionId":"2"}}}]}"#;
        let settled = settle_search(&search(&["a", "b"]), answer(200, bundle));
        assert!(matches!(settled[0], Settled::Read));
        let Settled::Done(Ok(found)) = &settled[1] else {
            panic!("b was in the bundle")
        };
        assert_eq!(found.version.as_deref(), Some("2"));
    }

    #[test]
    fn failed_searches_settle_or_fall_back_by_status() {
        let settled = settle_search(&search(&["a", "b"]), answer(503, ""));
        assert!(
            settled
                .iter()
                .all(|s| matches!(s, Settled::Done(Err(Failure::Transient(_)))))
        );
        let settled = settle_search(&search(&["a"]), answer(400, "unsupported search"));
        assert!(matches!(settled[0], Settled::Read));
        let settled = settle_search(&search(&["a"]), Err(HttpError::Timeout("slow".into())));
        assert!(matches!(
            settled[0],
            Settled::Done(Err(Failure::Transient(_)))
        ));
        let settled = settle_search(&search(&["a"]), answer(200, "<html/>"));
        assert!(matches!(
            settled[0],
            Settled::Done(Err(Failure::Invalid(_)))
        ));
    }

    #[test]
    fn large_groups_are_split() {
        let keys: Vec<_> = (0..250)
            .map(|i| key("b", "Patient", &i.to_string()))
            .collect();
        let sizes: Vec<usize> = plan_searches(&keys).iter().map(|s| s.ids.len()).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
    }
}

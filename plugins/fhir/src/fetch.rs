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
        settle_search(search, answer, &mut results, &mut to_read);
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

fn settle_search(
    search: &Search,
    answer: Result<Response, HttpError>,
    results: &mut HashMap<Key, Outcome>,
    to_read: &mut Vec<Key>,
) {
    let key = |id: &String| {
        (
            search.base.clone(),
            search.resource_type.clone(),
            id.clone(),
        )
    };
    let response = match answer {
        Ok(response) => response,
        Err(error) => {
            let failure = Failure::from(error);
            search.ids.iter().for_each(|id| {
                results.insert(key(id), Err(failure.clone()));
            });
            return;
        }
    };
    if !response.is_success() {
        // A server that cannot search by _id may still read; auth and server
        // errors would fail the reads the same way, so they settle the batch.
        let fatal = matches!(response.status, 401 | 403) || response.status >= 500;
        for id in &search.ids {
            if fatal {
                results.insert(key(id), Err(failure(&response)));
            } else {
                to_read.push(key(id));
            }
        }
        return;
    }
    let text = String::from_utf8_lossy(&response.body);
    match parse_bundle(&text, &search.resource_type) {
        Ok(mut found) => {
            for id in &search.ids {
                match found.remove(id) {
                    Some(hit) => {
                        let resource = Resource {
                            resource_type: search.resource_type.clone(),
                            id: id.clone(),
                            version: version_from_body(&hit.body),
                            body: hit.body,
                            deleted: false,
                        };
                        results.insert(key(id), Ok(resource));
                    }
                    None => to_read.push(key(id)),
                }
            }
        }
        Err(message) => search.ids.iter().for_each(|id| {
            results.insert(key(id), Err(Failure::invalid(message.clone())));
        }),
    }
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

    #[test]
    fn large_groups_are_split() {
        let keys: Vec<_> = (0..250)
            .map(|i| key("b", "Patient", &i.to_string()))
            .collect();
        let sizes: Vec<usize> = plan_searches(&keys).iter().map(|s| s.ids.len()).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
    }
}

//! Batched reads: one `_id` search per resource type, and the searchset
//! Bundle it returns, with each resource kept byte for byte.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use sync_plugin_sdk::http::Request;

/// Most ids in one search URL; larger groups are split so URLs stay short.
pub const MAX_IDS_PER_SEARCH: usize = 100;

/// The FHIR media type, for `Accept` and `Content-Type`.
pub const FHIR_JSON: &str = "application/fhir+json";

/// `GET {base}/{type}?_id=a,b,c&_count=N`.
pub fn search_request(base: &str, resource_type: &str, ids: &[&str]) -> Request {
    let url = format!(
        "{base}/{resource_type}?_id={}&_count={}",
        ids.join(","),
        ids.len()
    );
    Request::get(url).header("accept", FHIR_JSON)
}

#[derive(Deserialize)]
struct Bundle<'a> {
    #[serde(rename = "resourceType")]
    resource_type: String,
    #[serde(default, borrow)]
    entry: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    resource: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "resourceType")]
    resource_type: String,
    id: Option<String>,
}

/// One resource found by a search: its exact JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The resource's JSON exactly as it appears in the Bundle.
    pub body: String,
}

/// The resources of `resource_type` in a searchset Bundle, by id. Entries
/// of other types (included resources, OperationOutcomes) are skipped.
pub fn parse_bundle(text: &str, resource_type: &str) -> Result<HashMap<String, Found>, String> {
    let bundle: Bundle<'_> = serde_json::from_str(text)
        .map_err(|e| format!("the search answer is not a Bundle: {e}"))?;
    if bundle.resource_type != "Bundle" {
        return Err(format!(
            "the search answered a {} instead of a Bundle",
            bundle.resource_type
        ));
    }
    let mut found = HashMap::new();
    for raw in bundle.entry.into_iter().filter_map(|e| e.resource) {
        let Ok(identity) = serde_json::from_str::<Identity>(raw.get()) else {
            continue;
        };
        if let (true, Some(id)) = (identity.resource_type == resource_type, identity.id) {
            found.insert(
                id,
                Found {
                    body: raw.get().to_string(),
                },
            );
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_urls_list_ids_and_count() {
        let request = search_request("http://h/ws/fhir2/R4", "Patient", &["a", "b"]);
        assert_eq!(request.url, "http://h/ws/fhir2/R4/Patient?_id=a,b&_count=2");
        assert_eq!(request.method, "GET");
    }

    #[test]
    fn bundle_entries_keep_their_exact_text() {
        let text = r#"{"resourceType":"Bundle","type":"searchset","entry":[
            {"fullUrl":"x","resource":{"resourceType":"Observation","id":"o1","valueQuantity":{"value":72.50},"note":"caf\u00e9 ☕"}},
            {"resource":{"resourceType":"Patient","id":"inc"},"search":{"mode":"include"}},
            {"resource":{"resourceType":"OperationOutcome","issue":[]}}]}"#;
        let found = parse_bundle(text, "Observation").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found["o1"].body,
            r#"{"resourceType":"Observation","id":"o1","valueQuantity":{"value":72.50},"note":"caf\u00e9 ☕"}"#
        );
    }

    #[test]
    fn non_bundles_are_reported() {
        assert!(parse_bundle(r#"{"resourceType":"Patient"}"#, "Patient").is_err());
        assert!(parse_bundle("<html>", "Patient").is_err());
        assert!(
            parse_bundle(r#"{"resourceType":"Bundle"}"#, "Patient")
                .unwrap()
                .is_empty()
        );
    }
}

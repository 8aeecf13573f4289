//! Where a REST document lives: `{base}/ws/rest/v1/{resource}/{uuid}`, or
//! the event's `rest` link (JSON-links form or a bare URL with the web
//! application's context path), resolved against the endpoint.

use sync_plugin_sdk::links::{resolve, split_origin};
use sync_plugin_sdk::{Endpoint, Event};

/// The REST API path OpenMRS serves under its base URL.
pub const REST_PATH: &str = "/ws/rest/v1";

/// The REST API root of an endpoint: the endpoint itself when it already
/// ends in `/ws/rest/v1`, otherwise that path under it.
pub fn api_root(endpoint: &Endpoint) -> String {
    let base = endpoint.base_url.trim_end_matches('/');
    let (_, path) = split_origin(base);
    if path.ends_with(REST_PATH) {
        base.to_string()
    } else {
        format!("{base}{REST_PATH}")
    }
}

/// `{root}/{resource}`: where documents of a kind are created.
pub fn collection_url(endpoint: &Endpoint, resource: &str) -> String {
    format!("{}/{resource}", api_root(endpoint))
}

/// `{root}/{resource}/{uuid}`: where one document is updated or deleted.
pub fn document_url(endpoint: &Endpoint, resource: &str, uuid: &str) -> String {
    format!("{}/{resource}/{uuid}", api_root(endpoint))
}

/// The URL to read an event's document from, always asking for `v=full`.
pub fn fetch_url(source: &Endpoint, event: &Event) -> String {
    let url = match event.link("rest") {
        Some(href) if !href.trim().is_empty() => resolve(&source.base_url, href.trim()),
        _ => document_url(source, &event.resource_type, &event.resource_id),
    };
    with_full_representation(&url)
}

/// Adds `v=full` unless the URL already chooses a representation.
fn with_full_representation(url: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    if query.split('&').any(|pair| pair.starts_with("v=")) {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&v=full")
    } else {
        format!("{url}?v=full")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_plugin_sdk::{Action, Link, Role};

    fn endpoint(base: &str) -> Endpoint {
        Endpoint {
            role: Role::Parent,
            base_url: base.into(),
        }
    }

    fn event(href: Option<&str>) -> Event {
        Event {
            id: "e1".into(),
            sequence: None,
            category: "patient".into(),
            action: Action::Created,
            resource_type: "patient".into(),
            resource_id: "u1".into(),
            links: href
                .map(|h| Link {
                    client: "rest".into(),
                    href: h.into(),
                })
                .into_iter()
                .collect(),
            tags: vec![],
            origin: None,
            version: None,
            content_hash: None,
            raw: String::new(),
        }
    }

    #[test]
    fn json_links_and_bare_urls_resolve_without_doubling_the_context() {
        let source = endpoint("http://h:8/openmrs");
        assert_eq!(
            fetch_url(&source, &event(Some("/ws/rest/v1/patient/u1?v=full"))),
            "http://h:8/openmrs/ws/rest/v1/patient/u1?v=full"
        );
        assert_eq!(
            fetch_url(&source, &event(Some("/openmrs/ws/rest/v1/patient/u1"))),
            "http://h:8/openmrs/ws/rest/v1/patient/u1?v=full"
        );
        assert_eq!(
            fetch_url(
                &source,
                &event(Some("/openmrs/ws/rest/v1/patient/u1?v=default"))
            ),
            "http://h:8/openmrs/ws/rest/v1/patient/u1?v=default"
        );
    }

    #[test]
    fn without_a_link_the_document_url_is_built() {
        assert_eq!(
            fetch_url(&endpoint("http://h"), &event(None)),
            "http://h/ws/rest/v1/patient/u1?v=full"
        );
        assert_eq!(
            collection_url(&endpoint("http://h/ws/rest/v1/"), "location"),
            "http://h/ws/rest/v1/location"
        );
    }
}

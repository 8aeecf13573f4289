//! Where a resource lives: the FHIR base URL of an endpoint or an event link.

use sync_plugin_sdk::links::{resolve, split_origin};
use sync_plugin_sdk::{Endpoint, Event};

/// The FHIR base path OpenMRS serves under its base URL.
pub const DEFAULT_BASE_PATH: &str = "/ws/fhir2/R4";

/// The FHIR base of an endpoint with no link to go by: the endpoint itself
/// when its path already looks like a FHIR base (`.../R4`, `.../fhir`),
/// otherwise the OpenMRS path under it.
pub fn endpoint_base(endpoint: &Endpoint) -> String {
    let base = endpoint.base_url.trim_end_matches('/');
    let (_, path) = split_origin(base);
    let last = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if last == "r4" || last == "fhir" {
        base.to_string()
    } else {
        format!("{base}{DEFAULT_BASE_PATH}")
    }
}

/// The FHIR base an event's `fhir` link points into: the link resolved
/// against the endpoint, cut before `/{type}/{id}`. Falls back to
/// [`endpoint_base`] when there is no usable link.
pub fn event_base(source: &Endpoint, event: &Event) -> String {
    event
        .link("fhir")
        .and_then(|href| base_of_link(&resolve(&source.base_url, href), &event.resource_type))
        .unwrap_or_else(|| endpoint_base(source))
}

fn base_of_link(url: &str, resource_type: &str) -> Option<String> {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let marker = format!("/{resource_type}/");
    let cut = without_query.rfind(&marker)?;
    Some(without_query[..cut].to_string())
}

/// `{base}/{type}/{id}`.
pub fn instance_url(base: &str, resource_type: &str, id: &str) -> String {
    format!("{base}/{resource_type}/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_plugin_sdk::{Action, Link, Role};

    fn endpoint(base: &str) -> Endpoint {
        Endpoint {
            role: Role::Parent,
            base_url: base.to_string(),
        }
    }

    fn event(href: Option<&str>) -> Event {
        Event {
            id: "e".into(),
            sequence: None,
            category: "patient".into(),
            action: Action::Updated,
            resource_type: "Patient".into(),
            resource_id: "p1".into(),
            links: href
                .map(|h| Link {
                    client: "fhir".into(),
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
    fn links_give_the_base_path() {
        let source = endpoint("http://h:1/openmrs");
        assert_eq!(
            event_base(&source, &event(Some("/ws/fhir2/R4/Patient/p1"))),
            "http://h:1/openmrs/ws/fhir2/R4"
        );
        assert_eq!(
            event_base(&source, &event(Some("http://x/fhir/Patient/p1/_history/2"))),
            "http://x/fhir"
        );
    }

    #[test]
    fn without_a_link_the_default_path_is_used() {
        assert_eq!(
            event_base(&endpoint("http://h:1"), &event(None)),
            "http://h:1/ws/fhir2/R4"
        );
        assert_eq!(
            endpoint_base(&endpoint("http://hapi/fhir/")),
            "http://hapi/fhir"
        );
    }
}

//! Working out which resource an entry points to, and resolving entry links against a base URL.

use crate::model::{ContentLink, Extensions};

/// The path segment after which OpenMRS REST resource paths start.
const REST_PREFIX: &str = "/ws/rest/v1/";

/// The resource type and id of an entry: each from our extension when it is
/// there, otherwise from the `fhir` link, then the `rest` link, then any
/// other link, in that order.
pub(crate) fn derive_resource(ext: &Extensions, links: &[ContentLink]) -> Option<(String, String)> {
    if let (Some(kind), Some(id)) = (&ext.resource_type, &ext.resource_id) {
        return Some((kind.clone(), id.clone()));
    }
    let (kind, id) =
        links_by_preference(links).find_map(|link| resource_from_href(&link.client, &link.href))?;
    Some((
        ext.resource_type.clone().unwrap_or(kind),
        ext.resource_id.clone().unwrap_or(id),
    ))
}

fn links_by_preference(links: &[ContentLink]) -> impl Iterator<Item = &ContentLink> {
    let named = |client: &'static str| links.iter().filter(move |link| link.client == client);
    let others = links
        .iter()
        .filter(|link| link.client != "fhir" && link.client != "rest");
    named("fhir").chain(named("rest")).chain(others)
}

/// The resource type and id a link points to.
///
/// * FHIR: `…/Patient/<id>`, also `…/Patient/<id>/_history/<version>`.
/// * REST: `…/ws/rest/v1/patient/<uuid>?v=full` gives (`patient`, uuid); a
///   sub-resource `…/person/<parent>/name/<uuid>` gives (`name`, uuid).
/// * Anything else: the last two path segments.
///
/// The query and fragment are ignored; a context path (`/openmrs/…`) or an
/// absolute URL is fine.
pub fn resource_from_href(client: &str, href: &str) -> Option<(String, String)> {
    let path = url_path(href);
    let path = if client == "rest" {
        path.find(REST_PREFIX)
            .map_or(path, |at| &path[at + REST_PREFIX.len()..])
    } else {
        path
    };
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() >= 4 && segments[segments.len() - 2] == "_history" {
        segments.truncate(segments.len() - 2);
    }
    match segments.as_slice() {
        [.., kind, id] => Some(((*kind).to_owned(), (*id).to_owned())),
        _ => None,
    }
}

/// The path of a relative or absolute URL, without query or fragment.
fn url_path(href: &str) -> &str {
    let without_query = href.split(['?', '#']).next().unwrap_or_default();
    match without_query.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |at| &rest[at..]),
        None => without_query,
    }
}

/// Resolves an entry link against the publishing node's base URL.
///
/// Absolute links are returned unchanged. OpenMRS publishers write links
/// either relative to the web application (`/ws/rest/v1/…`) or, in older
/// versions, with the context path included (`/openmrs/ws/rest/v1/…`); when
/// the base URL already ends in that context path it is not repeated.
///
/// ```
/// use sync_host_feed::resolve_href;
/// let base = "http://example.com/openmrs";
/// assert_eq!(resolve_href(base, "/ws/fhir2/R4/Patient/1"), "http://example.com/openmrs/ws/fhir2/R4/Patient/1");
/// assert_eq!(resolve_href(base, "/openmrs/ws/rest/v1/patient/1?v=full"), "http://example.com/openmrs/ws/rest/v1/patient/1?v=full");
/// ```
pub fn resolve_href(base: &str, href: &str) -> String {
    if href.contains("://") {
        return href.to_owned();
    }
    let base = base.trim_end_matches('/');
    let (origin, context_path) = split_origin(base);
    let href_path = href.trim_start_matches('/');
    let context = context_path.trim_matches('/');
    let repeats_context = !context.is_empty()
        && href_path
            .strip_prefix(context)
            .is_some_and(|rest| rest.starts_with('/'));
    if repeats_context {
        format!("{origin}/{href_path}")
    } else {
        format!("{base}/{href_path}")
    }
}

/// `http://host:port` and `/context/path` of a base URL.
fn split_origin(base: &str) -> (&str, &str) {
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    match base[authority_start..].find('/') {
        Some(at) => base.split_at(authority_start + at),
        None => (base, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(kind: &str, id: &str) -> Option<(String, String)> {
        Some((kind.to_owned(), id.to_owned()))
    }

    #[test]
    fn fhir_links() {
        assert_eq!(
            resource_from_href("fhir", "/ws/fhir2/R4/Patient/a65f"),
            pair("Patient", "a65f")
        );
        assert_eq!(
            resource_from_href("fhir", "http://x:8080/openmrs/ws/fhir/Obs/9/_history/3"),
            pair("Obs", "9")
        );
    }

    #[test]
    fn rest_links() {
        assert_eq!(
            resource_from_href("rest", "/ws/rest/v1/patient/a65f?v=full"),
            pair("patient", "a65f")
        );
        assert_eq!(
            resource_from_href("rest", "/openmrs/ws/rest/v1/person/p1/name/n1?v=full"),
            pair("name", "n1")
        );
        assert_eq!(resource_from_href("rest", "/ws/rest/v1/patient"), None);
        assert_eq!(resource_from_href("rest", ""), None);
    }

    #[test]
    fn extension_wins_then_fhir_then_rest() {
        let links = vec![
            ContentLink::new("rest", "/ws/rest/v1/patient/r1?v=full"),
            ContentLink::new("fhir", "/ws/fhir2/R4/Patient/f1"),
        ];
        let none = Extensions::default();
        assert_eq!(derive_resource(&none, &links), pair("Patient", "f1"));
        assert_eq!(derive_resource(&none, &links[..1]), pair("patient", "r1"));
        let id_only = Extensions {
            resource_id: Some("x".into()),
            ..Extensions::default()
        };
        assert_eq!(derive_resource(&id_only, &links), pair("Patient", "x"));
        let both = Extensions {
            resource_type: Some("Encounter".into()),
            resource_id: Some("e".into()),
            ..Extensions::default()
        };
        assert_eq!(derive_resource(&both, &[]), pair("Encounter", "e"));
        assert_eq!(derive_resource(&none, &[]), None);
    }

    #[test]
    fn resolving_links() {
        let base = "http://parent.example:8080/openmrs/";
        assert_eq!(
            resolve_href(base, "/ws/rest/v1/patient/1?v=full"),
            "http://parent.example:8080/openmrs/ws/rest/v1/patient/1?v=full"
        );
        assert_eq!(
            resolve_href(base, "/openmrs/ws/rest/v1/patient/1"),
            "http://parent.example:8080/openmrs/ws/rest/v1/patient/1"
        );
        assert_eq!(
            resolve_href("http://h", "/openmrsx/ws"),
            "http://h/openmrsx/ws"
        );
        assert_eq!(resolve_href(base, "https://other/x"), "https://other/x");
    }
}

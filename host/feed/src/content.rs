//! The entry content: a JSON object of links keyed by client, or (older publishers) a bare URL.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::ContentLink;

/// The JSON text written inside an entry's content, keys in link order.
pub(crate) fn links_to_json(links: &[ContentLink]) -> String {
    // Serialising strings and a map of strings into memory cannot fail.
    serde_json::to_string(&LinksObject(links)).unwrap_or_else(|_| String::from("{}"))
}

/// Wraps text in CDATA sections. CDATA cannot contain `]]>`, so each
/// occurrence is split across two sections (`]]` ends one, `>` starts the
/// next); every XML reader joins them back.
pub(crate) fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

/// Why a content text could not be read as links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContentProblem {
    /// Only whitespace.
    Empty,
    /// Looks like JSON but is not a JSON object of string links.
    BadJson(String),
    /// Neither JSON nor a URL.
    NotAUrl,
}

/// Reads entry content as links: a JSON object (`{"rest": "...", "fhir": "..."}`,
/// `null` values skipped) or a bare URL, which older OpenMRS publishers write
/// and which is always a REST link.
pub(crate) fn parse_content(text: &str) -> Result<Vec<ContentLink>, ContentProblem> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ContentProblem::Empty);
    }
    if trimmed.starts_with('{') {
        return serde_json::from_str::<OrderedLinks>(trimmed)
            .map(|links| links.0)
            .map_err(|err| ContentProblem::BadJson(err.to_string()));
    }
    if looks_like_url(trimmed) {
        return Ok(vec![ContentLink::new("rest", trimmed)]);
    }
    Err(ContentProblem::NotAUrl)
}

/// A path (`/openmrs/ws/rest/v1/...`) or an absolute URL with no whitespace.
fn looks_like_url(text: &str) -> bool {
    let absolute = text
        .split_once("://")
        .is_some_and(|(scheme, _)| !scheme.is_empty() && scheme.chars().all(is_scheme_char));
    (text.starts_with('/') || absolute) && !text.chars().any(char::is_whitespace)
}

fn is_scheme_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
}

/// Links written as a JSON object, keys in link order.
struct LinksObject<'a>(&'a [ContentLink]);

/// Links read from a JSON object, in key order. A map type would sort them
/// unless serde_json's `preserve_order` feature happens to be on.
struct OrderedLinks(Vec<ContentLink>);

impl Serialize for LinksObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for link in self.0 {
            map.serialize_entry(&link.client, &link.href)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for OrderedLinks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(LinksVisitor)
    }
}

struct LinksVisitor;

impl<'de> Visitor<'de> for LinksVisitor {
    type Value = OrderedLinks;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of link strings keyed by client name")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut links = Vec::new();
        while let Some((client, href)) = map.next_entry::<String, Option<String>>()? {
            // OpenMRS writes null for a client with no link template.
            if let Some(href) = href {
                links.push(ContentLink { client, href });
            }
        }
        Ok(OrderedLinks(links))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_link_order_and_shape() {
        let links = vec![
            ContentLink::new("rest", "/ws/rest/v1/patient/abc?v=full"),
            ContentLink::new("fhir", "/ws/fhir2/R4/Patient/abc"),
        ];
        let json = links_to_json(&links);
        assert_eq!(
            json,
            r#"{"rest":"/ws/rest/v1/patient/abc?v=full","fhir":"/ws/fhir2/R4/Patient/abc"}"#
        );
        assert_eq!(parse_content(&json), Ok(links));
    }

    #[test]
    fn cdata_splits_the_terminator() {
        assert_eq!(cdata("a]]>b"), "<![CDATA[a]]]]><![CDATA[>b]]>");
        assert_eq!(cdata("plain"), "<![CDATA[plain]]>");
    }

    #[test]
    fn bare_url_is_a_rest_link() {
        let links = parse_content("  /openmrs/ws/rest/v1/patient/e8aa?v=full \n").unwrap();
        assert_eq!(
            links,
            vec![ContentLink::new(
                "rest",
                "/openmrs/ws/rest/v1/patient/e8aa?v=full"
            )]
        );
        let absolute = parse_content("https://x.example/ws/rest/v1/obs/1").unwrap();
        assert_eq!(absolute[0].href, "https://x.example/ws/rest/v1/obs/1");
    }

    #[test]
    fn null_links_are_skipped() {
        let links = parse_content(r#"{"rest":"/ws/rest/v1/obs/1","fhir":null}"#).unwrap();
        assert_eq!(links, vec![ContentLink::new("rest", "/ws/rest/v1/obs/1")]);
    }

    #[test]
    fn garbage_is_reported() {
        assert_eq!(parse_content("   "), Err(ContentProblem::Empty));
        assert_eq!(parse_content("hello world"), Err(ContentProblem::NotAUrl));
        assert!(matches!(
            parse_content(r#"{"rest": 42}"#),
            Err(ContentProblem::BadJson(_))
        ));
        assert!(matches!(
            parse_content("{not json"),
            Err(ContentProblem::BadJson(_))
        ));
    }
}

//! Reading a feed page: the page must be usable as a whole, each entry is judged on its own.

use atom_syndication::{Entry, Feed, Link};

use crate::SYNC_HOST_NS;
use crate::dates::from_atom;
use crate::error::{EntryError, FeedError};
use crate::interpret::{PageContext, interpret_entry, trim_xml_space};
use crate::model::{PageLinks, ParsedEntry, ParsedPage};
use crate::split::{MAX_ELEMENT_DEPTH, entry_id_of, split_page};

/// The largest entry read. An entry names one change in a few hundred bytes; one far larger
/// would carry its bulk into every record the sync engine keeps about it.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;

/// The longest entry id accepted. Ids are IRIs of a few dozen characters.
pub const MAX_ID_BYTES: usize = 1024;

/// Reads a feed page published by sync-host or by an OpenMRS atomfeed module.
///
/// Fails with [`FeedError`] only when the page as a whole is unusable (not
/// XML, not an Atom feed, an unreadable feed header). Every entry comes back
/// with its text as published and either its reading or an [`EntryError`]
/// saying what is wrong with it, so a reader can record the failure and go on.
pub fn parse_page(xml: &str) -> Result<ParsedPage, FeedError> {
    let split = split_page(xml)?;
    let header = Feed::read_from(split.header.as_bytes())
        .map_err(|err| FeedError::Header(err.to_string()))?;
    let updated = from_atom(header.updated())
        .ok_or_else(|| FeedError::Header(format!("date {} is out of range", header.updated())))?;
    let links = page_links(header.links());
    let context = PageContext {
        our_prefixes: prefixes_for(header.namespaces().iter(), SYNC_HOST_NS),
        feed_category: feed_category(&links),
    };
    let entries = split
        .entries
        .into_iter()
        .zip(split.too_deep)
        .map(|(raw, too_deep)| {
            if too_deep {
                let limit = MAX_ELEMENT_DEPTH;
                unreadable(raw, EntryError::TooDeep { limit })
            } else if raw.len() > MAX_ENTRY_BYTES {
                let limit = MAX_ENTRY_BYTES;
                unreadable(raw, EntryError::TooLarge { limit })
            } else {
                parse_entry(raw, &context)
            }
        })
        .collect();
    Ok(ParsedPage {
        id: trim_xml_space(header.id()).to_owned(),
        title: header.title().value.clone(),
        updated,
        links,
        entries,
    })
}

/// An entry that cannot be read, named by its `<id>` when that much can be found.
fn unreadable(raw: &str, error: EntryError) -> ParsedEntry {
    ParsedEntry {
        raw: raw.to_owned(),
        id: entry_id_of(raw)
            .map(|id| trim_xml_space(&id).to_owned())
            .filter(|id| usable_id(id)),
        result: Err(error),
    }
}

/// An id the engine can key records by: present and of a sane length.
fn usable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_BYTES
}

fn parse_entry(raw: &str, page: &PageContext) -> ParsedEntry {
    let entry = match Entry::read_from(raw.as_bytes()) {
        Ok(entry) => entry,
        Err(err) => return unreadable(raw, EntryError::Malformed(err.to_string())),
    };
    let mut context = page.clone();
    context
        .our_prefixes
        .extend(prefixes_for(entry.namespaces.iter(), SYNC_HOST_NS));
    let id = Some(trim_xml_space(&entry.id).to_owned()).filter(|id| usable_id(id));
    ParsedEntry {
        raw: raw.to_owned(),
        id,
        result: interpret_entry(&entry, &context),
    }
}

/// The prefixes a namespace declaration list binds to `namespace`.
fn prefixes_for<'a>(
    declarations: impl Iterator<Item = (&'a String, &'a String)>,
    namespace: &str,
) -> Vec<String> {
    declarations
        .filter(|(_, uri)| uri.as_str() == namespace)
        .map(|(prefix, _)| prefix.clone())
        .collect()
}

/// The category in an OpenMRS feed URL: `…/ws/atomfeed/{category}/{page}`.
fn feed_category(links: &PageLinks) -> Option<String> {
    const MARK: &str = "/atomfeed/";
    [&links.via, &links.self_]
        .into_iter()
        .flatten()
        .find_map(|url| {
            let rest = &url[url.rfind(MARK)? + MARK.len()..];
            let category = rest.split(['/', '?', '#']).next()?;
            (!category.is_empty()).then(|| category.to_owned())
        })
}

/// The paging links; when a relation appears twice the first one counts.
fn page_links(links: &[Link]) -> PageLinks {
    let find = |rel: &str| {
        links
            .iter()
            .find(|link| link.rel == rel)
            .map(|link| link.href.clone())
    };
    PageLinks {
        self_: find("self"),
        via: find("via"),
        first: find("first"),
        prev_archive: find("prev-archive"),
        next_archive: find("next-archive"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:x="https://sync-host.dev/ns/feed/1">
  <id> page-1 </id><title>T</title><updated>2020-01-01T00:00:00Z</updated>
  <link rel="self" href="http://h/ws/atomfeed/patient/recent"/>
  <link rel="via" href="http://h/ws/atomfeed/patient/2"/>
  <link rel="next-archive" href="http://h/ws/atomfeed/patient/3"/>
  <entry><id>e1</id><updated>not a date</updated></entry>
  <entry><id>e2</id><category term="patient"/><x:resourceId>r2</x:resourceId><x:resourceType>Patient</x:resourceType>
    <content type="application/vnd.atomfeed+xml"><![CDATA[{"fhir":"/ws/fhir2/R4/Patient/other"}]]></content></entry>
</feed>"#;

    #[test]
    fn header_and_links_are_read() {
        let page = parse_page(PAGE).unwrap();
        assert_eq!(page.id, "page-1");
        assert_eq!(page.title, "T");
        assert_eq!(
            page.links.via.as_deref(),
            Some("http://h/ws/atomfeed/patient/2")
        );
        assert_eq!(
            page.links.next_archive.as_deref(),
            Some("http://h/ws/atomfeed/patient/3")
        );
        assert_eq!(page.links.first, None);
        assert_eq!(page.links.prev_archive, None);
    }

    #[test]
    fn a_bad_entry_does_not_spoil_the_page() {
        let page = parse_page(PAGE).unwrap();
        assert_eq!(page.entries.len(), 2);
        let bad = &page.entries[0];
        assert!(matches!(bad.result, Err(EntryError::Malformed(_))));
        assert_eq!(bad.id.as_deref(), Some("e1"));
        assert_eq!(
            bad.raw,
            "<entry><id>e1</id><updated>not a date</updated></entry>"
        );
        let good = page.entries[1].result.as_ref().unwrap();
        // Any prefix bound to our namespace works; the extension beats the link.
        assert_eq!(good.resource_id, "r2");
        assert_eq!(good.resource_type, "Patient");
    }

    #[test]
    fn a_deeply_nested_entry_fails_alone() {
        let deep = format!("{}{}", "<x:n>".repeat(100_000), "</x:n>".repeat(100_000));
        let xml = PAGE.replace("<entry><id>e1</id>", &format!("<entry><id>e1</id>{deep}"));
        let page = parse_page(&xml).unwrap();
        assert_eq!(page.entries[0].id.as_deref(), Some("e1"));
        assert!(matches!(
            page.entries[0].result,
            Err(EntryError::TooDeep {
                limit: MAX_ELEMENT_DEPTH
            })
        ));
        assert!(page.entries[1].result.is_ok());
        let header = PAGE.replace("<title>T</title>", &format!("<title>T</title>{deep}"));
        assert!(matches!(
            parse_page(&header),
            Err(FeedError::TooDeep { .. })
        ));
    }

    #[test]
    fn huge_entries_and_ids_fail_alone() {
        let padding = format!("<title>{}</title>", "x".repeat(MAX_ENTRY_BYTES));
        let xml = PAGE.replace(
            "<entry><id>e1</id>",
            &format!("<entry><id>e1</id>{padding}"),
        );
        let page = parse_page(&xml).unwrap();
        assert!(matches!(
            page.entries[0].result,
            Err(EntryError::TooLarge { .. })
        ));
        assert_eq!(page.entries[0].id.as_deref(), Some("e1"));
        let long_id = "i".repeat(MAX_ID_BYTES + 1);
        let xml = PAGE.replace("<id>e2</id>", &format!("<id>{long_id}</id>"));
        let page = parse_page(&xml).unwrap();
        assert!(matches!(
            page.entries[1].result,
            Err(EntryError::IdTooLong { .. })
        ));
        assert!(page.entries[1].id.is_none());
    }

    #[test]
    fn unbound_prefixes_are_not_ours() {
        let xml = PAGE.replace(
            "xmlns:x=\"https://sync-host.dev/ns/feed/1\"",
            "xmlns:x=\"urn:other\"",
        );
        let page = parse_page(&xml).unwrap();
        let entry = page.entries[1].result.as_ref().unwrap();
        assert_eq!(entry.resource_id, "other");
        assert!(entry.entry.ext.is_empty());
    }

    #[test]
    fn a_declared_encoding_is_not_applied_to_decoded_text() {
        let xml = "\u{FEFF}<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<feed><id>p</id><title>Clínica Nyanza</title></feed>";
        let page = parse_page(xml).unwrap();
        assert_eq!(page.title, "Clínica Nyanza");
        assert!(page.entries.is_empty());
    }

    #[test]
    fn the_feed_category_comes_from_the_page_url() {
        let links = |via: &str| PageLinks {
            via: Some(via.into()),
            ..PageLinks::default()
        };
        let category = |via: &str| feed_category(&links(via));
        assert_eq!(
            category("http://h/openmrs/ws/atomfeed/encounter/3").as_deref(),
            Some("encounter")
        );
        assert_eq!(
            category("http://h/ws/atomfeed/patient?x=1").as_deref(),
            Some("patient")
        );
        assert_eq!(category("http://h/feed/page-7"), None);
        assert_eq!(feed_category(&PageLinks::default()), None);
    }

    #[test]
    fn escaped_json_content_reads_like_cdata() {
        let xml = r#"<feed><id>p</id><entry><id>e</id><category term="obs"/>
            <content type="application/vnd.atomfeed+xml">{&quot;rest&quot;:&quot;/ws/rest/v1/obs/o1?v=full&amp;x=1&quot;}</content>
            </entry></feed>"#;
        let page = parse_page(xml).unwrap();
        let entry = page.entries[0].result.as_ref().unwrap();
        assert_eq!(entry.link("rest"), Some("/ws/rest/v1/obs/o1?v=full&x=1"));
        assert_eq!(
            (entry.resource_type.as_str(), entry.resource_id.as_str()),
            ("obs", "o1")
        );
    }
}

//! Writing a feed page: RFC 4287 Atom with RFC 5005 paging links, entries in the OpenMRS shape.
//!
//! The document is built with `atom_syndication`, then three things it cannot express are
//! applied to its output (which is written without indentation, so every tab, line feed and
//! carriage return in it comes from our data):
//! * tabs, line feeds and carriage returns become character references, because XML readers
//!   normalise them to spaces in attributes and `\r` to `\n` in text;
//! * each entry's escaped content text is replaced by the same text in CDATA, the shape OpenMRS
//!   readers expect;
//! * a line break goes before each entry, so the page is readable.

use std::collections::BTreeMap;

use atom_syndication::extension::{Extension, ExtensionMap};
use atom_syndication::{
    Category, Content, Entry, Feed, Generator, Link, Person, Text, WriteConfig,
};

use crate::content::{cdata, links_to_json};
use crate::dates::to_atom;
use crate::model::{Extensions, FeedEntry, FeedPage, PageLinks};
use crate::names::{
    CONTENT_START_TAG, EXT_HASH, EXT_ORIGIN, EXT_RESOURCE_ID, EXT_RESOURCE_TYPE, EXT_SCOPE,
    EXT_SEQUENCE, EXT_VERSION, SCHEME_ACTION, SCHEME_CATEGORY, SCHEME_TAG, SCOPE_LEFT,
};
use crate::{ATOMFEED_CONTENT_TYPE, SYNC_HOST_NS, SYNC_HOST_PREFIX};

const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const PAGING_LINK_TYPE: &str = "application/atom+xml";

/// Renders `page` as an Atom document.
///
/// Characters XML cannot carry at all (most C0 controls, U+FFFE, U+FFFF) are
/// replaced by U+FFFD in ids, titles, categories and tags; inside the JSON
/// content they are written as JSON escapes, so links survive unchanged.
pub fn render_page(page: &FeedPage) -> String {
    let feed = build_feed(page);
    let mut body = Vec::new();
    // Writing into a Vec<u8> performs no I/O, so the writer cannot fail.
    let config = WriteConfig {
        write_document_declaration: false,
        indent_size: None,
    };
    if let Err(err) = feed.write_with_config(&mut body, config) {
        unreachable!("writing a feed page into memory failed: {err}");
    }
    let body = String::from_utf8_lossy(&body);
    let body = escape_whitespace(&body);
    let contents: Vec<String> = page
        .entries
        .iter()
        .map(|entry| cdata(&xml_safe_json(&links_to_json(&entry.links))))
        .collect();
    let body = replace_contents(&body, &contents);
    let body = body
        .replace("<entry>", "\n<entry>")
        .replace("</feed>", "\n</feed>\n");
    format!("{XML_DECLARATION}{body}")
}

// `to_atom` only fails outside chrono's range, which contains all of `time`'s
// (see there); the epoch fallback is never used.
fn build_feed(page: &FeedPage) -> Feed {
    let mut feed = Feed {
        id: xml_safe(&page.id),
        title: Text::plain(xml_safe(&page.title)),
        updated: to_atom(page.updated).unwrap_or_default(),
        links: paging_links(&page.links),
        authors: vec![Person {
            name: "sync-host".into(),
            ..Person::default()
        }],
        generator: Some(Generator {
            value: "sync-host".into(),
            uri: Some("https://github.com/sync-host/sync-host".into()),
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
        entries: page.entries.iter().map(build_entry).collect(),
        ..Feed::default()
    };
    feed.namespaces = BTreeMap::from([(SYNC_HOST_PREFIX.into(), SYNC_HOST_NS.into())]);
    feed
}

fn paging_links(links: &PageLinks) -> Vec<Link> {
    let rels = [
        ("self", &links.self_),
        ("via", &links.via),
        ("first", &links.first),
        ("prev-archive", &links.prev_archive),
        ("next-archive", &links.next_archive),
    ];
    rels.into_iter()
        .filter_map(|(rel, href)| {
            href.as_ref().map(|href| Link {
                href: xml_safe(href),
                rel: rel.into(),
                mime_type: Some(PAGING_LINK_TYPE.into()),
                ..Link::default()
            })
        })
        .collect()
}

fn build_entry(entry: &FeedEntry) -> Entry {
    Entry {
        id: xml_safe(&entry.id),
        title: Text::plain(xml_safe(&entry.title)),
        updated: to_atom(entry.updated).unwrap_or_default(),
        published: to_atom(entry.published),
        categories: categories(entry),
        content: Some(Content {
            content_type: Some(ATOMFEED_CONTENT_TYPE.into()),
            // Replaced by the CDATA form after writing; see the module docs.
            value: Some(String::new()),
            ..Content::default()
        }),
        extensions: extensions(&entry.ext),
        ..Entry::default()
    }
}

/// The category first, then the action, then the tags, each marked with our
/// scheme so our reader never has to guess which term is which. OpenMRS
/// readers look at the terms only.
fn categories(entry: &FeedEntry) -> Vec<Category> {
    let category = |term: &str, scheme: &str| Category {
        term: xml_safe(term),
        scheme: Some(scheme.into()),
        label: None,
    };
    let mut terms = vec![category(&entry.category, SCHEME_CATEGORY)];
    if let Some(action) = entry.action {
        terms.push(category(action.term(), SCHEME_ACTION));
    }
    terms.extend(entry.tags.iter().map(|tag| category(tag, SCHEME_TAG)));
    terms
}

fn extensions(ext: &Extensions) -> ExtensionMap {
    let sequence = ext.sequence.map(|sequence| sequence.to_string());
    let scope = ext.left_scope.then(|| SCOPE_LEFT.to_owned());
    let fields = [
        (EXT_SEQUENCE, sequence.as_ref()),
        (EXT_ORIGIN, ext.origin.as_ref()),
        (EXT_VERSION, ext.version.as_ref()),
        (EXT_HASH, ext.content_hash.as_ref()),
        (EXT_RESOURCE_TYPE, ext.resource_type.as_ref()),
        (EXT_RESOURCE_ID, ext.resource_id.as_ref()),
        (EXT_SCOPE, scope.as_ref()),
    ];
    let ours: BTreeMap<String, Vec<Extension>> = fields
        .into_iter()
        .filter_map(|(name, value)| {
            let element = Extension {
                name: format!("{SYNC_HOST_PREFIX}:{name}"),
                value: Some(xml_safe(value?)),
                ..Extension::default()
            };
            Some((name.to_owned(), vec![element]))
        })
        .collect();
    if ours.is_empty() {
        return ExtensionMap::new();
    }
    ExtensionMap::from([(SYNC_HOST_PREFIX.to_owned(), ours)])
}

/// True for the characters XML 1.0 can carry.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `text` with characters XML cannot carry replaced by U+FFFD.
pub(crate) fn xml_safe(text: &str) -> String {
    text.chars()
        .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
        .collect()
}

/// JSON text with characters XML cannot carry written as JSON escapes.
/// serde_json already escapes control characters, which leaves U+FFFE and U+FFFF.
fn xml_safe_json(json: &str) -> String {
    let mut safe = String::with_capacity(json.len());
    for c in json.chars() {
        if is_xml_char(c) {
            safe.push(c);
        } else {
            safe.push_str(&format!("\\u{:04x}", u32::from(c)));
        }
    }
    safe
}

fn escape_whitespace(xml: &str) -> String {
    let mut escaped = String::with_capacity(xml.len());
    for c in xml.chars() {
        match c {
            '\t' => escaped.push_str("&#9;"),
            '\n' => escaped.push_str("&#10;"),
            '\r' => escaped.push_str("&#13;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Replaces the (empty) text of each entry's content element, in document
/// order, with `contents`. A literal content start tag can only be one we
/// wrote: in data, `<` is always escaped.
fn replace_contents(xml: &str, contents: &[String]) -> String {
    let mut out =
        String::with_capacity(xml.len() + contents.iter().map(String::len).sum::<usize>());
    let mut rest = xml;
    for content in contents {
        let Some(start) = rest.find(CONTENT_START_TAG) else {
            break;
        };
        let text_start = start + CONTENT_START_TAG.len();
        let text_end = rest[text_start..]
            .find("</content>")
            .map_or(text_start, |offset| text_start + offset);
        out.push_str(&rest[..text_start]);
        out.push_str(content);
        rest = &rest[text_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_becomes_character_references() {
        assert_eq!(escape_whitespace("a\tb\nc\rd"), "a&#9;b&#10;c&#13;d");
    }

    #[test]
    fn unwritable_characters_are_replaced() {
        assert_eq!(
            xml_safe("a\u{0}b\u{FFFE}c\u{1F600}"),
            "a\u{FFFD}b\u{FFFD}c\u{1F600}"
        );
        assert_eq!(xml_safe_json("\"a\u{FFFF}\""), "\"a\\uffff\"");
    }

    #[test]
    fn contents_are_replaced_in_order() {
        let tag = CONTENT_START_TAG;
        let xml = format!("<e>{tag}</content></e><e>{tag}</content></e>");
        let replaced = replace_contents(&xml, &["A".into(), "B".into()]);
        assert_eq!(
            replaced,
            format!("<e>{tag}A</content></e><e>{tag}B</content></e>")
        );
    }
}

//! Property tests: any page we write reads back as written, with our reader and with feed-rs.

mod common;

use proptest::prelude::*;
use sync_host_feed::{
    Action, ContentLink, EntryError, Extensions, FeedEntry, FeedPage, PageLinks, parse_page,
    render_page,
};
use time::OffsetDateTime;

/// Text with the characters that break naive writers, plus anything at all.
fn awkward_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9<>&\"' \\]\\[>\\t\\n\\r\\x00-\\x1f\\x{e9}\\x{65e5}\\x{1fa7a}\\x{fffe}\\x{ffff}%/?=]{0,16}",
        any::<String>(),
    ]
}

fn date() -> impl Strategy<Value = OffsetDateTime> {
    // 1970..2100, nanosecond precision.
    (0i128..4_102_444_800_000_000_000).prop_map(|nanos| {
        OffsetDateTime::from_unix_timestamp_nanos(nanos).expect("inside time's range")
    })
}

fn action() -> impl Strategy<Value = Option<Action>> {
    proptest::option::of(proptest::sample::select(Action::ALL.to_vec()))
}

fn extensions() -> impl Strategy<Value = Extensions> {
    let text = || proptest::option::of(awkward_text());
    (
        proptest::option::of(any::<u64>()),
        text(),
        text(),
        text(),
        text(),
        text(),
        any::<bool>(),
    )
        .prop_map(
            |(sequence, origin, version, content_hash, resource_type, resource_id, left_scope)| {
                Extensions {
                    sequence,
                    origin,
                    version,
                    content_hash,
                    resource_type,
                    resource_id,
                    left_scope,
                }
            },
        )
}

prop_compose! {
    fn entry()(
        id in awkward_text(), title in awkward_text(), updated in date(), published in date(),
        category in awkward_text(), action in action(),
        tags in proptest::collection::vec(awkward_text(), 0..4),
        links in proptest::collection::vec((awkward_text(), awkward_text()), 1..4),
        ext in extensions(),
    ) -> FeedEntry {
        let links = links.into_iter().map(|(client, href)| ContentLink { client, href }).collect();
        FeedEntry { id, title, updated, published, category, action, tags, links, ext }
    }
}

prop_compose! {
    fn page()(
        id in awkward_text(), title in awkward_text(), updated in date(),
        links in proptest::collection::vec(proptest::option::of(awkward_text()), 5),
        entries in proptest::collection::vec(entry(), 0..5),
    ) -> FeedPage {
        let links = PageLinks {
            self_: links[0].clone(), via: links[1].clone(), first: links[2].clone(),
            prev_archive: links[3].clone(), next_archive: links[4].clone(),
        };
        FeedPage { id, title, updated, links, entries }
    }
}

/// What XML can carry of `text`: characters outside XML 1.0 become U+FFFD.
fn xml_safe(text: &str) -> String {
    let is_xml_char = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    text.chars()
        .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
        .collect()
}

fn trim_xml_space(text: &str) -> String {
    text.trim_matches([' ', '\t', '\n', '\r']).to_owned()
}

/// An extension value as our reader returns it: trimmed, empty meaning absent.
fn ext_value(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(|value| xml_safe(value).trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// The entry our reader should return for `written`.
fn expected(written: &FeedEntry) -> FeedEntry {
    let ext = &written.ext;
    FeedEntry {
        id: trim_xml_space(&xml_safe(&written.id)),
        title: xml_safe(&written.title),
        category: xml_safe(&written.category),
        tags: written.tags.iter().map(|tag| xml_safe(tag)).collect(),
        ext: Extensions {
            sequence: ext.sequence,
            origin: ext_value(&ext.origin),
            version: ext_value(&ext.version),
            content_hash: ext_value(&ext.content_hash),
            resource_type: ext_value(&ext.resource_type),
            resource_id: ext_value(&ext.resource_id),
            left_scope: ext.left_scope,
        },
        ..written.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn rendered_pages_read_back(page in page()) {
        let xml = render_page(&page);
        let parsed = parse_page(&xml).map_err(|err| TestCaseError::fail(format!("{err}\n{xml}")))?;
        prop_assert_eq!(&parsed.id, &trim_xml_space(&xml_safe(&page.id)));
        prop_assert_eq!(&parsed.title, &xml_safe(&page.title));
        prop_assert_eq!(parsed.updated, page.updated);
        let links = |links: &PageLinks| [
            links.self_.clone(), links.via.clone(), links.first.clone(),
            links.prev_archive.clone(), links.next_archive.clone(),
        ];
        let written_links = links(&page.links).map(|link| link.map(|link| xml_safe(&link)));
        prop_assert_eq!(links(&parsed.links), written_links);
        prop_assert_eq!(parsed.entries.len(), page.entries.len());
        for (written, read) in page.entries.iter().zip(&parsed.entries) {
            let want = expected(written);
            match &read.result {
                Ok(view) => {
                    prop_assert_eq!(&view.entry, &want);
                    prop_assert_eq!(view.action, written.action.unwrap_or(Action::Updated));
                }
                Err(EntryError::NoId) => prop_assert!(want.id.is_empty()),
                Err(EntryError::NoResourceId { .. }) => {
                    prop_assert!(want.ext.resource_id.is_none() || want.ext.resource_type.is_none());
                }
                Err(other) => prop_assert!(false, "{} for {:?}\n{}", other, written, read.raw),
            }
        }
    }

    #[test]
    fn feed_rs_reads_what_we_write(page in page()) {
        let xml = render_page(&page);
        let feed = feed_rs::parser::parse(xml.as_bytes())
            .map_err(|err| TestCaseError::fail(format!("feed-rs: {err}\n{xml}")))?;
        prop_assert_eq!(feed.entries.len(), page.entries.len());
        for (written, read) in page.entries.iter().zip(&feed.entries) {
            let want = expected(written);
            if !want.id.is_empty() {
                prop_assert_eq!(read.id.trim(), want.id.trim());
            }
            // feed-rs trims attribute values; ours does not.
            let mut terms: Vec<String> = vec![want.category.trim().to_owned()];
            terms.extend(written.action.map(|action| action.term().to_owned()));
            terms.extend(want.tags.iter().map(|tag| tag.trim().to_owned()));
            let read_terms: Vec<String> =
                read.categories.iter().map(|c| c.term.trim().to_owned()).collect();
            prop_assert_eq!(read_terms, terms);
        }
    }
}

//! The reader never panics: arbitrary text, and real pages cut short or with bytes changed.

mod common;

use common::{page, patient_entry};
use proptest::prelude::*;
use sync_host_feed::{Action, FeedError, parse_page, render_page};

fn rendered() -> String {
    let entries = (1..=4)
        .map(|n| patient_entry(n, &format!("u{n}"), Some(Action::Updated)))
        .collect();
    render_page(&page(2, entries))
}

fn fixture() -> String {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/openmrs/atomfeed-xml/sync2-patient-recent.xml");
    std::fs::read_to_string(path).unwrap()
}

/// The largest char boundary at or below `at`.
fn floor_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse_page(&text);
    }

    #[test]
    fn xml_like_text_never_panics(text in "[<>/a-z\"= !?\\[\\]&;#x0-9:-]{0,200}") {
        let _ = parse_page(&format!("<feed>{text}</feed>"));
    }

    #[test]
    fn a_page_cut_short_is_a_feed_error(cut in 0usize..10_000, use_fixture in any::<bool>()) {
        let xml = if use_fixture { fixture() } else { rendered() };
        // Cut anywhere before the last byte of the root's closing tag.
        let complete = xml.rfind("</feed>").unwrap() + "</feed>".len();
        let end = floor_boundary(&xml, cut % complete);
        let result = parse_page(&xml[..end]);
        prop_assert!(result.is_err(), "cut at {} parsed: {:?}", end, result);
    }

    #[test]
    fn a_changed_byte_is_handled(at in 0usize..10_000, byte in prop::sample::select(b"<>&\"'/]x ".to_vec())) {
        let xml = rendered();
        let at = floor_boundary(&xml, at % xml.len());
        let mut bytes = xml.into_bytes();
        bytes[at] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            match parse_page(&text) {
                Ok(page) => {
                    for entry in &page.entries {
                        prop_assert!(text.contains(&entry.raw));
                    }
                }
                Err(err) => prop_assert!(!err.to_string().is_empty()),
            }
        }
    }
}

#[test]
fn cutting_inside_the_root_is_truncation_or_bad_xml() {
    let xml = rendered();
    let cut = xml.rfind("</entry>").unwrap();
    let err = parse_page(&xml[..cut]).unwrap_err();
    assert!(
        matches!(err, FeedError::Truncated | FeedError::NotXml { .. }),
        "{err:?}"
    );
}

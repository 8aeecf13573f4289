//! The properties the `feed_page` fuzz target in `fuzz/` checks, kept here so that a stable
//! test can replay the committed corpus through exactly the same code
//! (`tests/fuzz_corpus.rs`). An assertion failing is the bug a fuzzer reports.

use crate::{parse_page, read_parsed_page};

/// Parsing any text as a feed page never panics; every entry's raw text is a piece of the
/// page, and the navigation decision on the page stays within it.
pub fn feed_page(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(page) = parse_page(text) else {
        return;
    };
    for entry in &page.entries {
        assert!(
            text.contains(&entry.raw),
            "entry text not taken from the page"
        );
    }
    let reading = read_parsed_page(None, &page);
    assert!(reading.new_entries.end <= page.entries.len());
    if let Some(Some(id)) = page.entries.first().map(|e| e.id.as_deref()) {
        let marker = crate::Marker {
            page: String::new(),
            last_entry_id: id.to_owned(),
        };
        let after = read_parsed_page(Some(&marker), &page);
        assert!(after.new_entries.start >= 1 && after.new_entries.end == page.entries.len());
    }
}

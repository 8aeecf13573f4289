//! Splits a feed document into its header and the exact text of each entry.
//!
//! Entries are cut out of the document before `atom_syndication` reads it, so that one
//! unreadable entry (a bad date, say) costs that entry only, and so that the audit trail can
//! keep every entry exactly as the publisher wrote it.

use std::ops::Range;

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::error::FeedError;

/// A feed document cut into pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitPage<'a> {
    /// The document with every top-level entry removed.
    pub header: String,
    /// The text of each top-level entry, in document order.
    pub entries: Vec<&'a str>,
}

/// Checks that `xml` is a well-formed document whose root is `<feed>` and
/// returns its header and entries.
pub(crate) fn split_page(xml: &str) -> Result<SplitPage<'_>, FeedError> {
    let spans = entry_spans(xml)?;
    let mut header = String::with_capacity(xml.len());
    let mut cursor = 0;
    for span in &spans {
        header.push_str(&xml[cursor..span.start]);
        cursor = span.end;
    }
    header.push_str(&xml[cursor..]);
    let entries = spans.into_iter().map(|span| &xml[span]).collect();
    Ok(SplitPage { header, entries })
}

/// The byte ranges of the root's `<entry>` children.
fn entry_spans(xml: &str) -> Result<Vec<Range<usize>>, FeedError> {
    let mut reader = Reader::from_str(xml);
    let mut spans = Vec::new();
    let mut depth = 0usize;
    let mut entry_start = None;
    let mut seen_root = false;
    loop {
        let before = position(&reader);
        let event = reader.read_event().map_err(|err| FeedError::NotXml {
            position: reader.error_position(),
            message: err.to_string(),
        })?;
        match event {
            Event::Start(element) => {
                if !seen_root {
                    check_root(element.name().as_ref())?;
                    seen_root = true;
                } else if depth == 1 && element.name().as_ref() == b"entry" {
                    entry_start = Some(before);
                }
                depth += 1;
            }
            Event::Empty(element) => {
                if !seen_root {
                    // A self-closed root is a feed with nothing in it.
                    check_root(element.name().as_ref())?;
                    return Ok(spans);
                }
                if depth == 1 && element.name().as_ref() == b"entry" {
                    spans.push(before..position(&reader));
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 1
                    && let Some(start) = entry_start.take()
                {
                    spans.push(start..position(&reader));
                }
                if depth == 0 {
                    return Ok(spans);
                }
            }
            Event::Eof if seen_root => return Err(FeedError::Truncated),
            Event::Eof => return Err(FeedError::Empty),
            _ => {}
        }
    }
}

fn check_root(name: &[u8]) -> Result<(), FeedError> {
    // atom_syndication reads an unprefixed <feed> root only.
    if name == b"feed" {
        Ok(())
    } else {
        Err(FeedError::NotAtom {
            found: String::from_utf8_lossy(name).into_owned(),
        })
    }
}

/// The reader's byte offset. It reads from a `&str`, so every offset fits in `usize`.
fn position(reader: &Reader<&[u8]>) -> usize {
    usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_cut_out_exactly() {
        let xml = "<?xml version=\"1.0\"?>\n<feed><id>p</id>\n  <entry><id>a</id><x><entry/></x></entry>\n  <entry/>\n</feed>";
        let page = split_page(xml).unwrap();
        assert_eq!(
            page.entries,
            vec!["<entry><id>a</id><x><entry/></x></entry>", "<entry/>"]
        );
        assert_eq!(
            page.header,
            "<?xml version=\"1.0\"?>\n<feed><id>p</id>\n  \n  \n</feed>"
        );
    }

    #[test]
    fn not_xml_is_an_error() {
        assert!(matches!(
            split_page("<feed><entry></feed>"),
            Err(FeedError::NotXml { .. })
        ));
        assert_eq!(split_page("just text"), Err(FeedError::Empty));
        assert_eq!(split_page(""), Err(FeedError::Empty));
    }

    #[test]
    fn other_roots_are_not_atom() {
        assert_eq!(
            split_page("<rss><channel/></rss>"),
            Err(FeedError::NotAtom {
                found: "rss".into()
            })
        );
    }

    #[test]
    fn unclosed_root_is_truncated() {
        assert_eq!(
            split_page("<feed><entry><id>a</id></entry>"),
            Err(FeedError::Truncated)
        );
    }

    #[test]
    fn self_closed_root_has_no_entries() {
        let page = split_page("<feed/>").unwrap();
        assert!(page.entries.is_empty());
    }
}

//! Splits a feed document into its header and the exact text of each entry.
//!
//! Entries are cut out of the document before `atom_syndication` reads it, so that one
//! unreadable entry (a bad date, say) costs that entry only, and so that the audit trail can
//! keep every entry exactly as the publisher wrote it.

use std::ops::Range;

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::error::FeedError;

/// The deepest element nesting a page may have. An Atom page needs five levels (feed, entry,
/// an extension, its child, text); the Atom reader recurses into extension elements, so
/// anything much deeper is refused before it gets there.
pub const MAX_ELEMENT_DEPTH: usize = 32;

/// A feed document cut into pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitPage<'a> {
    /// The document with every top-level entry removed.
    pub header: String,
    /// The text of each top-level entry, in document order.
    pub entries: Vec<&'a str>,
    /// For each entry, whether it nests elements deeper than [`MAX_ELEMENT_DEPTH`].
    pub too_deep: Vec<bool>,
}

/// Checks that `xml` is a well-formed document whose root is `<feed>` and
/// returns its header and entries. The header starts at the root element:
/// the XML declaration is left out because the text is already decoded, and
/// an `encoding` it names must not be applied a second time.
pub(crate) fn split_page(xml: &str) -> Result<SplitPage<'_>, FeedError> {
    // The XML reader skips a byte order mark without counting it in its
    // offsets, so it goes first.
    let xml = xml.strip_prefix('\u{FEFF}').unwrap_or(xml);
    let layout = layout(xml)?;
    let mut header = String::with_capacity(layout.root.len());
    let mut cursor = layout.root.start;
    for span in &layout.entries {
        header.push_str(&xml[cursor..span.start]);
        cursor = span.end;
    }
    header.push_str(&xml[cursor..layout.root.end]);
    let entries = layout.entries.into_iter().map(|span| &xml[span]).collect();
    Ok(SplitPage {
        header,
        entries,
        too_deep: layout.too_deep,
    })
}

/// Where the root element and its `<entry>` children are, as byte ranges.
#[derive(Default)]
struct Layout {
    root: Range<usize>,
    entries: Vec<Range<usize>>,
    too_deep: Vec<bool>,
}

impl Layout {
    fn push_entry(&mut self, span: Range<usize>, too_deep: bool) {
        self.entries.push(span);
        self.too_deep.push(too_deep);
    }
}

fn layout(xml: &str) -> Result<Layout, FeedError> {
    let mut reader = Reader::from_str(xml);
    let mut layout = Layout::default();
    let mut depth = 0usize;
    let mut entry_start = None;
    let mut entry_too_deep = false;
    let mut root_start = None;
    loop {
        let before = position(&reader);
        let event = reader.read_event().map_err(|err| FeedError::NotXml {
            position: reader.error_position(),
            message: err.to_string(),
        })?;
        match event {
            Event::Start(element) => {
                if root_start.is_none() {
                    check_root(element.name().as_ref())?;
                    root_start = Some(before);
                } else if depth == 1 && element.name().as_ref() == b"entry" {
                    entry_start = Some(before);
                    entry_too_deep = false;
                }
                depth += 1;
                if depth > MAX_ELEMENT_DEPTH {
                    // Inside an entry only that entry is lost; in the header, the page.
                    if entry_start.is_none() {
                        return Err(FeedError::TooDeep {
                            limit: MAX_ELEMENT_DEPTH,
                        });
                    }
                    entry_too_deep = true;
                }
            }
            Event::Empty(element) => {
                let Some(_) = root_start else {
                    // A self-closed root is a feed with nothing in it.
                    check_root(element.name().as_ref())?;
                    layout.root = before..position(&reader);
                    return Ok(layout);
                };
                if depth == 1 && element.name().as_ref() == b"entry" {
                    layout.push_entry(before..position(&reader), false);
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 1
                    && let Some(start) = entry_start.take()
                {
                    layout.push_entry(start..position(&reader), entry_too_deep);
                }
                if depth == 0
                    && let Some(start) = root_start
                {
                    layout.root = start..position(&reader);
                    return Ok(layout);
                }
            }
            Event::Eof if root_start.is_some() => return Err(FeedError::Truncated),
            Event::Eof => return Err(FeedError::Empty),
            _ => {}
        }
    }
}

/// The text of an entry's `<id>` child, read without the rest of the entry,
/// so that an otherwise unreadable entry can still be named in the audit.
pub(crate) fn entry_id_of(raw_entry: &str) -> Option<String> {
    let mut reader = Reader::from_str(raw_entry);
    let mut depth = 0usize;
    loop {
        match reader.read_event().ok()? {
            Event::Start(element) if depth == 1 && element.name().as_ref() == b"id" => {
                return element_text(&mut reader);
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.checked_sub(1)?,
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// The text up to the end of the current element (which has no children).
fn element_text(reader: &mut Reader<&[u8]>) -> Option<String> {
    let mut text = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Text(part) => text.push_str(&part.decode().ok()?),
            Event::CData(part) => text.push_str(&part.decode().ok()?),
            Event::GeneralRef(reference) => {
                let name = reference.decode().ok()?;
                match quick_xml::escape::resolve_predefined_entity(&name) {
                    Some(resolved) => text.push_str(resolved),
                    None => text.push(reference.resolve_char_ref().ok()??),
                }
            }
            Event::End(_) => return Some(text),
            _ => return None,
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
        assert_eq!(page.header, "<feed><id>p</id>\n  \n  \n</feed>");
    }

    #[test]
    fn deep_nesting_costs_the_entry_inside_an_entry_and_the_page_outside() {
        let deep = |levels: usize| format!("{}{}", "<x>".repeat(levels), "</x>".repeat(levels));
        let xml = format!(
            "<feed><id>p</id><entry><id>a</id>{}</entry><entry><id>b</id>{}</entry></feed>",
            deep(10_000),
            deep(MAX_ELEMENT_DEPTH - 2)
        );
        let page = split_page(&xml).unwrap();
        assert_eq!(page.too_deep, vec![true, false]);
        assert!(page.entries[0].starts_with("<entry><id>a</id>"));
        let header = format!("<feed><id>p</id>{}</feed>", deep(10_000));
        assert_eq!(
            split_page(&header),
            Err(FeedError::TooDeep {
                limit: MAX_ELEMENT_DEPTH
            })
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
        let page = split_page("<?xml version=\"1.0\"?><feed/>").unwrap();
        assert!(page.entries.is_empty());
        assert_eq!(page.header, "<feed/>");
    }

    #[test]
    fn what_surrounds_the_root_is_left_out() {
        let xml = "\u{FEFF}<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<!-- c --><feed><id>é</id></feed>\n<!-- after -->";
        let page = split_page(xml).unwrap();
        assert_eq!(page.header, "<feed><id>é</id></feed>");
    }

    #[test]
    fn the_id_of_an_unreadable_entry() {
        let raw = "<entry><title>x</title><updated>garbage</updated><id>tag:a&amp;b&#x41;<![CDATA[<c>]]></id></entry>";
        assert_eq!(entry_id_of(raw).as_deref(), Some("tag:a&bA<c>"));
        assert_eq!(
            entry_id_of("<entry><source><id>not this</id></source></entry>"),
            None
        );
        assert_eq!(entry_id_of("<entry/>"), None);
    }
}

//! Pure feed-navigation decisions: where a feed's pages live, which page is the oldest, and
//! which entries of a page are new after a marker.

use sync_host_feed::{PageLinks, ParsedEntry};

/// The page addresses of one feed, relative to the feed base so that a marker survives the
/// publisher moving to a new address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePath {
    feed_base: String,
    name: String,
    recent: String,
}

impl PagePath {
    /// Pages of feed `name` under `feed_base` (`http://host/ws/atomfeed`).
    pub fn new(feed_base: &str, name: &str) -> Self {
        Self {
            feed_base: feed_base.trim_end_matches('/').to_string(),
            name: name.to_string(),
            recent: format!("{name}/recent"),
        }
    }

    /// `name/recent`.
    pub fn recent(&self) -> &str {
        &self.recent
    }

    /// The absolute URL of a relative page path.
    pub fn absolute(&self, relative: &str) -> String {
        format!("{}/{}", self.feed_base, relative.trim_start_matches('/'))
    }

    /// A publisher's link as a path relative to the feed base. Links carry whatever host the
    /// publisher thinks it has (often an internal name behind a proxy), so only the part after
    /// `/atomfeed/` is trusted.
    pub fn relative(&self, link: &str) -> Option<String> {
        const MARK: &str = "/atomfeed/";
        let at = link.rfind(MARK)?;
        let rest = &link[at + MARK.len()..];
        let rest = rest.split(['?', '#']).next().unwrap_or(rest);
        (!rest.is_empty()).then(|| rest.to_string())
    }

    /// The archive number of a relative page path (`patient/3` gives 3).
    pub fn page_number(relative: &str) -> Option<u64> {
        relative.rsplit('/').next()?.parse().ok()
    }

    /// Archive page `n` of this feed.
    pub fn archive(&self, n: u64) -> String {
        format!("{}/{n}", self.name)
    }
}

/// The oldest page, as a relative path, from the links of `recent`: the `first` link when
/// the publisher gives one, else archive page 1 when pages are numbered (OpenMRS publishes
/// `via` as `.../{n}`), else `None` (the caller walks `prev-archive` as a last resort).
pub fn first_page(recent: &PageLinks, paths: &PagePath) -> Option<String> {
    if let Some(first) = recent.first.as_deref().and_then(|f| paths.relative(f)) {
        return Some(first);
    }
    let via = recent.via.as_deref().and_then(|v| paths.relative(v))?;
    let number = PagePath::page_number(&via)?;
    if number <= 1 || recent.prev_archive.is_none() {
        // `recent` is itself the oldest page.
        return Some(paths.recent().to_string());
    }
    Some(paths.archive(1))
}

/// The entries after the marker's entry, oldest first. When the marker is not on the page
/// (a republished page, a changed page size), every entry is returned: delivery is at least
/// once and applying an event twice changes nothing, whereas skipping one would lose it.
pub fn entries_after(entries: Vec<ParsedEntry>, marker_entry: Option<&str>) -> Vec<ParsedEntry> {
    let Some(marker) = marker_entry else {
        return entries;
    };
    match entries
        .iter()
        .rposition(|e| e.id.as_deref() == Some(marker))
    {
        Some(at) => entries.into_iter().skip(at + 1).collect(),
        None => entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> PagePath {
        PagePath::new("http://parent:8080/openmrs/ws/atomfeed/", "patient")
    }

    fn entry(id: &str) -> ParsedEntry {
        ParsedEntry {
            raw: String::new(),
            id: Some(id.to_string()),
            result: Err(sync_host_feed::EntryError::NoId),
        }
    }

    #[test]
    fn links_are_rebased_onto_the_configured_feed_base() {
        let p = paths();
        let rel = p
            .relative("http://internal:8080/openmrs/ws/atomfeed/patient/3")
            .unwrap();
        assert_eq!(rel, "patient/3");
        assert_eq!(
            p.absolute(&rel),
            "http://parent:8080/openmrs/ws/atomfeed/patient/3"
        );
        assert_eq!(PagePath::page_number(&rel), Some(3));
        assert_eq!(p.relative("http://x/elsewhere/3"), None);
    }

    #[test]
    fn first_page_prefers_first_then_numbering_then_recent() {
        let p = paths();
        let mut links = PageLinks {
            via: Some("http://h/ws/atomfeed/patient/32".into()),
            prev_archive: Some("http://h/ws/atomfeed/patient/31".into()),
            ..PageLinks::default()
        };
        assert_eq!(first_page(&links, &p).as_deref(), Some("patient/1"));
        links.first = Some("http://h/ws/atomfeed/patient/1".into());
        assert_eq!(first_page(&links, &p).as_deref(), Some("patient/1"));
        let single = PageLinks {
            via: Some("http://h/ws/atomfeed/patient/1".into()),
            ..PageLinks::default()
        };
        assert_eq!(first_page(&single, &p).as_deref(), Some("patient/recent"));
        assert_eq!(first_page(&PageLinks::default(), &p), None);
    }

    #[test]
    fn entries_after_marker_or_all_when_marker_is_missing() {
        let page = || vec![entry("a"), entry("b"), entry("c")];
        let ids = |v: Vec<ParsedEntry>| v.into_iter().map(|e| e.id.unwrap()).collect::<Vec<_>>();
        assert_eq!(ids(entries_after(page(), Some("b"))), ["c"]);
        assert_eq!(ids(entries_after(page(), Some("c"))), Vec::<String>::new());
        assert_eq!(ids(entries_after(page(), Some("zz"))), ["a", "b", "c"]);
        assert_eq!(ids(entries_after(page(), None)), ["a", "b", "c"]);
    }
}

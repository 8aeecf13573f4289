//! Where a feed's pages live, relative to the feed base the node is configured with, so that
//! markers survive a publisher moving and links that carry an internal host name still work.
//! The decisions of which page to read are `sync_host_feed::navigation`'s.

/// The longest page path (relative to the feed base) a reader follows.
pub const MAX_PAGE_PATH: usize = 512;

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
    /// `/atomfeed/` is trusted. A path longer than [`MAX_PAGE_PATH`] is no usable link: it
    /// would be kept in the marker.
    pub fn relative(&self, link: &str) -> Option<String> {
        const MARK: &str = "/atomfeed/";
        let at = link.rfind(MARK)?;
        let rest = &link[at + MARK.len()..];
        let rest = rest.split(['?', '#']).next().unwrap_or(rest);
        (!rest.is_empty() && rest.len() <= MAX_PAGE_PATH).then(|| rest.to_string())
    }

    /// The archive number of a relative page path (`patient/3` gives 3).
    pub fn page_number(relative: &str) -> Option<u64> {
        relative.rsplit('/').next()?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> PagePath {
        PagePath::new("http://parent:8080/openmrs/ws/atomfeed/", "patient")
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
        let long = format!("http://x/ws/atomfeed/patient/{}", "9".repeat(MAX_PAGE_PATH));
        assert_eq!(p.relative(&long), None);
    }
}

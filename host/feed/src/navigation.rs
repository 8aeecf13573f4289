//! Feed navigation for the sync engine: which entries of a fetched page are new, and which page
//! to read next. Pure decisions, no I/O; the engine fetches, this module decides.
//!
//! The decisions, in short:
//! * A reader remembers a [`Marker`]: the canonical URL (`via`) of the page holding the last
//!   entry it processed, and that entry's id. `via` rather than `self`, because `recent` moves:
//!   the page that was `recent` is later an archive page with a stable number.
//! * On the marker's page, the entries after the marker entry are new. When the marker entry is
//!   not on the page (the publisher rewrote it, or the marker came from elsewhere), every entry
//!   is new: delivery is at least once and applying an event twice changes nothing, while
//!   skipping one would lose a change.
//! * When an entry id appears twice on a page, the marker is taken to be the *first* occurrence,
//!   for the same reason. Duplicated entries are all delivered and reported.
//! * After a page, read `next-archive` if the page has one; otherwise the reader has caught up
//!   (it is at `recent`). A `next-archive` that points back at the page itself is ignored.
//! * A first sync starts at the oldest page: `first` when the page offers it, else archive page 1
//!   derived from the OpenMRS numbered layout (`via` of `recent` ends in `/{n}`, page 1 is `/1`
//!   at the same base), and only as a last resort by walking `prev-archive` back one page at a
//!   time until a page has none.

use std::ops::Range;

use crate::model::{PageLinks, ParsedPage};

/// Where a reader left off in one feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The canonical URL of the page holding the last processed entry, or an
    /// OpenMRS archive page number (`"7"`); see [`marker_page_url`].
    pub page: String,
    /// The id of the last processed entry.
    pub last_entry_id: String,
}

impl Marker {
    /// The marker to persist once every entry of `page` has been processed:
    /// the page's `via` (else `self`) and its last entry with an id. `None`
    /// when the page has no usable link or no entry with an id, in which case
    /// the previous marker stays.
    pub fn after_page(links: &PageLinks, entry_ids: &[Option<&str>]) -> Option<Marker> {
        let page = links.via.as_ref().or(links.self_.as_ref())?;
        let last = entry_ids.iter().rev().find_map(|id| *id)?;
        Some(Marker {
            page: page.clone(),
            last_entry_id: last.to_owned(),
        })
    }
}

/// What to do after the entries of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Fetch this page (the page's `next-archive`) and read it from its start.
    Fetch(String),
    /// There is no newer page: the reader has caught up.
    CaughtUp,
}

/// The decision for one fetched page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageReading {
    /// The indices of the entries to process, in page order.
    pub new_entries: Range<usize>,
    /// Whether the marker entry was found on the page (`false` without a marker).
    pub marker_found: bool,
    /// Entry ids that appear more than once among the new entries, each once.
    pub duplicate_ids: Vec<String>,
    /// What to read next.
    pub next: Next,
}

/// Decides which entries of a page are new after `marker_entry` and what
/// to read next. `entry_ids` are the page's entry ids in order (`None` for an
/// entry without one; it is never the marker entry but is still delivered).
pub fn read_page(
    marker_entry: Option<&str>,
    entry_ids: &[Option<&str>],
    links: &PageLinks,
) -> PageReading {
    let marker_at =
        marker_entry.and_then(|marker| entry_ids.iter().position(|id| *id == Some(marker)));
    let start = marker_at.map_or(0, |at| at + 1);
    PageReading {
        new_entries: start..entry_ids.len(),
        marker_found: marker_at.is_some(),
        duplicate_ids: duplicates(&entry_ids[start..]),
        next: next_after(links),
    }
}

/// [`read_page`] for a parsed page and an optional marker. Only the marker's
/// entry id is used: `page` is the marker's page or a newer one, and on a
/// newer page the id is simply absent, so every entry is new.
pub fn read_parsed_page(marker: Option<&Marker>, page: &ParsedPage) -> PageReading {
    let marker_entry = marker.map(|marker| marker.last_entry_id.as_str());
    read_page(marker_entry, &page.entry_ids(), &page.links)
}

fn next_after(links: &PageLinks) -> Next {
    match &links.next_archive {
        Some(next) if !is_this_page(links, next) => Next::Fetch(next.clone()),
        _ => Next::CaughtUp,
    }
}

fn duplicates(ids: &[Option<&str>]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut repeated = Vec::new();
    for id in ids.iter().flatten() {
        if !seen.insert(*id) && !repeated.iter().any(|known: &String| known == id) {
            repeated.push((*id).to_owned());
        }
    }
    repeated
}

/// How a first sync gets from the page it has to the oldest page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstSyncStep {
    /// This page is the oldest: read it from its first entry, then go on
    /// with [`read_page`].
    ReadFromHere,
    /// Fetch this page (it is the oldest, or older) and decide again.
    Fetch {
        /// The page to fetch.
        url: String,
        /// Why this page.
        via: StartRoute,
    },
}

/// Which rule picked the page a first sync fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRoute {
    /// The page's `first` link.
    FirstLink,
    /// Archive page 1 of the OpenMRS numbered layout.
    NumberedLayout,
    /// One step back along `prev-archive`.
    PrevArchive,
}

/// Decides the next step of a first sync (no marker yet), given the links of
/// the page at hand (normally `recent`). Call it again on each fetched page
/// until it says [`FirstSyncStep::ReadFromHere`].
pub fn first_sync_step(links: &PageLinks) -> FirstSyncStep {
    let fetch = |url: String, via| {
        if is_this_page(links, &url) {
            FirstSyncStep::ReadFromHere
        } else {
            FirstSyncStep::Fetch { url, via }
        }
    };
    if let Some(first) = &links.first {
        return fetch(first.clone(), StartRoute::FirstLink);
    }
    if let Some((base, number)) = links.via.as_deref().and_then(numbered_page) {
        if number == 1 {
            return FirstSyncStep::ReadFromHere;
        }
        return fetch(format!("{base}/1"), StartRoute::NumberedLayout);
    }
    match &links.prev_archive {
        Some(prev) => fetch(prev.clone(), StartRoute::PrevArchive),
        None => FirstSyncStep::ReadFromHere,
    }
}

/// The URL of a marker's page: a URL is used as it is; an archive page
/// number is placed in the OpenMRS numbered layout next to `recent_url`
/// (`…/patient/recent` and `7` give `…/patient/7`).
pub fn marker_page_url(recent_url: &str, page: &str) -> String {
    let is_number = !page.is_empty() && page.bytes().all(|b| b.is_ascii_digit());
    if !is_number {
        return page.to_owned();
    }
    let path = recent_url.split(['?', '#']).next().unwrap_or_default();
    let base = path.trim_end_matches('/');
    let base = base.rsplit_once('/').map_or(base, |(base, _)| base);
    format!("{base}/{page}")
}

/// `(base, n)` when `url` ends in `/{n}` with `n >= 1` (query ignored).
fn numbered_page(url: &str) -> Option<(&str, u64)> {
    let path = url.split(['?', '#']).next()?;
    let (base, last) = path.rsplit_once('/')?;
    let digits_only = !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit());
    let number = last
        .parse::<u64>()
        .ok()
        .filter(|n| digits_only && *n >= 1)?;
    Some((base, number))
}

fn is_this_page(links: &PageLinks, url: &str) -> bool {
    links.via.as_deref() == Some(url) || links.self_.as_deref() == Some(url)
}

#[cfg(test)]
#[path = "navigation_tests.rs"]
mod tests;

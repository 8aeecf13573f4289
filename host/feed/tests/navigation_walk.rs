//! A reader walking rendered multi-page feeds with the navigation decisions: a first sync from
//! `recent`, resuming from a marker, and each way of finding the oldest page.

mod common;

use std::collections::HashMap;

use common::patient_entry;
use sync_host_feed::{
    Action, FeedEntry, FeedPage, FirstSyncStep, Marker, Next, PageLinks, StartRoute,
    first_sync_step, parse_page, read_parsed_page, render_page,
};
use time::macros::datetime;

/// How the publisher names its pages.
#[derive(Clone, Copy)]
enum Layout {
    /// OpenMRS: `/recent` plus `/1`, `/2`, ...; `first` only when `with_first`.
    Numbered { with_first: bool },
    /// Opaque page names: only `prev-archive`/`next-archive` lead anywhere.
    Opaque,
}

/// A publisher's pages, served from memory by URL.
struct Publisher {
    pages: HashMap<String, String>,
    recent: String,
}

fn page_url(layout: Layout, number: usize) -> String {
    match layout {
        Layout::Numbered { .. } => format!("http://parent/ws/atomfeed/patient/{number}"),
        Layout::Opaque => format!("http://parent/feed/page-{:x}", number * 7919),
    }
}

fn publish(entries: &[FeedEntry], page_size: usize, layout: Layout) -> Publisher {
    let chunks: Vec<&[FeedEntry]> = entries.chunks(page_size).collect();
    let count = chunks.len().max(1);
    let recent = "http://parent/ws/atomfeed/patient/recent".to_owned();
    let mut pages = HashMap::new();
    for number in 1..=count {
        let chunk = chunks.get(number - 1).copied().unwrap_or_default();
        let is_recent = number == count;
        let links = PageLinks {
            self_: Some(if is_recent {
                recent.clone()
            } else {
                page_url(layout, number)
            }),
            via: Some(page_url(layout, number)),
            first: matches!(layout, Layout::Numbered { with_first: true })
                .then(|| page_url(layout, 1)),
            prev_archive: (number > 1).then(|| page_url(layout, number - 1)),
            next_archive: (!is_recent).then(|| page_url(layout, number + 1)),
        };
        let page = FeedPage {
            id: format!("patient+{number}"),
            title: "patient".into(),
            updated: datetime!(2024-05-01 08:00 UTC),
            links,
            entries: chunk.to_vec(),
        };
        let xml = render_page(&page);
        if is_recent {
            pages.insert(recent.clone(), xml.clone());
        }
        pages.insert(page_url(layout, number), xml);
    }
    Publisher { pages, recent }
}

impl Publisher {
    fn fetch(&self, url: &str, fetched: &mut Vec<String>) -> sync_host_feed::ParsedPage {
        fetched.push(url.to_owned());
        let xml = self.pages.get(url).unwrap_or_else(|| panic!("404 {url}"));
        parse_page(xml).unwrap()
    }
}

fn entries(count: u64) -> Vec<FeedEntry> {
    (1..=count)
        .map(|n| patient_entry(n, &format!("p{n}"), Some(Action::Updated)))
        .collect()
}

/// Reads from the marker (or from the start) to `recent`; returns the entry
/// ids processed, the new marker and the URLs fetched.
fn sync(
    publisher: &Publisher,
    marker: Option<Marker>,
) -> (Vec<String>, Option<Marker>, Vec<String>) {
    let mut fetched = Vec::new();
    let mut page = match &marker {
        Some(marker) => publisher.fetch(&marker.page, &mut fetched),
        None => {
            let mut page = publisher.fetch(&publisher.recent, &mut fetched);
            while let FirstSyncStep::Fetch { url, .. } = first_sync_step(&page.links) {
                page = publisher.fetch(&url, &mut fetched);
            }
            page
        }
    };
    let mut marker = marker;
    let mut processed = Vec::new();
    loop {
        let reading = read_parsed_page(marker.as_ref(), &page);
        let ids = page.entry_ids();
        processed.extend(
            ids[reading.new_entries.clone()]
                .iter()
                .map(|id| id.unwrap().to_owned()),
        );
        marker = Marker::after_page(&page.links, &ids).or(marker);
        match reading.next {
            Next::Fetch(url) => page = publisher.fetch(&url, &mut fetched),
            Next::CaughtUp => return (processed, marker, fetched),
        }
    }
}

fn ids(entries: &[FeedEntry]) -> Vec<String> {
    entries.iter().map(|entry| entry.id.clone()).collect()
}

#[test]
fn first_sync_then_resume_in_every_layout() {
    let layouts = [
        Layout::Numbered { with_first: true },
        Layout::Numbered { with_first: false },
        Layout::Opaque,
    ];
    for layout in layouts {
        let all = entries(13);
        let publisher = publish(&all[..10], 3, layout);
        let (processed, marker, _) = sync(&publisher, None);
        assert_eq!(processed, ids(&all[..10]), "first sync");
        let marker = marker.unwrap();
        assert_eq!(marker.last_entry_id, all[9].id);
        assert_eq!(marker.page, page_url(layout, 4));

        // Three more changes: page 4 (recent) fills up and page 5 starts.
        let publisher = publish(&all, 3, layout);
        let (processed, marker, fetched) = sync(&publisher, Some(marker));
        assert_eq!(processed, ids(&all[10..]), "resume");
        assert_eq!(fetched, vec![page_url(layout, 4), page_url(layout, 5)]);
        assert_eq!(marker.unwrap().last_entry_id, all[12].id);
    }
}

#[test]
fn first_sync_routes() {
    let all = entries(10);
    let recent_of = |layout| {
        let publisher = publish(&all, 3, layout);
        parse_page(&publisher.pages[&publisher.recent])
            .unwrap()
            .links
    };
    let route = |layout| match first_sync_step(&recent_of(layout)) {
        FirstSyncStep::Fetch { via, .. } => via,
        FirstSyncStep::ReadFromHere => panic!("recent is not the oldest page"),
    };
    assert_eq!(
        route(Layout::Numbered { with_first: true }),
        StartRoute::FirstLink
    );
    assert_eq!(
        route(Layout::Numbered { with_first: false }),
        StartRoute::NumberedLayout
    );
    assert_eq!(route(Layout::Opaque), StartRoute::PrevArchive);
}

#[test]
fn a_single_page_feed_and_an_empty_feed() {
    let all = entries(2);
    let (processed, marker, fetched) = sync(&publish(&all, 5, Layout::Opaque), None);
    assert_eq!(processed, ids(&all));
    assert_eq!(fetched.len(), 1);
    assert_eq!(marker.unwrap().last_entry_id, all[1].id);

    let (processed, marker, _) = sync(
        &publish(&[], 5, Layout::Numbered { with_first: false }),
        None,
    );
    assert!(processed.is_empty());
    assert_eq!(marker, None);
}

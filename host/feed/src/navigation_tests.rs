//! Unit tests of the navigation decisions.

use super::*;

const BASE: &str = "http://parent/openmrs/ws/atomfeed/patient";

fn url(page: &str) -> String {
    format!("{BASE}/{page}")
}

fn recent(via: u64) -> PageLinks {
    PageLinks {
        self_: Some(url("recent")),
        via: Some(url(&via.to_string())),
        first: None,
        prev_archive: (via > 1).then(|| url(&(via - 1).to_string())),
        next_archive: None,
    }
}

fn archive(number: u64) -> PageLinks {
    PageLinks {
        self_: Some(url(&number.to_string())),
        via: Some(url(&number.to_string())),
        first: None,
        prev_archive: (number > 1).then(|| url(&(number - 1).to_string())),
        next_archive: Some(url(&(number + 1).to_string())),
    }
}

#[test]
fn entries_after_the_marker_are_new() {
    let ids = [Some("a"), Some("b"), Some("c"), Some("d")];
    let reading = read_page(Some("b"), &ids, &archive(2));
    assert_eq!(reading.new_entries, 2..4);
    assert!(reading.marker_found);
    assert_eq!(reading.next, Next::Fetch(url("3")));
}

#[test]
fn marker_on_the_last_entry_of_recent_means_caught_up() {
    let ids = [Some("a"), Some("b")];
    let reading = read_page(Some("b"), &ids, &recent(3));
    assert!(reading.new_entries.is_empty());
    assert_eq!(reading.next, Next::CaughtUp);
}

#[test]
fn marker_entry_missing_from_the_page_makes_every_entry_new() {
    let ids = [Some("x"), Some("y")];
    let reading = read_page(Some("gone"), &ids, &recent(3));
    assert_eq!(reading.new_entries, 0..2);
    assert!(!reading.marker_found);
}

#[test]
fn without_a_marker_every_entry_is_new() {
    let ids = [Some("x"), None, Some("y")];
    let reading = read_page(None, &ids, &archive(1));
    assert_eq!(reading.new_entries, 0..3);
    assert!(!reading.marker_found);
}

#[test]
fn a_duplicated_marker_id_counts_from_its_first_occurrence() {
    // Never skip: if the marker was the second "a", "b" and "a" come again,
    // which is harmless; the other choice could lose "b".
    let ids = [Some("a"), Some("b"), Some("a"), Some("c")];
    let reading = read_page(Some("a"), &ids, &recent(1));
    assert_eq!(reading.new_entries, 1..4);
    assert!(reading.duplicate_ids.is_empty());
}

#[test]
fn duplicated_new_entries_are_delivered_and_reported() {
    let ids = [
        Some("a"),
        Some("b"),
        Some("b"),
        Some("c"),
        Some("b"),
        None,
        None,
    ];
    let reading = read_page(Some("a"), &ids, &recent(1));
    assert_eq!(reading.new_entries, 1..7);
    assert_eq!(reading.duplicate_ids, vec!["b".to_owned()]);
}

#[test]
fn next_archive_pointing_at_itself_is_ignored() {
    let mut links = archive(4);
    links.next_archive = links.via.clone();
    assert_eq!(read_page(None, &[], &links).next, Next::CaughtUp);
}

#[test]
fn first_sync_prefers_the_first_link() {
    let mut links = recent(5);
    links.first = Some(url("1"));
    assert_eq!(
        first_sync_step(&links),
        FirstSyncStep::Fetch {
            url: url("1"),
            via: StartRoute::FirstLink
        }
    );
    // On the first page itself, read it.
    assert_eq!(
        first_sync_step(&archive_with_first(1)),
        FirstSyncStep::ReadFromHere
    );
}

fn archive_with_first(number: u64) -> PageLinks {
    PageLinks {
        first: Some(url("1")),
        ..archive(number)
    }
}

#[test]
fn first_sync_derives_page_one_from_the_numbered_layout() {
    assert_eq!(
        first_sync_step(&recent(32)),
        FirstSyncStep::Fetch {
            url: url("1"),
            via: StartRoute::NumberedLayout
        }
    );
    assert_eq!(first_sync_step(&recent(1)), FirstSyncStep::ReadFromHere);
}

#[test]
fn first_sync_walks_prev_archive_as_a_last_resort() {
    let links = PageLinks {
        self_: Some("http://p/feed/current".into()),
        via: Some("http://p/feed/current".into()),
        prev_archive: Some("http://p/feed/archive-2024-05".into()),
        ..PageLinks::default()
    };
    assert_eq!(
        first_sync_step(&links),
        FirstSyncStep::Fetch {
            url: "http://p/feed/archive-2024-05".into(),
            via: StartRoute::PrevArchive
        }
    );
    let oldest = PageLinks {
        via: Some("http://p/feed/archive-2024-01".into()),
        next_archive: Some("http://p/feed/archive-2024-02".into()),
        ..PageLinks::default()
    };
    assert_eq!(first_sync_step(&oldest), FirstSyncStep::ReadFromHere);
}

#[test]
fn a_page_without_links_is_its_own_start() {
    assert_eq!(
        first_sync_step(&PageLinks::default()),
        FirstSyncStep::ReadFromHere
    );
}

#[test]
fn numbered_layout_needs_a_number_at_the_end() {
    assert_eq!(numbered_page(&url("32")), Some((BASE, 32)));
    assert_eq!(numbered_page(&format!("{BASE}/7?x=1")), Some((BASE, 7)));
    assert_eq!(numbered_page(&url("recent")), None);
    assert_eq!(numbered_page(&url("0")), None);
    assert_eq!(numbered_page(&url("+3")), None);
    assert_eq!(numbered_page("no-slash"), None);
}

#[test]
fn marker_pages_by_number_or_url() {
    assert_eq!(marker_page_url(&url("recent"), "7"), url("7"));
    assert_eq!(
        marker_page_url(&format!("{}/", url("recent")), "7"),
        url("7")
    );
    assert_eq!(marker_page_url(&url("recent"), &url("3")), url("3"));
}

#[test]
fn the_marker_after_a_page_uses_via_and_the_last_id() {
    let ids = [Some("a"), Some("b"), None];
    let marker = Marker::after_page(&recent(3), &ids).unwrap();
    assert_eq!(
        marker,
        Marker {
            page: url("3"),
            last_entry_id: "b".into()
        }
    );
    assert_eq!(Marker::after_page(&recent(3), &[None]), None);
    assert_eq!(Marker::after_page(&PageLinks::default(), &ids), None);
}

#[test]
fn a_marker_survives_the_recent_page_being_archived() {
    // Read recent (via /3) up to "c"; later /3 is full and archived, /4 is recent.
    let marker = Marker::after_page(&recent(3), &[Some("b"), Some("c")]).unwrap();
    assert_eq!(marker.page, url("3"));
    let archived = archive(3);
    let reading = read_page(
        Some(&marker.last_entry_id),
        &[Some("b"), Some("c"), Some("d")],
        &archived,
    );
    assert_eq!(reading.new_entries, 2..3);
    assert_eq!(reading.next, Next::Fetch(url("4")));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn ids() -> impl Strategy<Value = Vec<Option<String>>> {
        // A small alphabet so that duplicates and marker hits are common.
        proptest::collection::vec(proptest::option::weighted(0.9, "[a-e]"), 0..12)
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn new_entries_never_skip_anything_after_the_marker(
            ids in ids(),
            marker in proptest::option::of("[a-f]"),
        ) {
            let ids: Vec<Option<&str>> = ids.iter().map(Option::as_deref).collect();
            let reading = read_page(marker.as_deref(), &ids, &recent(2));
            // Always a suffix of the page.
            prop_assert_eq!(reading.new_entries.end, ids.len());
            let start = reading.new_entries.start;
            match marker.as_deref() {
                Some(marker) if ids.contains(&Some(marker)) => {
                    prop_assert!(reading.marker_found);
                    // Right after the first occurrence: nothing after it is skipped.
                    prop_assert_eq!(ids[start - 1], Some(marker));
                    prop_assert!(!ids[..start - 1].contains(&Some(marker)));
                }
                _ => {
                    prop_assert!(!reading.marker_found);
                    prop_assert_eq!(start, 0);
                }
            }
            for id in &reading.duplicate_ids {
                let count = ids[start..].iter().filter(|other| **other == Some(id.as_str())).count();
                prop_assert!(count > 1);
            }
        }
    }
}

//! A parent whose paging links form cycles, through `next-archive`, `first` or `prev-archive`:
//! the child reads each page of a run once, fails the run with `feed cycle at <url>`, keeps
//! what it committed before the cycle, backs off, and stays alive.

#[path = "support_faults/mod.rs"]
mod support;

use std::time::Duration;

use sync_host_store::store::ResourceKey;

use support::hostile::*;
use support::nodes::{openmrs_child, store};
use support::openmrs::OpenMrs;
use support::pages::LINK_ORIGIN;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_through_next_archive_fails_the_run_at_the_repeated_page() -> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    for n in 0..15 {
        publish_location(&server, n, location(n));
    }
    // Pages 1, 2 and 3 (recent); page 3 sends the reader back to page 1.
    let recent = page_text(&server, "location", "recent").await?;
    let cyclic = with_link(&recent, "next-archive", "location/1");
    server.override_page("location", "3", Some(cyclic.clone()));
    server.clear_log();
    let dir = tempfile::tempdir()?;
    let network = openmrs_child(dir.path(), &server, &["location"], "").await?;
    let error = network
        .sync_round()
        .await
        .expect_err("a cycle fails the run")
        .to_string();
    assert!(
        error.contains("feed cycle at") && error.contains("location/1"),
        "{error}"
    );
    // What was read before the cycle is committed; the marker is on the last page read.
    assert!((0..15).all(|n| holds(&network, &ResourceKey::rest("location", uuid(n)))));
    let at = marker(&network, "location").expect("a marker");
    assert_eq!(
        (at.entry_id.as_str(), at.page.as_deref()),
        (entry_id(14).as_str(), Some("location/3"))
    );
    let requests = server.feed_requests("location").len();
    assert!(requests <= 4, "the reader read {requests} pages");

    // The scheduler reports the cycle and backs off instead of spinning.
    server.clear_log();
    let failure = scheduled_failure(&network).await;
    assert!(failure.contains("feed cycle at"), "{failure}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = server.feed_requests("location").len();
    assert!(
        requests <= 4,
        "{requests} page requests in one failed run and its backoff"
    );
    // Entries of the loop's pages may be delivered again (at least once), never lost.
    assert!(marker(&network, "location").is_some());
    assert_eq!(store(&network, "clinic").change_count(None)?, 15);
    assert_alive(&network).await?;
    network.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_through_first_links_stops_the_first_sync() -> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    for n in 0..15 {
        publish_location(&server, n, location(n));
    }
    // recent -first-> 2 -first-> 1 -first-> 2: a three-page loop that never reaches a start.
    let recent = page_text(&server, "location", "recent").await?;
    let two = page_text(&server, "location", "2").await?;
    let one = page_text(&server, "location", "1").await?;
    server.override_page(
        "location",
        "recent",
        Some(with_link(&recent, "first", "location/2")),
    );
    server.override_page(
        "location",
        "2",
        Some(with_link(&two, "first", "location/1")),
    );
    server.override_page(
        "location",
        "1",
        Some(with_link(&one, "first", "location/2")),
    );
    server.clear_log();
    let dir = tempfile::tempdir()?;
    let network = openmrs_child(dir.path(), &server, &["location"], "").await?;
    let error = network
        .sync_round()
        .await
        .expect_err("the walk fails")
        .to_string();
    assert!(
        error.contains("feed cycle at") && error.contains("location/2"),
        "{error}"
    );
    assert_eq!(marker(&network, "location"), None);
    assert_eq!(store(&network, "clinic").change_count(None)?, 0);
    assert!(server.feed_requests("location").len() <= 4);
    assert_alive(&network).await?;
    network.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_through_prev_archive_stops_the_first_sync() -> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    for n in 0..15 {
        publish_location(&server, n, location(n));
    }
    // Pages that do not name themselves by number leave the reader only `prev-archive` to
    // find the oldest page; page 1 points back at recent: recent -> 2 -> 1 -> recent.
    let unnumbered = |text: String, n: u64| {
        let via = |name: &str| {
            format!(r#"rel="via" type="application/atom+xml" href="{LINK_ORIGIN}/location/{name}""#)
        };
        text.replace(&via(&n.to_string()), &via(&format!("page-{n}")))
    };
    let recent = unnumbered(page_text(&server, "location", "recent").await?, 3);
    let two = unnumbered(page_text(&server, "location", "2").await?, 2);
    let one = unnumbered(page_text(&server, "location", "1").await?, 1);
    let one = with_link(&one, "prev-archive", "location/recent");
    assert!(!recent.contains("location/3\""), "the via link was renamed");
    server.override_page("location", "recent", Some(recent));
    server.override_page("location", "2", Some(two));
    server.override_page("location", "1", Some(one));
    server.clear_log();
    let dir = tempfile::tempdir()?;
    let network = openmrs_child(dir.path(), &server, &["location"], "").await?;
    let error = network
        .sync_round()
        .await
        .expect_err("the walk fails")
        .to_string();
    assert!(
        error.contains("feed cycle at") && error.contains("location/recent"),
        "{error}"
    );
    assert_eq!(marker(&network, "location"), None);
    assert_eq!(store(&network, "clinic").change_count(None)?, 0);
    assert_eq!(
        server.feed_requests("location"),
        ["recent", "2?count=1000", "1?count=1000"]
    );
    assert_alive(&network).await?;
    network.shutdown().await;
    Ok(())
}

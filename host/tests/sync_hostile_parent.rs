//! A hostile parent on loopback: resources nested thousands of levels deep (REST and FHIR),
//! feed entries nested deeper than any Atom page needs, entries far larger than an audit record
//! should be, paging links that form cycles, and pages over the size cap. The child audits
//! each bad event as failed and moves its marker on, fails a run on a bad page without moving
//! its marker, keeps what it stores about hostile text bounded, and stays alive throughout.

#[path = "support_faults/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use sync_host::audit::AuditRecord;
use sync_host::audit::excerpt::MAX_KEPT_BYTES;
use sync_host::network::Network;
use sync_host::state::{Marker, MarkerKey};
use sync_host::sync::retry::FailureKind;
use sync_host_store::store::ResourceKey;

use support::nodes::{
    audit, describe, failure_of, handle, node, openmrs_child, restart_with, store,
};
use support::openmrs::{CONTEXT, OpenMrs, Served};
use support::pages::{FeedEntry, LINK_ORIGIN, Shape};

const REST_JSON: &str = "application/json";
const FHIR_JSON: &str = "application/fhir+json";
/// Far deeper than a thread's stack could follow, and still only some 100 KB.
const LEVELS: usize = 50_000;

fn entry_id(n: u64) -> String {
    format!("tag:atomfeed.ict4h.org:0000dead-0000-4000-8000-{n:012x}")
}

fn uuid(n: u64) -> String {
    format!("0e5711e0-0000-4000-8000-{n:012x}")
}

fn nested(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

/// Publishes location `n` with `body` as its REST document.
fn publish_location(server: &OpenMrs, n: u64, body: String) {
    let path = format!("/ws/rest/v1/location/{}", uuid(n));
    server.serve(&path, Served::json(REST_JSON, body));
    let rest = format!("{path}?v=full");
    server.publish(
        "location",
        FeedEntry::json_links(&entry_id(n), Some(&rest), None),
    );
}

fn location(n: u64) -> String {
    format!(
        r#"{{"uuid":"{}","display":"Clinic {n}","retired":false}}"#,
        uuid(n)
    )
}

/// Publishes patient `n` with `body` as its FHIR resource (fetched by an `_id` search).
fn publish_patient(server: &OpenMrs, n: u64, body: String) {
    let path = format!("/ws/fhir2/R4/Patient/{}", uuid(n));
    server.serve(&path, Served::json(FHIR_JSON, body));
    server.publish(
        "patient",
        FeedEntry::json_links(&entry_id(n), None, Some(&path)),
    );
}

fn patient(n: u64, extension: &str) -> String {
    format!(
        r#"{{"resourceType":"Patient","id":"{}","extension":{extension},"name":[{{"family":"P{n}"}}]}}"#,
        uuid(n)
    )
}

fn holds(network: &Network, key: &ResourceKey) -> bool {
    store(network, "clinic")
        .read(key)
        .expect("store read")
        .is_some_and(|r| r.body.is_some())
}

fn marker(network: &Network, feed: &str) -> Option<Marker> {
    let key = MarkerKey {
        parent_node: "openmrs".into(),
        feed: feed.into(),
    };
    handle(network, "clinic")
        .state
        .marker(&key)
        .expect("marker read")
}

fn records_for(network: &Network, event: &str) -> Vec<AuditRecord> {
    audit(handle(network, "clinic"))
        .into_iter()
        .filter(|r| r.event_id.as_deref() == Some(event))
        .collect()
}

/// The one record of event `event`, which failed as invalid; its message.
fn invalid_failure(network: &Network, event: &str) -> String {
    let records = records_for(network, event);
    assert_eq!(records.len(), 1, "{}", describe(&records));
    let (kind, _, message) = failure_of(&records[0])
        .unwrap_or_else(|| panic!("{event} did not fail: {:?}", records[0].outcome));
    assert_eq!(kind, FailureKind::Invalid, "{message}");
    message.to_string()
}

/// The node answers its admin API.
async fn assert_alive(network: &Network) -> anyhow::Result<()> {
    let clinic = node(network, "clinic");
    let status = reqwest::Client::new()
        .get(format!("{}/admin/status", clinic.running.base_url()))
        .bearer_auth(&clinic.admin_token)
        .send()
        .await?
        .status();
    assert_eq!(status, 200, "the node's admin API answers");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_resources_and_entries_fail_alone_and_the_marker_moves_on() -> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    publish_location(&server, 0, location(0));
    let deep_rest = format!(r#"{{"uuid":"{}","tags":{}}}"#, uuid(1), nested(LEVELS));
    publish_location(&server, 1, deep_rest);
    let deep_xml = format!("{}{}", "<x>".repeat(LEVELS), "</x>".repeat(LEVELS));
    let deep_entry = format!(
        r#"{{"rest":"/ws/rest/v1/location/{}"}}]]>{deep_xml}<![CDATA["#,
        uuid(2)
    );
    server.publish(
        "location",
        FeedEntry::raw_content(&entry_id(2), &deep_entry, Shape::JsonLinks),
    );
    publish_location(&server, 3, location(3));
    publish_patient(&server, 10, patient(10, "[]"));
    publish_patient(&server, 11, patient(11, &nested(LEVELS)));
    publish_patient(&server, 12, patient(12, "[]"));

    let dir = tempfile::tempdir()?;
    let network = openmrs_child(dir.path(), &server, &["location", "patient"], "").await?;
    network.sync_round().await?;
    for key in [
        ResourceKey::rest("location", uuid(0)),
        ResourceKey::rest("location", uuid(3)),
        ResourceKey::fhir("Patient", uuid(10)),
        ResourceKey::fhir("Patient", uuid(12)),
    ] {
        assert!(
            holds(&network, &key),
            "{key:?} is applied despite its neighbours"
        );
    }
    for (event, reason) in [
        (entry_id(1), "nested deeper than"),
        (entry_id(11), "nested deeper than"),
        (entry_id(2), "nests elements deeper than"),
    ] {
        let message = invalid_failure(&network, &event);
        assert!(message.contains(reason), "{event}: {message}");
        assert!(
            message.len() < 2 * MAX_KEPT_BYTES,
            "{event}: {} bytes",
            message.len()
        );
    }
    assert!(!holds(&network, &ResourceKey::rest("location", uuid(1))));
    assert!(!holds(&network, &ResourceKey::fhir("Patient", uuid(11))));
    // The parked entry keeps a bounded excerpt of its raw text, not all of it.
    let dead = handle(&network, "clinic").state.dead_letters(100)?;
    let parked = dead
        .iter()
        .find(|d| d.event_id == entry_id(2))
        .expect("parked");
    let raw = parked.event["raw"].as_str().unwrap_or_default();
    assert!(
        raw.len() < MAX_KEPT_BYTES + 200 && raw.contains("truncated"),
        "{} bytes",
        raw.len()
    );
    assert_eq!(
        marker(&network, "location").map(|m| m.entry_id),
        Some(entry_id(3))
    );
    assert_eq!(
        marker(&network, "patient").map(|m| m.entry_id),
        Some(entry_id(12))
    );

    // The next round neither crashes nor repeats what was settled, and news still flows.
    publish_location(&server, 4, location(4));
    network.sync_round().await?;
    assert!(holds(&network, &ResourceKey::rest("location", uuid(4))));
    assert_alive(&network).await?;
    network.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_entry_leaves_a_bounded_audit() -> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    publish_location(&server, 0, location(0));
    let junk = "not a link ".repeat(300_000);
    server.publish(
        "location",
        FeedEntry::raw_content(&entry_id(1), &junk, Shape::JsonLinks),
    );
    publish_location(&server, 2, location(2));
    let dir = tempfile::tempdir()?;
    let network = openmrs_child(dir.path(), &server, &["location"], "").await?;
    network.sync_round().await?;
    let message = invalid_failure(&network, &entry_id(1));
    assert!(
        message.contains("malformed feed entry"),
        "{}",
        &message[..200]
    );
    assert!(
        message.len() < 3 * MAX_KEPT_BYTES,
        "{} bytes kept of {}",
        message.len(),
        junk.len()
    );
    // Nothing the node keeps about the entry is anywhere near its 3 MB.
    let clinic = handle(&network, "clinic");
    let kept: usize = audit(clinic)
        .iter()
        .map(|r| serde_json::to_string(r).map_or(0, |t| t.len()))
        .chain(
            clinic
                .state
                .dead_letters(100)?
                .iter()
                .map(|d| d.event.to_string().len()),
        )
        .sum();
    assert!(
        kept < 8 * MAX_KEPT_BYTES,
        "audit and dead letters hold {kept} bytes"
    );
    assert!(holds(&network, &ResourceKey::rest("location", uuid(2))));
    assert_eq!(
        marker(&network, "location").map(|m| m.entry_id),
        Some(entry_id(2))
    );
    assert_alive(&network).await?;
    network.shutdown().await;
    Ok(())
}

/// The page `page` of `category` as the parent renders it now.
async fn page_text(server: &OpenMrs, category: &str, page: &str) -> anyhow::Result<String> {
    let url = format!("{}/ws/atomfeed/{category}/{page}", server.base_url);
    Ok(reqwest::get(url).await?.error_for_status()?.text().await?)
}

/// `text` with one more `<link rel=... href=LINK_ORIGIN/{target}>` after its `<title>`.
fn with_link(text: &str, rel: &str, target: &str) -> String {
    let link = format!(
        r#"<link rel="{rel}" type="application/atom+xml" href="{LINK_ORIGIN}/{target}" />"#
    );
    text.replacen("</title>", &format!("</title>\n  {link}"), 1)
}

/// Runs the clinic's scheduler once and returns the failure it reports.
async fn scheduled_failure(network: &Network) -> String {
    let (trigger, status) = handle(network, "clinic").pull.clone().expect("pull runs");
    trigger.fire();
    let started = Instant::now();
    loop {
        if let Some((_, message)) = status.snapshot().last_failure {
            return message;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no failure reported"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

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
async fn a_page_over_the_size_cap_is_refused() -> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    for n in 0..3 {
        publish_location(&server, n, location(n));
    }
    let dir = tempfile::tempdir()?;
    let mut network = openmrs_child(dir.path(), &server, &["location"], "").await?;
    restart_with(&mut network, "clinic", |text| {
        text.replacen("[sync]\n", "[sync]\nmax_feed_page_mib = 1\n", 1)
    })
    .await?;
    let recent = page_text(&server, "location", "recent").await?;
    let padded = recent.replacen(
        "</title>",
        &format!("</title><!--{}-->", "x".repeat(2 << 20)),
        1,
    );
    server.override_page("location", "recent", Some(padded));
    let error = network
        .sync_round()
        .await
        .expect_err("too large")
        .to_string();
    assert!(error.contains("larger than 1048576 bytes"), "{error}");
    assert_eq!(marker(&network, "location"), None);
    assert_eq!(store(&network, "clinic").change_count(None)?, 0);

    server.override_page("location", "recent", None);
    network.sync_round().await?;
    assert!(holds(&network, &ResourceKey::rest("location", uuid(2))));
    assert!(server.log().iter().all(|r| r.target.starts_with(CONTEXT)));
    assert_alive(&network).await?;
    network.shutdown().await;
    Ok(())
}

//! Bad input from an OpenMRS-shaped parent: a page that is not XML, an entry whose content
//! cannot be read, a link to a missing resource, a body that is not JSON, and a body larger
//! than the plugin response cap. Each leaves a clear audit record (or a reported run error for
//! a page), never moves the marker past what was not read, and leaves the node alive.

#[path = "support_faults/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use sync_host::audit::{AuditRecord, Outcome};
use sync_host::network::Network;
use sync_host::state::{Marker, MarkerKey};
use sync_host::sync::retry::FailureKind;
use sync_host_store::store::ResourceKey;

use support::nodes::{audit, audit_of, describe, failure_of, handle, node, openmrs_child, store};
use support::openmrs::{CONTEXT, OpenMrs, Served};
use support::pages::{FeedEntry, Shape, fixture};

const REST_JSON: &str = "application/json";
const LOCATION_UUID: &str = "9a462730-d666-4518-b1d6-1c0620a9027c";

fn entry_id(n: u64) -> String {
    format!("tag:atomfeed.ict4h.org:0000beef-0000-4000-8000-{n:012x}")
}

fn location_id(n: u64) -> String {
    format!("10ca7100-0000-4000-8000-{n:012x}")
}

fn location_path(n: u64) -> String {
    format!("/ws/rest/v1/location/{}", location_id(n))
}

/// Publishes location `n` in the JSON-links shape; `body` is served for it when given.
fn publish_location(server: &OpenMrs, n: u64, body: Option<Served>) {
    if let Some(body) = body {
        server.serve(&location_path(n), body);
    }
    let rest = format!("{}?v=full", location_path(n));
    server.publish(
        "location",
        FeedEntry::json_links(&entry_id(n), Some(&rest), None),
    );
}

/// The location fixture rewritten to be location `n`.
fn good_location(n: u64) -> Served {
    let body = fixture("webservices.rest/create_location_from_get.json")
        .replace(LOCATION_UUID, &location_id(n));
    Served::json(REST_JSON, body)
}

fn location_key(n: u64) -> ResourceKey {
    ResourceKey::rest("location", location_id(n))
}

fn holds(network: &Network, n: u64) -> bool {
    store(network, "clinic")
        .read(&location_key(n))
        .expect("store read")
        .is_some_and(|r| r.body.is_some())
}

fn marker(network: &Network) -> Option<Marker> {
    let key = MarkerKey {
        parent_node: "openmrs".into(),
        feed: "location".into(),
    };
    handle(network, "clinic")
        .state
        .marker(&key)
        .expect("marker read")
}

/// The node answers its admin API: it is alive and serving.
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

fn records_of(network: &Network, n: u64) -> Vec<AuditRecord> {
    audit_of(handle(network, "clinic"), "location", &location_id(n))
}

/// The single `Failed` record of location `n`: (kind, attempt, message).
fn only_failure(network: &Network, n: u64) -> (FailureKind, u32, String) {
    let records = records_of(network, n);
    assert_eq!(records.len(), 1, "one record:\n  {}", describe(&records));
    let (kind, attempt, message) = failure_of(&records[0])
        .unwrap_or_else(|| panic!("location {n} did not fail: {:?}", records[0].outcome));
    (kind, attempt, message.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_is_not_xml_stops_the_run_and_keeps_the_marker() -> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    for n in 0..5 {
        publish_location(&server, n, Some(good_location(n)));
    }
    let dir = tempfile::tempdir()?;
    let network = openmrs_child(dir.path(), &server, &["location"], "").await?;
    network.sync_round().await?;
    let after_page_one = marker(&network).expect("a marker after page 1");
    assert_eq!(after_page_one.entry_id, entry_id(4));
    assert_eq!(after_page_one.page.as_deref(), Some("location/1"));

    for n in 5..10 {
        publish_location(&server, n, Some(good_location(n)));
    }
    let garbage = "Service temporarily unavailable; try again later".to_string();
    server.override_page("location", "2", Some(garbage.clone()));
    server.override_page("location", "recent", Some(garbage));
    let error = network
        .sync_round()
        .await
        .expect_err("a page that is not XML fails the run")
        .to_string();
    assert!(
        error.contains("malformed") && error.contains("location/2"),
        "the error names the page: {error}"
    );
    assert_eq!(marker(&network), Some(after_page_one.clone()));
    assert!((5..10).all(|n| !holds(&network, n)));
    assert_alive(&network).await?;

    // The publisher recovers: the same page is read from where the marker stayed.
    server.override_page("location", "2", None);
    server.override_page("location", "recent", None);
    let round = network.sync_round().await?;
    assert_eq!(round.applied(), 5);
    assert!((0..10).all(|n| holds(&network, n)));
    let moved = marker(&network).expect("marker");
    assert_eq!(moved.entry_id, entry_id(9));
    assert_eq!(moved.page.as_deref(), Some("location/2"));

    // The scheduler reports a bad page in the node's status, and the node keeps running.
    publish_location(&server, 10, Some(good_location(10)));
    let html = "<html><body><h1>502 Bad Gateway</h1></body></html>".to_string();
    server.override_page("location", "3", Some(html.clone()));
    server.override_page("location", "recent", Some(html));
    let (trigger, status) = handle(&network, "clinic").pull.clone().expect("pull runs");
    trigger.fire();
    let started = Instant::now();
    let failure = loop {
        if let Some((_, message)) = status.snapshot().last_failure {
            break message;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no failure reported"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        failure.contains("location/3"),
        "status names the page: {failure}"
    );
    assert_eq!(marker(&network), Some(moved));
    assert!(!holds(&network, 10));
    assert_alive(&network).await?;
    network.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_entries_and_bodies_are_audited_and_the_rest_of_the_page_applies()
-> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    publish_location(&server, 0, Some(good_location(0)));
    let broken = r#"{"rest":"/ws/rest/v1/location/10ca7100-0000"#;
    server.publish(
        "location",
        FeedEntry::raw_content(&entry_id(1), broken, Shape::JsonLinks),
    );
    publish_location(&server, 2, Some(good_location(2)));
    let html = Served::json("text/html", "<html><body>Login required</body></html>");
    publish_location(&server, 3, Some(html));
    let huge = format!(
        r#"{{"uuid":"{}","display":"Huge","description":"{}"}}"#,
        location_id(4),
        "x".repeat(2 * 1024 * 1024)
    );
    publish_location(&server, 4, Some(Served::json(REST_JSON, huge)));
    publish_location(&server, 5, Some(good_location(5)));

    let dir = tempfile::tempdir()?;
    let extra = "[plugins]\nmax_response_mib = 1\n";
    let network = openmrs_child(dir.path(), &server, &["location"], extra).await?;
    network.sync_round().await?;
    let clinic = handle(&network, "clinic");
    for n in [0, 2, 5] {
        assert!(
            holds(&network, n),
            "location {n} is applied despite its neighbours"
        );
    }

    // An entry whose content is not readable: failed, parked, its raw text kept.
    let unreadable: Vec<AuditRecord> = audit(clinic)
        .into_iter()
        .filter(|r| r.event_id.as_deref() == Some(entry_id(1).as_str()))
        .collect();
    assert_eq!(unreadable.len(), 1, "{}", describe(&unreadable));
    let (kind, _, message) = failure_of(&unreadable[0]).expect("a failed record");
    assert_eq!(kind, FailureKind::Invalid);
    assert!(message.contains("malformed feed entry"), "{message}");
    assert!(message.contains(broken), "the raw entry is kept: {message}");
    let dead = clinic.state.dead_letters(100)?;
    let parked = dead
        .iter()
        .find(|d| d.event_id == entry_id(1))
        .expect("the unreadable entry is a dead letter");
    assert!(
        parked.event["raw"]
            .as_str()
            .is_some_and(|raw| raw.contains(broken))
    );

    // A body that is not JSON, and one over the response cap: failed as invalid, parked.
    let (kind, _, message) = only_failure(&network, 3);
    assert_eq!(kind, FailureKind::Invalid);
    assert!(message.contains("not a JSON document"), "{message}");
    let (kind, _, message) = only_failure(&network, 4);
    assert_eq!(kind, FailureKind::Invalid);
    assert!(message.contains("larger than 1048576 bytes"), "{message}");
    for n in [3, 4] {
        assert!(!holds(&network, n));
        assert!(
            dead.iter().any(|d| d.key.resource_id == location_id(n)),
            "location {n} is a dead letter"
        );
    }

    // Failed entries never hold the feed back: the marker is at the end, and news flows.
    assert_eq!(marker(&network).map(|m| m.entry_id), Some(entry_id(5)));
    publish_location(&server, 6, Some(good_location(6)));
    network.sync_round().await?;
    assert!(holds(&network, 6));
    assert_alive(&network).await?;
    network.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_resource_fails_as_not_found_and_is_retried_until_it_appears()
-> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    publish_location(&server, 0, Some(good_location(0)));
    publish_location(&server, 1, None);
    publish_location(&server, 2, Some(good_location(2)));
    let dir = tempfile::tempdir()?;
    let network = openmrs_child(dir.path(), &server, &["location"], "").await?;
    network.sync_round().await?;
    assert!(holds(&network, 0) && holds(&network, 2));
    let (kind, attempt, _) = only_failure(&network, 1);
    assert_eq!((kind, attempt), (FailureKind::NotFound, 1));
    let clinic = handle(&network, "clinic");
    assert!(
        clinic
            .state
            .retry_queue()?
            .iter()
            .any(|r| r.key.resource_id == location_id(1)),
        "a 404 on pull is queued for a retry"
    );

    // Retries come by themselves once due (the test config backs off from 1 s).
    let second_attempt = |network: &Network| {
        records_of(network, 1)
            .iter()
            .any(|r| failure_of(r).is_some_and(|(_, attempt, _)| attempt == 2))
    };
    sync_until(&network, second_attempt, Duration::from_secs(15)).await?;
    let resource_requests = server
        .log()
        .iter()
        .filter(|r| {
            r.target
                .starts_with(&format!("{CONTEXT}{}", location_path(1)))
        })
        .count();
    assert_eq!(
        resource_requests, 2,
        "the missing document was asked for twice"
    );

    server.serve(&location_path(1), good_location(1));
    sync_until(&network, |n| holds(n, 1), Duration::from_secs(20)).await?;
    let records = records_of(&network, 1);
    let outcomes: Vec<_> = records.iter().map(|r| r.outcome.kind()).collect();
    assert!(
        records
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Settled { .. })),
        "the earlier failures are settled:\n  {}",
        describe(&records)
    );
    assert!(
        records.iter().any(|r| r.outcome == Outcome::Applied),
        "{outcomes:?}"
    );
    assert!(
        clinic.state.retry_queue()?.is_empty(),
        "nothing is left to retry"
    );
    assert_alive(&network).await?;
    network.shutdown().await;
    Ok(())
}

/// Runs sync rounds until `done` holds, at most `limit` long.
async fn sync_until(
    network: &Network,
    done: impl Fn(&Network) -> bool,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    while !done(network) {
        anyhow::ensure!(started.elapsed() < limit, "gave up after {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        network.sync_round().await?;
    }
    Ok(())
}

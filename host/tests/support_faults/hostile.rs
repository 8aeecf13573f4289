//! A hostile parent's building blocks for the end-to-end tests: locations and patients
//! published on the OpenMRS-shaped server with any body, pages rewritten with extra links, and
//! what the child made of them (store, marker, audit, scheduler status).

use std::time::{Duration, Instant};

use sync_host::audit::AuditRecord;
use sync_host::network::Network;
use sync_host::state::{Marker, MarkerKey};
use sync_host::sync::retry::FailureKind;
use sync_host_store::store::ResourceKey;

use super::nodes::{audit, describe, failure_of, handle, node, store};
use super::openmrs::{OpenMrs, Served};
use super::pages::{FeedEntry, LINK_ORIGIN};

pub const REST_JSON: &str = "application/json";
pub const FHIR_JSON: &str = "application/fhir+json";
/// Far deeper than a thread's stack could follow, and still only some 100 KB.
pub const LEVELS: usize = 50_000;

pub fn entry_id(n: u64) -> String {
    format!("tag:atomfeed.ict4h.org:0000dead-0000-4000-8000-{n:012x}")
}

pub fn uuid(n: u64) -> String {
    format!("0e5711e0-0000-4000-8000-{n:012x}")
}

pub fn nested(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

/// Publishes location `n` with `body` as its REST document.
pub fn publish_location(server: &OpenMrs, n: u64, body: String) {
    let path = format!("/ws/rest/v1/location/{}", uuid(n));
    server.serve(&path, Served::json(REST_JSON, body));
    let rest = format!("{path}?v=full");
    server.publish(
        "location",
        FeedEntry::json_links(&entry_id(n), Some(&rest), None),
    );
}

pub fn location(n: u64) -> String {
    format!(
        r#"{{"uuid":"{}","display":"Clinic {n}","retired":false}}"#,
        uuid(n)
    )
}

/// Publishes patient `n` with `body` as its FHIR resource (fetched by an `_id` search).
pub fn publish_patient(server: &OpenMrs, n: u64, body: String) {
    let path = format!("/ws/fhir2/R4/Patient/{}", uuid(n));
    server.serve(&path, Served::json(FHIR_JSON, body));
    server.publish(
        "patient",
        FeedEntry::json_links(&entry_id(n), None, Some(&path)),
    );
}

pub fn patient(n: u64, extension: &str) -> String {
    format!(
        r#"{{"resourceType":"Patient","id":"{}","extension":{extension},"name":[{{"family":"P{n}"}}]}}"#,
        uuid(n)
    )
}

pub fn holds(network: &Network, key: &ResourceKey) -> bool {
    store(network, "clinic")
        .read(key)
        .expect("store read")
        .is_some_and(|r| r.body.is_some())
}

pub fn marker(network: &Network, feed: &str) -> Option<Marker> {
    let key = MarkerKey {
        parent_node: "openmrs".into(),
        feed: feed.into(),
    };
    handle(network, "clinic")
        .state
        .marker(&key)
        .expect("marker read")
}

pub fn records_for(network: &Network, event: &str) -> Vec<AuditRecord> {
    audit(handle(network, "clinic"))
        .into_iter()
        .filter(|r| r.event_id.as_deref() == Some(event))
        .collect()
}

/// The one record of event `event`, which failed as invalid; its message.
pub fn invalid_failure(network: &Network, event: &str) -> String {
    let records = records_for(network, event);
    assert_eq!(records.len(), 1, "{}", describe(&records));
    let (kind, _, message) = failure_of(&records[0])
        .unwrap_or_else(|| panic!("{event} did not fail: {:?}", records[0].outcome));
    assert_eq!(kind, FailureKind::Invalid, "{message}");
    message.to_string()
}

/// The node answers its admin API.
pub async fn assert_alive(network: &Network) -> anyhow::Result<()> {
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

/// The page `page` of `category` as the parent renders it now.
pub async fn page_text(server: &OpenMrs, category: &str, page: &str) -> anyhow::Result<String> {
    let url = format!("{}/ws/atomfeed/{category}/{page}", server.base_url);
    Ok(reqwest::get(url).await?.error_for_status()?.text().await?)
}

/// `text` with one more `<link rel=... href=LINK_ORIGIN/{target}>` after its `<title>`.
pub fn with_link(text: &str, rel: &str, target: &str) -> String {
    let link = format!(
        r#"<link rel="{rel}" type="application/atom+xml" href="{LINK_ORIGIN}/{target}" />"#
    );
    text.replacen("</title>", &format!("</title>\n  {link}"), 1)
}

/// Runs the clinic's scheduler once and returns the failure it reports.
pub async fn scheduled_failure(network: &Network) -> String {
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

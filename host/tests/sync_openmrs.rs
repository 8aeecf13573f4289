//! A child node syncing from an OpenMRS-shaped parent: per-category Atom feeds in the
//! numbered archive layout (no `first` link), bare-URL and JSON-links entries, REST documents
//! and FHIR resources behind HTTP Basic while the feed is anonymous. The child must hold every
//! linked resource exactly, start a first sync at archive page 1 without walking
//! `prev-archive`, and later re-read only the page its marker is on.

#[path = "support_faults/mod.rs"]
mod support;

use serde_json::Value;
use sync_host::audit::Outcome;
use sync_host_store::store::{Kind, ResourceKey};

use support::nodes::{audit, describe, handle, openmrs_child, store};
use support::openmrs::{CONTEXT, OpenMrs, Served};
use support::pages::{FeedEntry, fixture};

const REST_JSON: &str = "application/json;charset=UTF-8";
const FHIR_JSON: &str = "application/fhir+json;charset=UTF-8";
const FEEDS: &[&str] = &["patient", "encounter", "obs", "location"];

/// A resource the parent serves, as the child must end up holding it.
struct Published {
    key: ResourceKey,
    body: String,
}

/// A uuid that is stable across runs and distinct per (family, n).
fn uuid(family: u32, n: u64) -> String {
    format!("{family:08x}-0000-4000-8000-{n:012x}")
}

/// The fixture document with every occurrence of `original` replaced by `id`.
fn rewritten(fixture_text: &str, original: &str, id: &str) -> String {
    fixture_text.replace(original, id)
}

/// Patients in the older bare-URL shape: REST documents from the webservices.rest and
/// commcare-hq fixtures (the first two unchanged, the rest with new uuids).
fn publish_patients(server: &OpenMrs, from: u64, count: u64) -> Vec<Published> {
    let sources = [
        (
            fixture("webservices.rest/create_patient_from_get.json"),
            "a65fc361-f6ac-40ba-8485-94749c061509",
        ),
        (
            fixture("commcare-hq/voided_patient.json"),
            "94d60c79-59b5-4a2c-90a5-325d6e32b3db",
        ),
    ];
    (from..from + count)
        .map(|n| {
            let (text, original) = &sources[(n % 2) as usize];
            let id = if n < 2 {
                original.to_string()
            } else {
                uuid(0xa11ce, n)
            };
            let body = rewritten(text, original, &id);
            let path = format!("/ws/rest/v1/patient/{id}");
            server.serve(&path, Served::json(REST_JSON, body.clone()));
            let url = format!("{CONTEXT}{path}?v=full");
            server.publish(
                "patient",
                FeedEntry::bare_url(
                    &format!("tag:atomfeed.ict4h.org:{}", uuid(0xfeed1, n)),
                    &url,
                ),
            );
            Published {
                key: ResourceKey::rest("patient", id),
                body,
            }
        })
        .collect()
}

/// FHIR resources in the Sync 2.0 JSON-links shape, from the fhir2 fixtures with new ids.
fn publish_fhir(
    server: &OpenMrs,
    category: &str,
    resource_type: &str,
    fixture_file: &str,
    original_id: &str,
    count: u64,
) -> Vec<Published> {
    let text = fixture(fixture_file);
    (0..count)
        .map(|n| {
            let id = uuid(0xf0 + category.len() as u32, n);
            let body = rewritten(
                &text,
                &format!(r#""id": "{original_id}""#),
                &format!(r#""id": "{id}""#),
            );
            let fhir = format!("/ws/fhir2/R4/{resource_type}/{id}");
            server.serve(&fhir, Served::json(FHIR_JSON, body.clone()));
            let rest = format!("/ws/rest/v1/{category}/{id}?v=full");
            let entry_id = format!("tag:atomfeed.ict4h.org:{}", uuid(0xfeed2, n));
            server.publish(
                category,
                FeedEntry::json_links(&entry_id, Some(&rest), Some(&fhir)),
            );
            Published {
                key: ResourceKey::fhir(resource_type, id),
                body,
            }
        })
        .collect()
}

/// One location in the JSON-links shape with only a `rest` link.
fn publish_location(server: &OpenMrs) -> Published {
    let body = fixture("webservices.rest/create_location_from_get.json");
    let id = "9a462730-d666-4518-b1d6-1c0620a9027c";
    let path = format!("/ws/rest/v1/location/{id}");
    server.serve(&path, Served::json(REST_JSON, body.clone()));
    server.publish(
        "location",
        FeedEntry::json_links(
            "tag:atomfeed.ict4h.org:5d1b0c36-0000-4000-8000-000000000001",
            Some(&format!("{path}?v=full")),
            None,
        ),
    );
    Published {
        key: ResourceKey::rest("location", id),
        body,
    }
}

/// The text the child's store inserted into a FHIR body that the parent served, if the two
/// differ only by one contiguous insertion (the store splices its `meta` in and keeps every
/// other byte).
fn inserted_text<'a>(stored: &'a str, served: &str) -> Option<&'a str> {
    let common = |a: &mut dyn Iterator<Item = u8>, b: &mut dyn Iterator<Item = u8>| {
        a.zip(b).take_while(|(x, y)| x == y).count()
    };
    let prefix = common(&mut stored.bytes(), &mut served.bytes());
    let rest = served.len() - prefix;
    let suffix = common(
        &mut stored.bytes().rev().take(stored.len() - prefix),
        &mut served.bytes().rev().take(rest),
    );
    (prefix + suffix == served.len()).then(|| &stored[prefix..stored.len() - suffix])
}

fn assert_holds(network: &sync_host::network::Network, published: &[Published]) {
    let store = store(network, "clinic");
    for item in published {
        let record = store
            .read(&item.key)
            .expect("store read")
            .unwrap_or_else(|| panic!("the child lacks {}", item.key));
        let body = record
            .body
            .unwrap_or_else(|| panic!("{} is a tombstone", item.key));
        match item.key.kind {
            Kind::Rest => assert_eq!(body, item.body, "{} differs from the parent", item.key),
            Kind::Fhir => {
                // Whitespace around the document is not part of it (a searchset Bundle
                // carries the resource without the fixture's final newline).
                let inserted = inserted_text(&body, item.body.trim()).unwrap_or_else(|| {
                    panic!("{} differs from the parent beyond one insertion", item.key)
                });
                let meta: Value =
                    serde_json::from_str(&format!("{{{}}}", inserted.trim().trim_matches(',')))
                        .unwrap_or_else(|e| panic!("{}: inserted {inserted:?}: {e}", item.key));
                let keys: Vec<&String> = meta["meta"]
                    .as_object()
                    .map(|m| m.keys().collect())
                    .unwrap_or_default();
                assert_eq!(
                    keys,
                    ["lastUpdated", "versionId"],
                    "{}: {inserted}",
                    item.key
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_syncs_an_openmrs_parent_from_archive_page_one() -> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    let mut published = publish_patients(&server, 0, 12);
    published.extend(publish_fhir(
        &server,
        "encounter",
        "Encounter",
        "fhir2/encounter-example.json",
        "f201",
        7,
    ));
    published.extend(publish_fhir(
        &server,
        "obs",
        "Observation",
        "fhir2/observation-example.json",
        "f001",
        3,
    ));
    published.push(publish_location(&server));
    assert_eq!(server.pages("patient"), 3);
    assert_eq!(server.pages("encounter"), 2);

    let dir = tempfile::tempdir()?;
    let network = openmrs_child(dir.path(), &server, FEEDS, "").await?;
    let round = network.sync_round().await?;
    let records = audit(handle(&network, "clinic"));
    let applied = records
        .iter()
        .filter(|r| r.outcome == Outcome::Applied)
        .count();
    assert_eq!(
        applied,
        published.len(),
        "every linked resource is applied once:\n  {}",
        describe(&records)
    );
    assert_eq!(round.applied(), published.len());
    assert_holds(&network, &published);

    // First sync: `recent` tells the newest archive number, then pages 1, 2, ... in order. A
    // numbered page is asked for as the start of a span; an OpenMRS server ignores that and
    // answers with the page alone.
    assert_eq!(
        server.feed_requests("patient"),
        ["recent", "1?count=1000", "2?count=1000", "3?count=1000"]
    );
    assert_eq!(
        server.feed_requests("encounter"),
        ["recent", "1?count=1000", "2?count=1000"]
    );
    assert_eq!(server.feed_requests("obs"), ["recent"]);
    assert_eq!(server.feed_requests("location"), ["recent"]);
    let log = server.log();
    let feed = format!("{CONTEXT}/ws/atomfeed/");
    assert!(
        log.iter()
            .filter(|r| r.target.starts_with(&feed))
            .all(|r| !r.had_credentials),
        "an anonymous feed is read without credentials"
    );
    let resources: Vec<_> = log
        .iter()
        .filter(|r| !r.target.starts_with(&feed))
        .collect();
    assert!(resources.iter().all(|r| r.had_credentials));
    assert!(
        resources
            .iter()
            .filter(|r| r.target.contains("/ws/rest/v1/"))
            .all(|r| r.target.ends_with("?v=full")),
        "REST documents are read in the full representation: {resources:?}"
    );

    // A second sync re-reads only the page each marker is on, and fetches nothing.
    server.clear_log();
    let round = network.sync_round().await?;
    assert_eq!(round.applied(), 0);
    assert_eq!(server.feed_requests("patient"), ["3?count=1000"]);
    assert_eq!(server.feed_requests("encounter"), ["2?count=1000"]);
    assert_eq!(server.feed_requests("obs"), ["1?count=1000"]);
    assert_eq!(server.feed_requests("location"), ["1?count=1000"]);
    assert_eq!(server.log().len(), FEEDS.len(), "{:?}", server.log());

    // New patients fill page 3 and open page 4: the reader continues from its marker.
    server.clear_log();
    let more = publish_patients(&server, 12, 5);
    let round = network.sync_round().await?;
    assert_eq!(round.applied(), more.len());
    assert_eq!(
        server.feed_requests("patient"),
        ["3?count=1000", "4?count=1000"]
    );
    assert_holds(&network, &more);
    network.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_edit_is_not_overwritten_by_a_bare_url_update() -> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    let published = publish_patients(&server, 0, 2);
    let dir = tempfile::tempdir()?;
    let network = openmrs_child(dir.path(), &server, &["patient"], "").await?;
    network.sync_round().await?;
    assert_holds(&network, &published);

    // The clinic corrects a name while the parent changes the same patient otherwise.
    let patient = &published[0];
    let uuid = patient.key.id.clone();
    let local_edit = patient.body.replace("Jonnea Bijo", "Jonnea Bijou");
    let clinic_store = store(&network, "clinic");
    sync_host::network::sample::put_rest(clinic_store, "patient", &uuid, local_edit.clone())
        .await?;
    let parent_edit = patient
        .body
        .replace("\"preferred\":true", "\"preferred\":false");
    assert_ne!(parent_edit, patient.body);
    let path = format!("/ws/rest/v1/patient/{uuid}");
    server.serve(&path, Served::json(REST_JSON, parent_edit));
    server.publish(
        "patient",
        FeedEntry::bare_url(
            "tag:atomfeed.ict4h.org:0b3f5e2c-0000-4000-8000-000000000099",
            &format!("{CONTEXT}{path}?v=full"),
        ),
    );
    network.sync_round().await?;

    // Both sides changed since the last sync: a conflict for the operator, nothing overwritten.
    let held = clinic_store
        .read(&patient.key)?
        .and_then(|r| r.body)
        .expect("the patient is still on the clinic");
    assert!(held == local_edit, "the clinic's edit was overwritten");
    let open = handle(&network, "clinic")
        .state
        .conflicts(sync_host::state::ConflictFilter::Open, 10)?;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].resource_id, uuid);
    network.shutdown().await;
    Ok(())
}

/// An OpenMRS patient entry links both forms (`rest` and `fhir`). Routed to the REST client,
/// the document must be stored where OpenMRS serves it (`/ws/rest/v1/patient/<uuid>`, the
/// resource name of the `rest` link, not the FHIR type's spelling), so the child answers that
/// path and its own feed links it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_routed_patient_is_stored_under_its_rest_resource_name() -> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    let id = "a65fc361-f6ac-40ba-8485-94749c061509";
    let body = fixture("webservices.rest/create_patient_from_get.json");
    let rest = format!("/ws/rest/v1/patient/{id}");
    server.serve(&rest, Served::json(REST_JSON, body.clone()));
    server.publish(
        "patient",
        FeedEntry::json_links(
            "tag:atomfeed.ict4h.org:0c6c4f8e-0000-4000-8000-000000000001",
            Some(&format!("{rest}?v=full")),
            Some(&format!("/ws/fhir2/R4/Patient/{id}")),
        ),
    );
    let dir = tempfile::tempdir()?;
    let routes = "[[routes]]\nmatch = [\"patient\"]\nclient = \"rest\"\n";
    let network = openmrs_child(dir.path(), &server, &["patient"], routes).await?;
    let round = network.sync_round().await?;
    let records = audit(handle(&network, "clinic"));
    assert_eq!(round.applied(), 1, "{}", describe(&records));
    assert_eq!(
        records[0].resource_type,
        "patient",
        "{}",
        describe(&records)
    );

    let clinic = store(&network, "clinic");
    let held = clinic.read(&ResourceKey::rest("patient", id))?;
    assert_eq!(held.and_then(|r| r.body), Some(body.clone()));
    assert!(
        clinic.read(&ResourceKey::rest("Patient", id))?.is_none(),
        "nothing is stored under the FHIR type's spelling"
    );

    // Over HTTP: the OpenMRS path answers on the child, and the child's feed links it.
    let node = support::nodes::node(&network, "clinic");
    let http = reqwest::Client::new();
    let base = node.running.base_url();
    let document = http
        .get(format!("{base}{rest}"))
        .bearer_auth(&node.admin_token)
        .send()
        .await?;
    assert_eq!(document.status(), reqwest::StatusCode::OK);
    assert_eq!(document.text().await?, body);
    let feed = http
        .get(format!("{base}/ws/atomfeed/patient/recent"))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .text()
        .await?;
    assert!(
        feed.contains(&rest),
        "the child's feed links {rest}:\n{feed}"
    );
    assert!(!feed.contains("/ws/rest/v1/Patient/"), "{feed}");
    network.shutdown().await;
    Ok(())
}

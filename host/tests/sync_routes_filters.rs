//! End-to-end routing and filtering: REST-only events go through the REST client and FHIR
//! events through the FHIR client in one network; a category filter keeps a resource type
//! out of a child in both directions; a catchment filter reading OpenMRS feed-filter tags
//! keeps other districts' patients out of a child, and one given scope keys keeps a scope by
//! content in both directions; every skipped event is in the audit; an
//! OpenMRS feed split into small archive pages is read from its first entry, each once.

mod common;

use std::path::PathBuf;

use common::openmrs::{self, OpenMrs};
use common::{TestNet, fhir, rest};
use sync_host::audit::{AuditRecord, Outcome};
use sync_host::network::{NodeSpec, sample, toml_string};
use sync_host::sync::conflict::Direction;
use tokio_util::sync::CancellationToken;

fn plugin_name(record: &AuditRecord) -> &str {
    record.plugin.as_ref().map_or("", |p| p.name.as_str())
}

/// The plugin named in the applied record of `id` in `direction` on `node`.
fn applied_by(t: &TestNet, node: &str, direction: Direction, id: &str) -> String {
    let records = t.audit_for(node, direction, id);
    let applied: Vec<_> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Applied)
        .collect();
    assert_eq!(applied.len(), 1, "{node} {direction:?} {id}: {records:?}");
    plugin_name(applied[0]).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_fhir_events_take_their_own_client() -> anyhow::Result<()> {
    // `routed` names its routes; `implicit` relies on the defaults (fhir for everything,
    // rest for events that only link a REST document).
    let mut routed = NodeSpec::new("routed", Some("root"));
    routed.extra_toml =
        "\n[[routes]]\nmatch = [\"location\"]\nclient = \"rest\"\n\n[[routes]]\nmatch = [\"*\"]\nclient = \"fhir\"\n"
            .into();
    let implicit = NodeSpec::new("implicit", Some("root"));
    let t = TestNet::start(vec![NodeSpec::new("root", None), routed, implicit]).await?;
    let root = t.store("root");
    let patient = sample::patient("rf-pat", "Wanjiru", "Kamau", "1975-02-02");
    sample::put_fhir(root, "Patient", "rf-pat", patient).await?;
    // A REST document with a decimal whose trailing zero must survive the REST client.
    let location = sample::location("rf-loc", "Mathare North", false)
        .replace(r#""retired""#, r#""latitude":-1.2600,"retired""#);
    sample::put_rest(root, "location", "rf-loc", location).await?;
    let clinic = sample::location("rf-loc-routed", "Korogocho", false);
    sample::put_rest(t.store("routed"), "location", "rf-loc-routed", clinic).await?;
    let weight = sample::weight("rf-obs", "rf-pat", "64.50");
    sample::put_fhir(t.store("implicit"), "Observation", "rf-obs", weight).await?;
    t.settle().await?;
    t.assert_converged();

    for node in ["routed", "implicit"] {
        let by = |id| applied_by(&t, node, Direction::Pull, id);
        assert_eq!(by("rf-loc"), "sync-plugin-rest", "{node}");
        assert_eq!(by("rf-pat"), "sync-plugin-fhir", "{node}");
    }
    let pushed_by = |node, id| applied_by(&t, node, Direction::Push, id);
    assert_eq!(pushed_by("routed", "rf-loc-routed"), "sync-plugin-rest");
    assert_eq!(pushed_by("implicit", "rf-obs"), "sync-plugin-fhir");
    // The audit names where each resource was read and written.
    let url = |node: &str| Some(t.handle(node).base_url.clone());
    let applied = |node, direction, id| {
        let records = t.audit_for(node, direction, id);
        records.into_iter().find(|r| r.outcome == Outcome::Applied)
    };
    let pulled = applied("routed", Direction::Pull, "rf-pat").expect("pulled");
    assert_eq!(
        (pulled.source_url, pulled.target_url),
        (url("root"), url("routed"))
    );
    let pushed = applied("implicit", Direction::Push, "rf-obs").expect("pushed");
    assert_eq!(
        (pushed.source_url, pushed.target_url),
        (url("implicit"), url("root"))
    );
    // The decimal travelled through the FHIR client unchanged.
    let obs = t
        .body("routed", &fhir("Observation", "rf-obs"))
        .unwrap_or_default();
    assert!(obs.contains("64.50"), "{obs}");
    let loc = t
        .body("implicit", &rest("location", "rf-loc"))
        .unwrap_or_default();
    assert!(loc.contains(r#""latitude":-1.2600"#), "{loc}");
    t.shutdown().await;
    Ok(())
}

fn filtered_by<'a>(records: &'a [AuditRecord], id: &str) -> Option<(&'a str, &'a str)> {
    records.iter().find_map(|r| match &r.outcome {
        Outcome::Filtered { by, reason } if r.resource_id == id => {
            Some((by.as_str(), reason.as_str()))
        }
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn category_filter_keeps_a_type_out_of_a_child_both_ways() -> anyhow::Result<()> {
    let mut filtered = NodeSpec::new("filtered", Some("root"));
    filtered.extra_toml = "\n[[filters]]\nplugin = \"filter-category\"\ndirection = \"both\"\nconfig = { deny = [\"encounter\"] }\n".into();
    let open = NodeSpec::new("open", Some("root"));
    let t = TestNet::start(vec![NodeSpec::new("root", None), filtered, open]).await?;
    let root = t.store("root");
    sample::put_fhir(
        root,
        "Patient",
        "cf-pat",
        sample::patient("cf-pat", "Achieng", "Odhiambo", "1999-09-09"),
    )
    .await?;
    sample::put_fhir(
        root,
        "Encounter",
        "cf-enc",
        sample::encounter("cf-enc", "cf-pat", "2026-10-10"),
    )
    .await?;
    let local = t.store("filtered");
    sample::put_fhir(
        local,
        "Encounter",
        "cf-local-enc",
        sample::encounter("cf-local-enc", "cf-pat", "2026-10-11"),
    )
    .await?;
    sample::put_fhir(
        local,
        "Patient",
        "cf-local-pat",
        sample::patient("cf-local-pat", "Otieno", "Ouma", "2000-01-01"),
    )
    .await?;
    t.settle().await?;

    assert_eq!(
        t.holders(&fhir("Patient", "cf-pat")),
        ["root", "filtered", "open"]
    );
    assert_eq!(t.holders(&fhir("Encounter", "cf-enc")), ["root", "open"]);
    assert_eq!(
        t.holders(&fhir("Patient", "cf-local-pat")),
        ["root", "filtered", "open"]
    );
    assert_eq!(t.holders(&fhir("Encounter", "cf-local-enc")), ["filtered"]);

    let audit = t.audit("filtered");
    for (id, direction) in [
        ("cf-enc", Direction::Pull),
        ("cf-local-enc", Direction::Push),
    ] {
        let records = t.audit_for("filtered", direction, id);
        let (by, reason) = filtered_by(&records, id)
            .unwrap_or_else(|| panic!("no Filtered record for {id} {direction:?}: {audit:?}"));
        assert_eq!(by, "sync-plugin-filter-category");
        assert!(reason.contains("deny"), "{reason}");
        assert!(records.iter().all(|r| r.outcome != Outcome::Applied));
    }
    assert!(filtered_by(&t.audit("open"), "cf-enc").is_none());
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_filter_keeps_a_siblings_changes_out() -> anyhow::Result<()> {
    let mut a = NodeSpec::new("clinic-a", Some("district"));
    a.extra_toml = "\n[[filters]]\nplugin = \"filter-origin\"\ndirection = \"pull\"\nconfig = { skip_origins = [\"clinic-b\"] }\n".into();
    let b = NodeSpec::new("clinic-b", Some("district"));
    let t = TestNet::start(vec![NodeSpec::new("district", None), a, b]).await?;
    let patient = |id| sample::patient(id, "Halima", "Said", "1965-06-06");
    sample::put_fhir(t.store("clinic-b"), "Patient", "of-b", patient("of-b")).await?;
    sample::put_fhir(
        t.store("district"),
        "Patient",
        "of-district",
        patient("of-district"),
    )
    .await?;
    t.settle().await?;
    assert_eq!(
        t.holders(&fhir("Patient", "of-b")),
        ["district", "clinic-b"]
    );
    assert_eq!(
        t.holders(&fhir("Patient", "of-district")),
        ["district", "clinic-a", "clinic-b"]
    );
    let audit = t.audit("clinic-a");
    let (by, reason) = filtered_by(&audit, "of-b").unwrap_or_else(|| panic!("{audit:?}"));
    assert_eq!(by, "sync-plugin-filter-origin");
    assert!(reason.contains("clinic-b"), "{reason}");
    t.shutdown().await;
    Ok(())
}

fn fixture(relative: &str) -> anyhow::Result<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("../../shared/fixtures/openmrs").join(relative);
    std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn uuid_of(document: &str) -> anyhow::Result<String> {
    let value: serde_json::Value = serde_json::from_str(document)?;
    value["uuid"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no uuid"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catchment_filter_keeps_other_districts_out_of_a_child() -> anyhow::Result<()> {
    let nairobi_doc = fixture("webservices.rest/create_patient_from_get.json")?;
    let mombasa_doc = fixture("commcare-hq/voided_patient.json")?;
    let (nairobi, mombasa) = (uuid_of(&nairobi_doc)?, uuid_of(&mombasa_doc)?);
    let untagged = "5d1c7b0e-7e4f-4a3b-9a51-2f0c0e1d9b77".to_string();
    let untagged_doc =
        format!(r#"{{"uuid":"{untagged}","display":"Untagged Person","voided":false}}"#);
    let cancel = CancellationToken::new();
    let server = OpenMrs::start(5, cancel.clone()).await?;
    server.put_document(&nairobi, nairobi_doc);
    server.put_document(&mombasa, mombasa_doc);
    server.put_document(&untagged, untagged_doc);
    server.publish([
        openmrs::entry(
            1,
            &nairobi,
            "CREATED",
            Some("Kenya%Nairobi%null%Kibera%null"),
        ),
        openmrs::entry(
            2,
            &mombasa,
            "VOIDED",
            Some("Kenya%Mombasa%null%Likoni%null"),
        ),
        openmrs::entry(3, &untagged, "CREATED", None),
    ]);
    let base = server.base.clone();

    let filter = "\n[[filters]]\nplugin = \"filter-catchment\"\ndirection = \"pull\"\nconfig = { patterns = [\"Kenya%Nairobi%*%*%*\"], untagged = \"reject\" }\n";
    let district = openmrs_child(&base, filter);
    let t = TestNet::start(vec![district]).await?;
    t.settle().await?;

    let node = "district";
    let kept = t.body(node, &rest("patient", &nairobi)).unwrap_or_default();
    assert!(
        kept.contains("Jonnea Bijo"),
        "the Nairobi patient arrives: {kept}"
    );
    assert!(t.body(node, &rest("patient", &mombasa)).is_none());
    assert!(t.body(node, &rest("patient", &untagged)).is_none());
    let served = server.served();
    assert_eq!(
        served,
        std::slice::from_ref(&nairobi),
        "filtered patients are never even fetched"
    );

    let audit = t.audit(node);
    for (uuid, why) in [(&mombasa, "Mombasa"), (&untagged, "no location tag")] {
        let (by, reason) = filtered_by(&audit, uuid)
            .unwrap_or_else(|| panic!("no Filtered record for {uuid}: {audit:?}"));
        assert_eq!(by, "sync-plugin-filter-catchment");
        assert!(reason.contains(why), "{reason}");
    }
    assert_eq!(
        applied_by(&t, node, Direction::Pull, &nairobi),
        "sync-plugin-rest"
    );
    cancel.cancel();
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catchment_filter_keeps_a_scope_by_content_both_ways() -> anyhow::Result<()> {
    let mut clinic = NodeSpec::new("clinic", Some("root"));
    clinic.extra_toml = "\n[[filters]]\nplugin = \"filter-catchment\"\ndirection = \"both\"\nconfig = { keys = [\"Organization/clinic-*\"] }\n".into();
    let t = TestNet::start(vec![NodeSpec::new("root", None), clinic]).await?;
    let patient = |id, organization| {
        sample::managed_patient(id, "Wanjiru", "Kamau", "1988-08-08", organization)
    };
    let (root, local) = (t.store("root"), t.store("clinic"));
    sample::put_fhir(root, "Patient", "down-in", patient("down-in", "clinic-1")).await?;
    sample::put_fhir(root, "Patient", "down-out", patient("down-out", "hospital")).await?;
    sample::put_fhir(local, "Patient", "up-in", patient("up-in", "clinic-1")).await?;
    sample::put_fhir(local, "Patient", "up-out", patient("up-out", "hospital")).await?;
    let visit = |id, of| sample::encounter(id, of, "2026-11-11");
    sample::put_fhir(
        local,
        "Encounter",
        "up-in-visit",
        visit("up-in-visit", "up-in"),
    )
    .await?;
    sample::put_fhir(
        local,
        "Encounter",
        "up-out-visit",
        visit("up-out-visit", "up-out"),
    )
    .await?;
    t.settle().await?;

    for id in ["down-in", "up-in"] {
        assert_eq!(t.holders(&fhir("Patient", id)), ["root", "clinic"], "{id}");
    }
    assert_eq!(t.holders(&fhir("Patient", "down-out")), ["root"]);
    assert_eq!(t.holders(&fhir("Patient", "up-out")), ["clinic"]);
    let up_in_visit = t.holders(&fhir("Encounter", "up-in-visit"));
    assert_eq!(up_in_visit, ["root", "clinic"]);
    let up_out_visit = t.holders(&fhir("Encounter", "up-out-visit"));
    assert_eq!(up_out_visit, ["clinic"], "follows its patient");
    for (id, direction) in [
        ("down-out", Direction::Pull),
        ("up-out", Direction::Push),
        ("up-out-visit", Direction::Push),
    ] {
        let records = t.audit_for("clinic", direction, id);
        let (by, reason) = filtered_by(&records, id)
            .unwrap_or_else(|| panic!("no Filtered record for {id} {direction:?}: {records:?}"));
        assert_eq!(by, "sync-plugin-filter-catchment");
        assert!(reason.contains("Organization/hospital"), "{reason}");
    }
    t.shutdown().await;
    Ok(())
}

/// A district node reading the patient feed of the OpenMRS stand-in at `base`, anonymously.
fn openmrs_child(base: &str, extra: &str) -> NodeSpec {
    let mut district = NodeSpec::new("district", None);
    district.push = false;
    district.extra_toml = format!(
        "\n[parent]\nnode_id = \"openmrs-national\"\nbase_url = {}\nanonymous_feed = true\nfeeds = [\"patient\"]\n{extra}",
        toml_string(base)
    );
    district
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openmrs_feed_of_small_pages_is_read_from_its_first_entry_once() -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let server = OpenMrs::start(5, cancel.clone()).await?;
    let uuid = |n: usize| format!("00000000-0000-4000-8000-{n:012}");
    let publish = |range: std::ops::Range<usize>| {
        for n in range.clone() {
            let doc = format!(
                r#"{{"uuid":"{}","display":"Patient {n}","voided":false}}"#,
                uuid(n)
            );
            server.put_document(&uuid(n), doc);
        }
        server.publish(range.map(|n| openmrs::entry(n, &uuid(n), "CREATED", None)));
    };
    publish(1..13);
    let t = TestNet::start(vec![openmrs_child(&server.base, "")]).await?;
    t.settle().await?;
    let held = |n| t.body("district", &rest("patient", &uuid(n))).is_some();
    assert!((1..13).all(held), "every entry of the three pages arrives");

    // New entries fill the recent page and open a fourth; only they are read.
    publish(13..18);
    t.settle().await?;
    assert!((1..18).all(held));
    let mut served = server.served();
    served.sort();
    let expected: Vec<String> = (1..18).map(uuid).collect();
    assert_eq!(served, expected, "each document is read exactly once");
    cancel.cancel();
    t.shutdown().await;
    Ok(())
}

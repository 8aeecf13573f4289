//! Where placements come from besides the built-in paths. A classifier plugin: the national
//! node runs `classifier-paths` with rules of its own (patients by their general
//! practitioner), and each clinic, scoped to one practitioner, ends up with exactly that
//! practitioner's patients and their compartments, which the built-in rules would not have
//! placed there at all. An OpenMRS parent's feed-filter tags: a district pulling an OpenMRS
//! feed places each document by its tag's location path, and clinics scoped to a part of the
//! location hierarchy receive exactly the documents tagged there.

mod common;

use common::openmrs::{self, OpenMrs};
use common::{TestNet, fhir, rest};
use sync_host::network::toml_string;
use sync_host::network::{NodeSpec, sample};
use sync_host_store::store::Store;
use tokio_util::sync::CancellationToken;

const CLASSIFIER: &str = r#"
[classifier]
plugin = "classifier-paths"
config = { fhir = { Patient = ["generalPractitioner"] }, fhir_compartment = ["Observation"] }
"#;

fn clinic(id: &str, practitioner: &str) -> NodeSpec {
    let mut spec = NodeSpec::new(id, Some("national"));
    spec.data_scope = Some(vec![format!("Practitioner/{practitioner}")]);
    spec
}

async fn admit(store: &Store, patient: &str, practitioner: &str) -> anyhow::Result<()> {
    let body = format!(
        r#"{{"resourceType":"Patient","id":"{patient}","generalPractitioner":[{{"reference":"Practitioner/{practitioner}"}}],"managingOrganization":{{"reference":"Organization/national"}}}}"#
    );
    sample::put_fhir(store, "Patient", patient, body).await?;
    let weight = format!("{patient}-weight");
    let body = sample::weight(&weight, patient, "58.0");
    sample::put_fhir(store, "Observation", &weight, body).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classifier_plugin_places_what_each_scoped_clinic_receives() -> anyhow::Result<()> {
    let mut national = NodeSpec::new("national", None);
    national.extra_toml = CLASSIFIER.into();
    let t = TestNet::start(vec![
        national,
        clinic("clinic-a", "dr-a"),
        clinic("clinic-b", "dr-b"),
    ])
    .await?;
    admit(t.store("national"), "pa", "dr-a").await?;
    admit(t.store("national"), "pb", "dr-b").await?;
    t.settle().await?;

    let placed = t.store("national").read(&fhir("Patient", "pa"))?;
    let keys = placed
        .map(|record| record.placement.keys)
        .unwrap_or_default();
    assert_eq!(
        keys,
        ["Practitioner/dr-a"],
        "the plugin's rule, not the built-in one"
    );
    for (patient, holder) in [("pa", "clinic-a"), ("pb", "clinic-b")] {
        for key in [
            fhir("Patient", patient),
            fhir("Observation", &format!("{patient}-weight")),
        ] {
            assert_eq!(t.holders(&key), ["national", holder], "{key}");
        }
    }
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classifier_that_is_no_classifier_stops_the_node_naming_the_key() {
    let mut national = NodeSpec::new("national", None);
    national.extra_toml = "\n[classifier]\nplugin = \"filter-origin\"\n".into();
    let error = match TestNet::start(vec![national]).await {
        Ok(t) => {
            t.shutdown().await;
            panic!("the node started with a filter as its classifier");
        }
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("classifier.plugin"), "{error}");
    assert!(error.contains("filter-origin"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openmrs_feed_filter_tag_places_a_document_for_the_clinics_below() -> anyhow::Result<()>
{
    let cancel = CancellationToken::new();
    let server = OpenMrs::start(5, cancel.clone()).await?;
    let uuid = |n: u32| format!("6b1e8a52-0000-4000-8000-{n:012}");
    let tagged = [
        (1, "Kenya%Nairobi%null%Kibera%null"),
        (2, "Kenya%Mombasa%null%Likoni%null"),
    ];
    for (n, _) in tagged {
        let doc = format!(
            r#"{{"uuid":"{}","display":"Patient {n}","voided":false}}"#,
            uuid(n)
        );
        server.put_document(&uuid(n), doc);
    }
    server.publish(
        tagged
            .iter()
            .map(|(n, location)| openmrs::entry(*n as usize, &uuid(*n), "CREATED", Some(location))),
    );
    let mut district = NodeSpec::new("district", None);
    district.extra_toml = format!(
        "\n[parent]\nnode_id = \"openmrs-national\"\nbase_url = {}\nanonymous_feed = true\nfeeds = [\"patient\"]\n",
        toml_string(&server.base)
    );
    let mut nairobi = NodeSpec::new("clinic-nairobi", Some("district"));
    nairobi.data_scope = Some(vec!["Kenya%Nairobi%*".into()]);
    let mut mombasa = NodeSpec::new("clinic-mombasa", Some("district"));
    mombasa.data_scope = Some(vec!["Kenya%Mombasa%*".into()]);
    let t = TestNet::start(vec![district, nairobi, mombasa]).await?;
    t.settle().await?;

    let placed = t.store("district").read(&rest("patient", &uuid(1)))?;
    let keys = placed
        .map(|record| record.placement.keys)
        .unwrap_or_default();
    assert_eq!(keys, ["Kenya%Nairobi%null%Kibera%null"]);
    assert_eq!(
        t.holders(&rest("patient", &uuid(1))),
        ["district", "clinic-nairobi"]
    );
    assert_eq!(
        t.holders(&rest("patient", &uuid(2))),
        ["district", "clinic-mombasa"]
    );
    cancel.cancel();
    t.shutdown().await;
    Ok(())
}

//! Data scopes on a three-level tree of real nodes: a national node, two districts scoped to
//! their own organisations, and clinics scoped within them. Each clinic ends up with exactly
//! its own patients and their compartments, the national node with everything, and a scoped
//! token learns nothing about an out-of-scope resource through any endpoint.

mod common;

use common::{TestNet, fhir};
use sync_host::audit::SkipReason;
use sync_host::network::{NodeSpec, parent_token_file, sample};
use sync_host_store::store::ResourceKey;

const NODES: [&str; 6] = [
    "national",
    "north",
    "south",
    "clinic-n1",
    "clinic-n2",
    "clinic-s1",
];

fn scoped(id: &str, parent: &str, scope: &[&str]) -> NodeSpec {
    let mut spec = NodeSpec::new(id, Some(parent));
    spec.data_scope = Some(scope.iter().map(|key| (*key).to_owned()).collect());
    spec
}

fn tree() -> Vec<NodeSpec> {
    vec![
        NodeSpec::new("national", None),
        scoped("north", "national", &["Organization/north-*"]),
        scoped("south", "national", &["Organization/south-*"]),
        scoped("clinic-n1", "north", &["Organization/north-1"]),
        scoped("clinic-n2", "north", &["Organization/north-2"]),
        scoped("clinic-s1", "south", &["Organization/south-1"]),
    ]
}

/// A patient of `organization` with one encounter and one observation.
async fn admit(t: &TestNet, node: &str, patient: &str, organization: &str) -> anyhow::Result<()> {
    let store = t.store(node);
    let body = sample::managed_patient(patient, "Amina", "Otieno", "1990-05-01", organization);
    sample::put_fhir(store, "Patient", patient, body).await?;
    let encounter = format!("{patient}-visit");
    let body = sample::encounter(&encounter, patient, "2026-11-30");
    sample::put_fhir(store, "Encounter", &encounter, body).await?;
    let weight = format!("{patient}-weight");
    let body = sample::weight(&weight, patient, "61.5");
    sample::put_fhir(store, "Observation", &weight, body).await?;
    Ok(())
}

/// The patient and its compartment.
fn chart(patient: &str) -> [ResourceKey; 3] {
    [
        fhir("Patient", patient),
        fhir("Encounter", &format!("{patient}-visit")),
        fhir("Observation", &format!("{patient}-weight")),
    ]
}

/// Asserts that exactly `holders` hold every resource of `patient`'s chart.
fn assert_chart_held_by(t: &TestNet, patient: &str, holders: &[&str]) {
    for key in chart(patient) {
        let mut held = t.holders(&key);
        held.sort();
        let mut want: Vec<String> = holders.iter().map(|n| (*n).to_owned()).collect();
        want.sort();
        assert_eq!(held, want, "holders of {key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_clinic_holds_exactly_its_own_patients_and_their_compartments() -> anyhow::Result<()> {
    let t = TestNet::start(tree()).await?;
    admit(&t, "national", "p-n1", "north-1").await?;
    admit(&t, "national", "p-n2", "north-2").await?;
    admit(&t, "national", "p-s1", "south-1").await?;
    // Reference data that no rule places is shared with every node.
    let location = sample::location("loc-1", "Kibera", false);
    sample::put_rest(t.store("national"), "location", "loc-1", location).await?;
    // A clinic's own patient goes up its branch and nowhere else.
    admit(&t, "clinic-n1", "p-local", "north-1").await?;
    t.settle().await?;

    assert_chart_held_by(&t, "p-n1", &["national", "north", "clinic-n1"]);
    assert_chart_held_by(&t, "p-n2", &["national", "north", "clinic-n2"]);
    assert_chart_held_by(&t, "p-s1", &["national", "south", "clinic-s1"]);
    assert_chart_held_by(&t, "p-local", &["national", "north", "clinic-n1"]);
    let everyone: Vec<String> = NODES.iter().map(|n| (*n).to_owned()).collect();
    let mut holders = t.holders(&common::rest("location", "loc-1"));
    holders.sort();
    let mut want = everyone.clone();
    want.sort();
    assert_eq!(holders, want, "shared reference data");
    for node in NODES {
        let failed = t
            .audit(node)
            .into_iter()
            .filter(|r| matches!(r.outcome, sync_host::audit::Outcome::Failed { .. }));
        assert_eq!(failed.count(), 0, "{node} failed events");
    }
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transferred_patient_brings_its_compartment_to_its_new_clinic() -> anyhow::Result<()> {
    let t = TestNet::start(tree()).await?;
    admit(&t, "national", "p-moving", "north-1").await?;
    t.settle().await?;
    assert_chart_held_by(&t, "p-moving", &["national", "north", "clinic-n1"]);

    let moved = sample::managed_patient("p-moving", "Amina", "Otieno", "1990-05-01", "north-2");
    sample::put_fhir(t.store("national"), "Patient", "p-moving", moved).await?;
    t.settle().await?;
    // The new clinic receives the patient and, following it, the encounter and observation
    // that name no organisation themselves. The old clinic keeps its copy, frozen: nothing
    // a clinician recorded is taken away from it.
    for key in chart("p-moving") {
        assert!(t.body("clinic-n2", &key).is_some(), "clinic-n2 lacks {key}");
        assert!(t.body("clinic-n1", &key).is_some(), "clinic-n1 lost {key}");
    }
    let patient = t.body("clinic-n2", &fhir("Patient", "p-moving")).unwrap();
    assert!(patient.contains("Organization/north-2"), "{patient}");
    let frozen = t.body("clinic-n1", &fhir("Patient", "p-moving")).unwrap();
    assert!(frozen.contains("Organization/north-1"), "{frozen}");
    for key in chart("p-moving") {
        assert!(t.body("clinic-s1", &key).is_none(), "clinic-s1 holds {key}");
        assert!(t.body("south", &key).is_none(), "south holds {key}");
    }
    // The old clinic was told: its feed says each resource left its scope, and nothing of
    // where it went, and the clinic audited that it keeps its copy.
    for key in chart("p-moving") {
        let told = t.audit("clinic-n1").into_iter().any(|record| {
            record.resource_id == key.id && common::is_skip(&record, SkipReason::LeftScope)
        });
        assert!(told, "clinic-n1 did not record that {key} left its scope");
    }
    let north = t.net.node("north").unwrap().running.base_url().to_string();
    let token = std::fs::read_to_string(parent_token_file(&t.net.dir.join("clinic-n1")))?;
    let feed = reqwest::Client::new()
        .get(format!("{north}/ws/atomfeed/all/recent"))
        .bearer_auth(token)
        .send()
        .await?
        .text()
        .await?;
    assert!(feed.contains("<sh:scope>left</sh:scope>"), "{feed}");
    assert!(
        !feed.contains("north-2"),
        "the entry says where the patient went: {feed}"
    );

    // A clinician at the old clinic edits the frozen observation: the push holds the edit
    // back (the parent would refuse it) instead of failing it, and nothing goes up.
    let weight = "p-moving-weight";
    let edited = sample::weight(weight, "p-moving", "64.0");
    sample::put_fhir(t.store("clinic-n1"), "Observation", weight, edited).await?;
    t.settle().await?;
    let held = t.audit("clinic-n1").into_iter().any(|record| {
        record.resource_id == weight
            && record.direction == sync_host::sync::conflict::Direction::Push
            && common::is_skip(&record, SkipReason::LeftScope)
    });
    assert!(
        held,
        "clinic-n1 did not hold its edit of the frozen copy back"
    );
    let obs = fhir("Observation", weight);
    assert!(!t.body("north", &obs).unwrap().contains("64.0"));
    let failed = t
        .audit("clinic-n1")
        .into_iter()
        .filter(|r| matches!(r.outcome, sync_host::audit::Outcome::Failed { .. }))
        .count();
    assert_eq!(failed, 0, "clinic-n1 failed events");

    // The patient comes back: the edit held back meanwhile goes up by itself (the parent's
    // copy of the observation did not change, so nothing else would send it), and the next
    // edit follows.
    let back = sample::managed_patient("p-moving", "Amina", "Otieno", "1990-05-01", "north-1");
    sample::put_fhir(t.store("national"), "Patient", "p-moving", back).await?;
    t.settle().await?;
    for node in ["north", "national"] {
        let body = t.body(node, &obs).unwrap();
        assert!(
            body.contains("64.0"),
            "{node} lacks the held-back edit: {body}"
        );
    }
    let obs_edit = sample::weight(weight, "p-moving", "64.5");
    sample::put_fhir(t.store("clinic-n1"), "Observation", weight, obs_edit).await?;
    t.settle().await?;
    for node in ["north", "national"] {
        let body = t.body(node, &obs).unwrap();
        assert!(body.contains("64.5"), "{node}: {body}");
    }
    t.shutdown().await;
    Ok(())
}

/// What a GET answers: the status and the body with every id of the request taken out, so
/// the answer for a hidden resource can be compared with the answer for a missing one.
async fn answer(client: &reqwest::Client, token: &str, url: &str, ids: &[&str]) -> (u16, String) {
    let response = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    let mut body = response.text().await.unwrap();
    for id in ids {
        body = body.replace(id, "<id>");
    }
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_token_learns_nothing_of_resources_outside_its_scope() -> anyhow::Result<()> {
    let t = TestNet::start(tree()).await?;
    admit(&t, "north", "p-n1", "north-1").await?;
    let north = t.net.node("north").unwrap();
    let base = north.running.base_url().to_string();
    let token = std::fs::read_to_string(parent_token_file(&t.net.dir.join("clinic-n2")))?;
    let http = reqwest::Client::new();
    let fhir_base = format!("{base}/ws/fhir2/R4");
    let hidden = ["p-n1", "p-n1-weight"];
    let missing = ["p-none", "p-none-weight"];
    let pairs = [
        "Patient/{p}",
        "Patient/{p}/_history",
        "Patient/{p}/_history/1",
        "Patient?_id={p}",
        "Observation/{w}",
        "Observation?_id={w}",
        "Observation/{w}/_history",
    ];
    for path in pairs {
        let url = |ids: &[&str; 2]| {
            let path = path.replace("{p}", ids[0]).replace("{w}", ids[1]);
            format!("{fhir_base}/{path}")
        };
        let seen_hidden = answer(&http, &token, &url(&hidden), &hidden).await;
        let seen_missing = answer(&http, &token, &url(&missing), &missing).await;
        assert_eq!(seen_hidden, seen_missing, "{path}");
        if path.contains('?') {
            assert!(
                seen_hidden.1.contains(r#""entry":[]"#),
                "{path}: {}",
                seen_hidden.1
            );
        } else {
            assert_eq!(seen_hidden.0, 404, "{path}: {}", seen_hidden.1);
        }
    }
    // A search of the whole type and the type's history show nothing either.
    for path in ["Patient", "Observation/_history", "Encounter"] {
        let (status, body) = answer(&http, &token, &format!("{fhir_base}/{path}"), &[]).await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.contains("p-n1"), "{path}: {body}");
    }
    // Every feed page: no entry names the patient or its compartment.
    let (status, recent) = answer(
        &http,
        &token,
        &format!("{base}/ws/atomfeed/all/recent"),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert!(!recent.contains("p-n1"), "{recent}");
    let (_, page_one) = answer(&http, &token, &format!("{base}/ws/atomfeed/all/1"), &[]).await;
    assert!(!page_one.contains("p-n1"), "{page_one}");
    // The clinic that may see the patient does see it, tags and all.
    let own = std::fs::read_to_string(parent_token_file(&t.net.dir.join("clinic-n1")))?;
    let (status, body) = answer(&http, &own, &format!("{fhir_base}/Patient/p-n1"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let (_, recent) = answer(&http, &own, &format!("{base}/ws/atomfeed/all/recent"), &[]).await;
    assert!(recent.contains("Organization/north-1"), "{recent}");

    // Writing outside the scope is refused with an OperationOutcome, and nothing is stored.
    let foreign = sample::managed_patient("p-foreign", "Baraka", "Mwangi", "1990-05-01", "south-1");
    let response = http
        .put(format!("{fhir_base}/Patient/p-foreign"))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .body(foreign)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 403);
    let outcome = response.text().await?;
    assert!(
        outcome.contains("OperationOutcome") && outcome.contains("data scope"),
        "{outcome}"
    );
    assert!(t.body("north", &fhir("Patient", "p-foreign")).is_none());
    // So is overwriting a resource the client cannot see, even with an in-scope body.
    let takeover = sample::managed_patient("p-n1", "Amina", "Otieno", "1990-05-01", "north-2");
    let response = http
        .put(format!("{fhir_base}/Patient/p-n1"))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .body(takeover)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 403);
    let kept = t.body("north", &fhir("Patient", "p-n1")).unwrap();
    assert!(kept.contains("north-1"), "{kept}");
    // Both refusals are in the parent's audit, naming the client.
    for id in ["p-foreign", "p-n1"] {
        let audited = t.audit("north").into_iter().any(|record| {
            record.resource_id == id
                && matches!(&record.outcome, sync_host::audit::Outcome::Filtered { by, reason }
                    if by == "data-scope" && reason.contains("clinic-n2"))
        });
        assert!(audited, "north did not audit the refused write of {id}");
    }
    // Deleting it answers as for a resource that does not exist.
    let delete = |id: &str| {
        http.delete(format!("{fhir_base}/Patient/{id}"))
            .bearer_auth(&token)
            .send()
    };
    let hidden_delete = delete("p-n1").await?;
    let missing_delete = delete("p-none").await?;
    assert_eq!(hidden_delete.status(), missing_delete.status());
    assert_eq!(hidden_delete.status().as_u16(), 404);
    assert!(t.body("north", &fhir("Patient", "p-n1")).is_some());
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_that_removes_what_left_its_scope_keeps_no_copy_and_deletes_nothing_above()
-> anyhow::Result<()> {
    let mut specs = tree();
    specs[3].leave_scope = Some("remove".into());
    let t = TestNet::start(specs).await?;
    admit(&t, "national", "p-moving", "north-1").await?;
    t.settle().await?;
    assert_chart_held_by(&t, "p-moving", &["national", "north", "clinic-n1"]);

    let moved = sample::managed_patient("p-moving", "Amina", "Otieno", "1990-05-01", "north-2");
    sample::put_fhir(t.store("national"), "Patient", "p-moving", moved).await?;
    t.settle().await?;
    // The removal is clinic-n1's own: the delete it pulled is not pushed back up.
    assert_chart_held_by(&t, "p-moving", &["national", "north", "clinic-n2"]);
    for key in chart("p-moving") {
        let removed = t.audit("clinic-n1").into_iter().any(|record| {
            record.resource_id == key.id
                && record.action == "deleted"
                && record.outcome == sync_host::audit::Outcome::Applied
        });
        assert!(removed, "clinic-n1 did not audit the removal of {key}");
    }
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinics_own_scope_keeps_other_records_from_leaving_it_and_from_reaching_it()
-> anyhow::Result<()> {
    // The parents share everything with these two; each clinic confines itself.
    let mut pusher = NodeSpec::new("clinic-a", Some("national"));
    pusher.push_scope = Some(vec!["Organization/a".into()]);
    let mut puller = NodeSpec::new("clinic-b", Some("national"));
    puller.pull_scope = Some(vec!["Organization/b".into()]);
    let t = TestNet::start(vec![NodeSpec::new("national", None), pusher, puller]).await?;
    admit(&t, "clinic-a", "p-own", "a").await?;
    admit(&t, "clinic-a", "p-visiting", "elsewhere").await?;
    admit(&t, "national", "p-b", "b").await?;
    admit(&t, "national", "p-c", "c").await?;
    t.settle().await?;
    // clinic-a pushes only its own patient's chart; the visitor's stays home, audited.
    assert_chart_held_by(&t, "p-own", &["national", "clinic-a"]);
    assert_chart_held_by(&t, "p-visiting", &["clinic-a"]);
    for key in chart("p-visiting") {
        let filtered = t.audit("clinic-a").into_iter().any(|record| {
            record.resource_id == key.id
                && matches!(&record.outcome, sync_host::audit::Outcome::Filtered { by, .. } if by == "data-scope")
        });
        assert!(filtered, "clinic-a did not audit keeping {key} home");
    }
    // clinic-b, pulling from a parent that gives it everything, keeps only its own (clinic-a
    // pulls everything).
    assert_chart_held_by(&t, "p-b", &["national", "clinic-a", "clinic-b"]);
    assert_chart_held_by(&t, "p-c", &["national", "clinic-a"]);
    t.shutdown().await;
    Ok(())
}

//! `sync-host demo`: a national node, two districts and a clinic on loopback, each a real node
//! with its own store and port. Loads sample data, edits at several levels (one conflict, one
//! delete, one retire), syncs until the tree converges and prints what happened.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use sync_host::audit::{AuditQuery, Outcome};
use sync_host::network::{Network, NodeSpec, differences, placed_contents, sample, scopes_above};
use sync_host::node::resolve::{Resolve, resolve_conflict};
use sync_host::state::ConflictFilter;
use sync_host::sync::conflict::{Direction, Side};
use sync_host_store::store::{Kind, ResourceKey};

const TYPES: &[(Kind, &str)] = &[
    (Kind::Fhir, "Patient"),
    (Kind::Fhir, "Encounter"),
    (Kind::Fhir, "Observation"),
    (Kind::Rest, "location"),
];

/// Runs the demo; `keep_running` leaves the nodes up until Ctrl-C.
pub async fn run(dir: Option<PathBuf>, keep_running: bool) -> anyhow::Result<ExitCode> {
    let temp;
    let dir = match dir {
        Some(dir) => dir,
        None => {
            temp = tempfile::Builder::new()
                .prefix("sync-host-demo-")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    println!(
        "sync-host demo: starting four nodes on 127.0.0.1 (data in {})",
        dir.display()
    );
    let network = start(&dir).await?;
    for node in &network.nodes {
        let parent = node.spec.parent.as_deref().unwrap_or("-");
        println!(
            "  {:<11} {}  parent: {parent}",
            node.spec.id,
            node.running.base_url()
        );
    }
    let result = scenario(&network).await;
    let ok = match &result {
        Ok(()) => true,
        Err(e) => {
            println!("\nFAILED: {e:#}");
            false
        }
    };
    print_summary(&network)?;
    if keep_running {
        print_access(&network);
        println!("\nNodes keep running; press Ctrl-C to stop.");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
    }
    network.shutdown().await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The data scope district-a gives clinic-1: the patients its district manages.
const CLINIC_SCOPE: &str = "Organization/district-a";

/// Seconds between the demo nodes' status reports: short, so the national view is current
/// while the demo runs.
const REPORT_INTERVAL_SECS: u64 = 1;

async fn start(dir: &Path) -> anyhow::Result<Network> {
    let mut specs = vec![
        NodeSpec::new("national", None),
        NodeSpec::new("district-a", Some("national")),
        NodeSpec::new("district-b", Some("national")),
        NodeSpec::new("clinic-1", Some("district-a")),
    ];
    // The clinic sees only its district's patients (and shared data such as locations).
    specs[3].data_scope = Some(vec![CLINIC_SCOPE.to_owned()]);
    for spec in &mut specs {
        spec.report_interval_secs = Some(REPORT_INTERVAL_SECS);
    }
    Ok(Network::start(dir, specs).await?)
}

fn store<'a>(network: &'a Network, id: &str) -> anyhow::Result<&'a sync_host_store::store::Store> {
    network
        .node(id)
        .and_then(|n| n.running.handle.store.as_ref())
        .with_context(|| format!("node {id} has no store"))
}

async fn scenario(network: &Network) -> anyhow::Result<()> {
    println!("\n1. Sample data at every level");
    let national = store(network, "national")?;
    let district_a = store(network, "district-a")?;
    let district_b = store(network, "district-b")?;
    let clinic = store(network, "clinic-1")?;
    sample::put_fhir(
        national,
        "Patient",
        "nat-1",
        sample::managed_patient("nat-1", "Amina", "Otieno", "1984-03-02", "district-a"),
    )
    .await?;
    sample::put_fhir(
        national,
        "Patient",
        "nat-2",
        sample::managed_patient("nat-2", "Esther", "Wanjiru", "1968-09-30", "district-b"),
    )
    .await?;
    sample::put_rest(
        national,
        "location",
        "loc-1",
        sample::location("loc-1", "Kibera Clinic", false),
    )
    .await?;
    sample::put_fhir(
        district_a,
        "Patient",
        "da-1",
        sample::managed_patient("da-1", "Baraka", "Mwangi", "1990-11-20", "district-a"),
    )
    .await?;
    sample::put_fhir(
        district_a,
        "Encounter",
        "da-enc-1",
        sample::encounter("da-enc-1", "da-1", "2026-11-01"),
    )
    .await?;
    sample::put_fhir(
        district_b,
        "Patient",
        "db-1",
        sample::managed_patient("db-1", "Chebet", "Kiprop", "1979-07-14", "district-b"),
    )
    .await?;
    sample::put_fhir(
        clinic,
        "Patient",
        "cl-1",
        sample::managed_patient("cl-1", "Dalia", "Njeri", "2001-01-09", "district-a"),
    )
    .await?;
    sample::put_fhir(
        clinic,
        "Observation",
        "cl-obs-1",
        sample::weight("cl-obs-1", "cl-1", "72.50"),
    )
    .await?;
    let rounds = network.sync_until_quiet(6).await?;
    println!("   converged after {rounds} round(s)");
    expect_converged(network)?;

    println!("\n2. Edits: national and clinic-1 both change Patient/nat-1 (a conflict),");
    println!("   district-b deletes Patient/db-1, national retires location loc-1,");
    println!("   clinic-1 records a new weight (73.10 kg)");
    sample::put_fhir(
        national,
        "Patient",
        "nat-1",
        sample::managed_patient(
            "nat-1",
            "Amina",
            "Otieno-Wekesa",
            "1984-03-02",
            "district-a",
        ),
    )
    .await?;
    sample::put_fhir(
        clinic,
        "Patient",
        "nat-1",
        sample::managed_patient("nat-1", "Amina", "Otieno", "1984-03-12", "district-a"),
    )
    .await?;
    sample::delete_fhir(district_b, "Patient", "db-1").await?;
    sample::put_rest(
        national,
        "location",
        "loc-1",
        sample::location("loc-1", "Kibera Clinic", true),
    )
    .await?;
    sample::put_fhir(
        clinic,
        "Observation",
        "cl-obs-1",
        sample::weight("cl-obs-1", "cl-1", "73.10"),
    )
    .await?;
    network.sync_until_quiet(6).await?;

    println!(
        "\n3. Conflicts parked for an operator (policy: manual), resolved from the national office"
    );
    let mut resolved = super::demo_network::resolve_from_national(network).await?;
    // Any conflict the national node has not heard of is resolved where it was found.
    resolved += resolve_open_conflicts(network).await?;
    if resolved == 0 {
        bail!("expected the concurrent edits of Patient/nat-1 to be detected as a conflict");
    }
    let rounds = network.sync_until_quiet(6).await?;
    println!("   converged after {rounds} more round(s)");
    expect_converged(network)?;
    expect_final_content(network)?;
    expect_within_scopes(network)?;
    super::demo_network::print_network(network).await
}

/// Resolves every open conflict in favour of the child's version, as an operator would.
async fn resolve_open_conflicts(network: &Network) -> anyhow::Result<usize> {
    let mut resolved = 0;
    for node in &network.nodes {
        let handle = &node.running.handle;
        for conflict in handle.state.conflicts(ConflictFilter::Open, 100)? {
            let direction = conflict.direction.name();
            println!(
                "   {} found a conflict on {}/{} during {direction}: parent has version {}, child has {}",
                node.spec.id,
                conflict.resource_type,
                conflict.resource_id,
                conflict.parent.version.as_deref().unwrap_or("?"),
                conflict.child.version.as_deref().unwrap_or("?"),
            );
            let how = Resolve {
                side: Some(Side::Child),
                body: None,
                by: "demo-operator".into(),
            };
            let record = resolve_conflict(handle, conflict.id, how).await?;
            println!(
                "   resolved by {}: the child's version wins and is written to both sides; the parent's version stays in conflict record {}",
                record
                    .resolution
                    .as_ref()
                    .map(|r| r.by.as_str())
                    .unwrap_or("?"),
                record.id
            );
            resolved += 1;
        }
    }
    Ok(resolved)
}

fn expect_converged(network: &Network) -> anyhow::Result<()> {
    let diffs = differences(network, TYPES)?;
    if !diffs.is_empty() {
        bail!("the nodes differ:\n  {}", diffs.join("\n  "));
    }
    Ok(())
}

fn expect_final_content(network: &Network) -> anyhow::Result<()> {
    for node in &network.nodes {
        let store = node.running.handle.store.as_ref().context("store")?;
        let read = |key: ResourceKey| store.read(&key).map(|r| r.and_then(|v| v.body));
        let id = &node.spec.id;
        let patient = read(ResourceKey::fhir("Patient", "nat-1"))?.unwrap_or_default();
        if !patient.contains("1984-03-12") {
            bail!("{id}: Patient/nat-1 does not hold the resolved (clinic) version");
        }
        if read(ResourceKey::fhir("Patient", "db-1"))?.is_some() {
            bail!("{id}: Patient/db-1 was deleted at district-b but is still live");
        }
        if !read(ResourceKey::fhir("Observation", "cl-obs-1"))?
            .unwrap_or_default()
            .contains("73.10")
        {
            bail!("{id}: Observation/cl-obs-1 lacks the new weight 73.10");
        }
        if !read(ResourceKey::rest("location", "loc-1"))?
            .unwrap_or_default()
            .contains("\"retired\":true")
        {
            bail!("{id}: location loc-1 is not retired");
        }
    }
    println!(
        "\nEvery node holds the same records as national, as far as its data scope admits, and the expected ones."
    );
    Ok(())
}

/// Prints how many records each node holds, and checks that none holds a record its data
/// scope (or one above it) does not admit.
fn expect_within_scopes(network: &Network) -> anyhow::Result<()> {
    println!("\nRecords held, by data scope:");
    for node in &network.nodes {
        let store = node.running.handle.store.as_ref().context("store")?;
        let held = placed_contents(store, TYPES)?;
        let scopes = scopes_above(network, &node.spec.id);
        let outside = held
            .values()
            .filter(|(_, placement)| !scopes.iter().all(|s| s.admits(placement)))
            .count();
        let scope = match &node.spec.data_scope {
            Some(keys) => keys.join(", "),
            None => "everything".to_owned(),
        };
        println!(
            "  {:<11} {:>3} records  scope: {scope:<24} outside it: {outside}",
            node.spec.id,
            held.len()
        );
        if outside > 0 {
            bail!(
                "{} holds {outside} records outside its data scope",
                node.spec.id
            );
        }
    }
    Ok(())
}

fn print_summary(network: &Network) -> anyhow::Result<()> {
    println!("\nWhat each node did (from its audit log):");
    println!(
        "  {:<11} {:>7} {:>7} {:>8} {:>9} {:>7} {:>6} {:>6}",
        "node", "pulled", "pushed", "skipped", "conflict", "failed", "other", "total"
    );
    for node in &network.nodes {
        let audit = node.running.handle.state.audit();
        let query = AuditQuery {
            limit: 100_000,
            ..AuditQuery::default()
        };
        let page = audit.query(&query)?;
        let (mut pulled, mut pushed, mut skipped, mut conflicts, mut failed, mut other) =
            (0, 0, 0, 0, 0, 0);
        for entry in &page.entries {
            match (&entry.record.outcome, entry.record.direction) {
                (Outcome::Applied, Direction::Pull) => pulled += 1,
                (Outcome::Applied, Direction::Push) => pushed += 1,
                (Outcome::Skipped { .. }, _) => skipped += 1,
                (Outcome::Conflict { .. }, _) => conflicts += 1,
                (Outcome::Failed { .. }, _) => failed += 1,
                _ => other += 1,
            }
        }
        println!(
            "  {:<11} {pulled:>7} {pushed:>7} {skipped:>8} {conflicts:>9} {failed:>7} {other:>6} {:>6}",
            node.spec.id,
            page.entries.len()
        );
    }
    println!("  (skipped = echoes and content the other side already had; never fetched)");
    Ok(())
}

fn print_access(network: &Network) {
    println!(
        "\nNodes, their dashboards, configs and admin tokens (log in to a dashboard with its token):"
    );
    for node in &network.nodes {
        println!(
            "  {:<11} dashboard: {}/ui/  config: {}  admin token: {}",
            node.spec.id,
            node.running.base_url(),
            node.config_path.display(),
            node.admin_token
        );
    }
}

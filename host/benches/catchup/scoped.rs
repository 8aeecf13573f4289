//! The catch-up of a clinic scoped to part of the parent, next to the unscoped child's of the
//! same run: a separate `sync-host run` process whose token at the parent carries a data scope
//! of one managing organisation, so its feed pages, searches and reads hold only that part.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sync_host_store::scope::DataScope;
use sync_host_store::store::Store;

use super::{child, parent_requests, proc_stats};

/// The scope key the bench gives the scoped clinic: the managing organisation of the first
/// Patient of `ndjson` (the PouchDB harness spreads its patients over five, which
/// [`split_organizations`] makes ten).
pub fn first_organization(ndjson: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(ndjson)?;
    for line in text
        .lines()
        .filter(|l| l.contains("\"resourceType\":\"Patient\""))
    {
        let value: serde_json::Value = serde_json::from_str(line)?;
        if let Some(reference) = value["managingOrganization"]["reference"].as_str() {
            return Ok(reference.to_owned());
        }
    }
    anyhow::bail!(
        "no Patient of {} names a managing organisation",
        ndjson.display()
    )
}

/// Halves each managing organisation of the harness's documents in `ndjson`, so that one holds
/// 10 % of the parent: every second Patient of each organisation `X`, and the resources of its
/// compartment that name `X` (an Encounter's `serviceProvider`), name `X-b` instead. Both
/// children of the run read the rewritten file; each moved reference grows by two bytes.
/// Returns the file's new size.
pub fn split_organizations(ndjson: &Path) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(ndjson)?;
    let mut seen_per_organization: HashMap<String, usize> = HashMap::new();
    let mut moved: HashMap<String, String> = HashMap::new();
    for line in text
        .lines()
        .filter(|l| l.contains(r#""resourceType":"Patient""#))
    {
        let value: serde_json::Value = serde_json::from_str(line)?;
        let (Some(id), Some(organization)) = (
            value["id"].as_str(),
            value["managingOrganization"]["reference"].as_str(),
        ) else {
            continue;
        };
        let seen = seen_per_organization
            .entry(organization.to_owned())
            .or_default();
        if *seen % 2 == 1 {
            moved.insert(format!("Patient/{id}"), organization.to_owned());
        }
        *seen += 1;
    }
    let mut out = String::with_capacity(text.len() + moved.len() * 16);
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line)?;
        let patient = match value["resourceType"].as_str() {
            Some("Patient") => value["id"].as_str().map(|id| format!("Patient/{id}")),
            _ => value["subject"]["reference"].as_str().map(str::to_owned),
        };
        match patient.and_then(|patient| moved.get(&patient)) {
            Some(organization) => out.push_str(&line.replace(
                &format!("\"{organization}\""),
                &format!("\"{organization}-b\""),
            )),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    std::fs::write(ndjson, &out)?;
    Ok(out.len() as u64)
}

/// What the unscoped child of the same run did, to print next to the scoped one.
pub struct Unscoped {
    pub resources: usize,
    pub elapsed: Duration,
    pub cpu_seconds: Option<f64>,
    pub requests: f64,
}

/// Where the scoped child's files are and how to reach the parent.
pub struct Clinic<'a> {
    pub parent_store: &'a Store,
    pub parent_base: &'a str,
    pub parent_token: &'a str,
    pub config: &'a Path,
    pub dir: &'a Path,
    pub admin_token: &'a str,
    pub scope: &'a str,
}

/// Runs the scoped clinic's catch-up and prints its figures next to `unscoped`.
pub async fn run(
    clinic: Clinic<'_>,
    unscoped: &Unscoped,
    program: std::ffi::OsString,
) -> anyhow::Result<()> {
    let scope = DataScope::new(&[clinic.scope.to_owned()])?;
    let admitted = admitted(clinic.parent_store, &scope)?;
    let data = clinic.dir.join("data-process");
    let text = std::fs::read_to_string(clinic.config)?
        .replace(
            &clinic.dir.join("data").display().to_string(),
            &data.display().to_string(),
        )
        .replace("interval_secs = 0", "interval_secs = 1");
    let config: PathBuf = clinic.dir.join("process.toml");
    std::fs::write(&config, text)?;
    let http = reqwest::Client::new();
    let before = parent_requests(&http, clinic.parent_base, clinic.parent_token).await?;
    let started = Instant::now();
    let (mut process, url) = child::start(program, "info", &config, Stdio::null()).await?;
    let pid = process.id().unwrap_or(0);
    let cpu_at_start = proc_stats::cpu_seconds(pid);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(status) = child::status(&http, &url, clinic.admin_token).await? else {
            continue;
        };
        let done = status["counts"]["audit_records"].as_u64().unwrap_or(0) as usize;
        if done >= admitted {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "the scoped catch-up did not finish within an hour ({done} of {admitted})"
        );
    }
    let elapsed = started.elapsed();
    let requests = parent_requests(&http, clinic.parent_base, clinic.parent_token).await? - before;
    let cpu = proc_stats::cpu_seconds(pid);
    process.kill().await.ok();
    let _ = process.wait().await;
    let share = admitted as f64 / unscoped.resources as f64;
    println!(
        "catch-up of a clinic scoped to {} ({admitted} of the parent's {} resources, {:.1} %):",
        clinic.scope,
        unscoped.resources,
        share * 100.0
    );
    println!(
        "  scoped child, end to end   {:>10.1} s   ({:.0} resources/s); the unscoped child of this run: {:.1} s",
        elapsed.as_secs_f64(),
        admitted as f64 / elapsed.as_secs_f64(),
        unscoped.elapsed.as_secs_f64()
    );
    println!(
        "  time, scoped / unscoped    {:>10.2}x           (its share of the resources: {share:.2})",
        elapsed.as_secs_f64() / unscoped.elapsed.as_secs_f64()
    );
    println!(
        "  requests to the parent     {:>10.0}             (the unscoped child: {:.0})",
        requests, unscoped.requests
    );
    if let (Some(cpu), Some(at_start), Some(unscoped_cpu)) =
        (cpu, cpu_at_start, unscoped.cpu_seconds)
    {
        println!(
            "  child CPU after start-up   {:>10.1} s   ({:.1} us per resource received; the unscoped child: {unscoped_cpu:.1} s)",
            cpu - at_start,
            (cpu - at_start) * 1e6 / admitted as f64
        );
    }
    let held = proc_stats::dir_bytes(&data);
    println!(
        "  child data directory       {:>10.1} MB",
        held as f64 / 1e6
    );
    Ok(())
}

/// How many of the parent's current versions the scope admits: what the clinic must receive.
fn admitted(store: &Store, scope: &DataScope) -> anyhow::Result<usize> {
    let mut count = 0;
    for record in store.current_versions() {
        let record = record?;
        if !record.deleted && scope.admits(&record.placement) {
            count += 1;
        }
    }
    Ok(count)
}

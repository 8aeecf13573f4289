//! `sync-host store export` and `store import --snapshot`: bootstrapping a new node from a
//! snapshot of its parent instead of reading the parent's whole feed.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use sync_host_store::api::feed::ALL_CATEGORY;
use sync_host_store::api::feed::entries::entry_id;
use sync_host_store::snapshot::{self, Manifest, SnapshotError, SnapshotRecord};
use sync_host_store::store::{Precondition, Store, WriteOutcome, WriteRequest};

use super::node::open_store;

use sync_host::audit::Timestamp;
use sync_host::config::NodeConfig;
use sync_host::node::{LOCAL_FEED_OWNER, open_sync_state};
use sync_host::state::{BaseKey, Marker, MarkerKey, SyncState};
use sync_host::sync::conflict::SyncBase;

/// Resources written (and bases seeded) per transaction during an import.
const IMPORT_BATCH: usize = 2000;

/// Writes a snapshot of a stopped node's store into `out`.
pub async fn export(config_path: &Path, out: &Path) -> anyhow::Result<std::process::ExitCode> {
    let config = NodeConfig::load(config_path)?;
    let store = open_store(&config).await?;
    let page_size = feed_page_size(&config);
    let started = Instant::now();
    let manifest = snapshot::export(&store, out, page_size, |done| {
        eprint!("\r{done} resources written   ");
        let _ = std::io::stderr().flush();
    })
    .with_context(|| format!("cannot write the snapshot to {}", out.display()))?;
    eprintln!();
    println!(
        "snapshot of {} at sequence {}: {} resources ({} deleted left out), {:.1} MB compressed, in {:.1} s",
        manifest.node_id,
        manifest.last_sequence,
        manifest.resources,
        manifest.tombstones,
        manifest.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// Loads a snapshot of this node's parent into a stopped, new node and seeds its sync state,
/// so that it resumes its parent's feeds after the snapshot and pushes none of it back.
pub async fn import(config_path: &Path, dir: &Path) -> anyhow::Result<std::process::ExitCode> {
    let config = NodeConfig::load(config_path)?;
    let Some(parent) = &config.parent else {
        bail!(
            "{}: a snapshot seeds the sync with a parent, and this node has no [parent]",
            config_path.display()
        );
    };
    let manifest = snapshot::open(dir)?;
    if manifest.node_id != parent.node_id {
        bail!(
            "the snapshot was taken of node `{}`, but the parent of this node is `{}` ([parent] node_id in {})",
            manifest.node_id,
            parent.node_id,
            config_path.display()
        );
    }
    let started = Instant::now();
    eprintln!("checking {} ...", dir.display());
    snapshot::verify(dir, &manifest)?;
    let (store, state) = open_fresh(&config).await?;
    let imported = write_records(&store, &state, dir, &manifest, started).await?;
    let markers = markers_after(&config, &parent.feeds, &manifest, &store)?;
    store.flush().await?;
    state.seed_markers(&markers).await?;
    eprintln!();
    println!(
        "imported {imported} resources of {} (sequence {}) in {:.1} s ({:.0}/s); {} feed markers seeded",
        manifest.node_id,
        manifest.last_sequence,
        started.elapsed().as_secs_f64(),
        imported as f64 / started.elapsed().as_secs_f64().max(1e-3),
        markers.len()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// The node's store and sync state, refusing a node that already holds data or has synced.
async fn open_fresh(config: &NodeConfig) -> anyhow::Result<(Store, SyncState)> {
    if config.local.is_some() {
        bail!("a snapshot is imported into the embedded store; this node has [local]");
    }
    let store = open_store(config).await?;
    let changes = store.change_count(None)?;
    if changes > 0 {
        bail!(
            "the store in {} already holds {changes} changes; a snapshot bootstraps a new node only",
            config.node.data_dir.display()
        );
    }
    let state = open_sync_state(&config.node.data_dir).context("cannot open the sync state")?;
    if !state.is_fresh() {
        bail!(
            "the sync state in {} already has markers or sync bases; a snapshot bootstraps a new node only",
            config.node.data_dir.display()
        );
    }
    Ok((store, state))
}

/// Decodes the snapshot on a blocking thread while this task writes each batch to the store
/// (one transaction, hashes from the snapshot) and seeds its sync bases.
async fn write_records(
    store: &Store,
    state: &SyncState,
    dir: &Path,
    manifest: &Manifest,
    started: Instant,
) -> anyhow::Result<u64> {
    let (batches, mut received) = tokio::sync::mpsc::channel::<Vec<SnapshotRecord>>(2);
    let reading_dir = dir.to_owned();
    let reader = tokio::task::spawn_blocking(move || {
        snapshot::read_records(&reading_dir, IMPORT_BATCH, |batch| {
            // A closed channel means the writer stopped on an error, which it reports.
            batches
                .blocking_send(batch)
                .map_err(|_| SnapshotError::Abandoned)
        })
    });
    let mut imported = 0u64;
    while let Some(batch) = received.recv().await {
        imported += write_batch(store, state, &manifest.node_id, batch).await?;
        let rate = imported as f64 / started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r{imported} of {} resources, {rate:.0}/s   ",
            manifest.resources
        );
        let _ = std::io::stderr().flush();
    }
    reader.await.context("the snapshot reader stopped")??;
    Ok(imported)
}

/// Writes one batch under the origins the snapshot recorded and seeds a sync base for each:
/// the parent's version and this node's new one, with the content both now hold.
async fn write_batch(
    store: &Store,
    state: &SyncState,
    parent: &str,
    batch: Vec<SnapshotRecord>,
) -> anyhow::Result<u64> {
    let mut parent_versions = Vec::with_capacity(batch.len());
    let requests = batch
        .into_iter()
        .map(|record| {
            parent_versions.push(record.version);
            let origin = if record.origin.is_empty() {
                parent.to_string()
            } else {
                record.origin
            };
            let request = WriteRequest {
                key: record.key,
                body: Some(record.body),
                precondition: Precondition::Any,
                origin: Some(origin),
            };
            (request, record.hash)
        })
        .collect();
    let outcomes = store.write_all_hashed(requests).await?;
    let mut bases = Vec::with_capacity(outcomes.len());
    for (outcome, parent_version) in outcomes.iter().zip(parent_versions) {
        let WriteOutcome::Created(record) = outcome else {
            bail!("a new store answered a snapshot write with {outcome:?}");
        };
        let key = BaseKey {
            resource_type: record.key.resource_type.clone(),
            resource_id: record.key.id.clone(),
        };
        let base = SyncBase {
            content_hash: record.content_hash.clone(),
            parent_version: Some(parent_version.to_string()),
            child_version: Some(record.version_id.to_string()),
            left_scope: false,
        };
        bases.push((key, base));
    }
    state.seed_bases(&bases)?;
    Ok(bases.len() as u64)
}

/// The markers a node resumes from after the import: each pulled feed of the parent at its
/// last entry in the snapshot, and this node's own feed (read by push) at its end, since
/// everything in it came from the parent.
fn markers_after(
    config: &NodeConfig,
    feeds: &[String],
    manifest: &Manifest,
    store: &Store,
) -> anyhow::Result<Vec<(MarkerKey, Marker)>> {
    let now = Timestamp::now();
    let mut markers = Vec::new();
    for feed in feeds {
        // A feed with no entries at the snapshot is read from its start, as on any first sync.
        let Some(position) = manifest.feeds.get(feed) else {
            continue;
        };
        let marker = Marker {
            entry_id: entry_id(&manifest.node_id, position.last_sequence),
            sequence: Some(position.last_sequence),
            page: Some(format!("{feed}/{}", position.last_page(manifest.page_size))),
            updated_at: now,
        };
        let key = MarkerKey {
            parent_node: manifest.node_id.clone(),
            feed: feed.clone(),
        };
        markers.push((key, marker));
    }
    let own = store.change_count(None)?;
    if own > 0 {
        let page_size = feed_page_size(config);
        let last = store.last_sequence()?;
        let position = snapshot::FeedPosition {
            entries: own,
            last_sequence: last,
        };
        let marker = Marker {
            entry_id: entry_id(&config.node.id, last),
            sequence: Some(last),
            page: Some(format!("{ALL_CATEGORY}/{}", position.last_page(page_size))),
            updated_at: now,
        };
        let key = MarkerKey {
            parent_node: LOCAL_FEED_OWNER.to_string(),
            feed: ALL_CATEGORY.to_string(),
        };
        markers.push((key, marker));
    }
    Ok(markers)
}

/// The node's feed page size: its `[server.api]`, or the default a node without `[server]` would
/// get.
fn feed_page_size(config: &NodeConfig) -> usize {
    config.server.as_ref().map_or_else(
        || sync_host_store::config::ApiConfig::default().page_size,
        |s| s.api.page_size,
    )
}

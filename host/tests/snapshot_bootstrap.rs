//! Bootstrapping a new child from a snapshot of its parent, as an operator does it: `store
//! export` on the stopped parent, `store import --snapshot` on the new child, then both run as
//! `sync-host run` processes. The child resumes the feed after the snapshot, fetches only the
//! later changes and pushes nothing back; a damaged snapshot, or one of another node, changes
//! nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sync_host::network::{Network, NodeSpec, sample};
use sync_host_store::snapshot;
use sync_host_store::store::{ResourceKey, Store, StoreConfig};

/// Resources in the parent when the snapshot is taken, and changes made after it.
const BEFORE: usize = 300;
const AFTER: usize = 40;

fn sync_host(args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_sync-host"))
        .args(args)
        .output()
        .expect("sync-host runs");
    println!(
        "$ sync-host {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Opens a node's store once the node that had it open has let go of it.
fn open_store(dir: &Path, node: &str) -> Store {
    let config = StoreConfig {
        node_id: node.into(),
        history_retention: 10,
        ..StoreConfig::default()
    };
    let path = dir.join("data").join("store");
    let started = Instant::now();
    loop {
        match Store::open(&path, config.clone()) {
            Ok(store) => return store,
            // A stopped in-process node's last handles are dropped by tasks winding down.
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                println!("waiting for {}: {e}", path.display());
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

/// A parent with `BEFORE` resources (one deleted again) and a child's config, both stopped;
/// the child's configuration is rewritten to a fresh data directory.
struct Stopped {
    _dir: tempfile::TempDir,
    root: PathBuf,
    child_config: PathBuf,
    child_dir: PathBuf,
    parent_url: String,
}

async fn stopped_tree() -> anyhow::Result<Stopped> {
    let dir = tempfile::Builder::new()
        .prefix("sync-snapshot-")
        .tempdir()?;
    let specs = vec![
        NodeSpec::new("national", None),
        NodeSpec::new("clinic", Some("national")),
    ];
    let network = Network::start(dir.path(), specs).await?;
    let root_store = network.nodes[0]
        .running
        .handle
        .store
        .clone()
        .expect("store");
    for i in 0..BEFORE {
        let id = format!("p{i}");
        let body = sample::patient(&id, "Amina", "Snapshot", "1984-03-02");
        sample::put_fhir(&root_store, "Patient", &id, body).await?;
    }
    sample::put_fhir(
        &root_store,
        "Observation",
        "w1",
        sample::weight("w1", "p0", "72.50"),
    )
    .await?;
    sample::delete_fhir(&root_store, "Patient", "p1").await?;
    drop(root_store);
    let parent_url = network.nodes[0].running.base_url().to_string();
    let root = network.nodes[0].dir.clone();
    let child = network.nodes[1].dir.clone();
    network.shutdown().await;
    let child_dir = child.join("fresh");
    // A fresh data directory, and scheduled runs (the network drives its nodes by hand).
    let text = std::fs::read_to_string(child.join("node.toml"))?
        .replace(
            &child.join("data").display().to_string(),
            &child_dir.join("data").display().to_string(),
        )
        .replace("interval_secs = 0", "interval_secs = 1");
    let child_config = child.join("fresh.toml");
    std::fs::write(&child_config, text)?;
    Ok(Stopped {
        _dir: dir,
        root,
        child_config,
        child_dir,
        parent_url,
    })
}

/// Starts `sync-host run` and returns it with the URL it listens on.
fn run_node(config: &Path) -> anyhow::Result<(std::process::Child, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sync-host"))
        .args(["--log", "warn", "run", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
    let url = line
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(url.starts_with("http"), "no URL announced: {line:?}");
    Ok((child, url))
}

async fn status(url: &str, token: &str) -> anyhow::Result<serde_json::Value> {
    Ok(reqwest::Client::new()
        .get(format!("{url}/admin/status"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_bootstraps_a_child_that_then_fetches_only_later_changes() -> anyhow::Result<()>
{
    let t = stopped_tree().await?;
    let out = t.root.join("snapshot");
    let root_config = t.root.join("node.toml");
    let export = sync_host(&[
        "store",
        "export",
        "--config",
        root_config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(export.status.success());
    let manifest = snapshot::open(&out)?;
    assert_eq!(manifest.node_id, "national");
    assert_eq!(
        manifest.resources, BEFORE as u64,
        "one deleted of BEFORE + 1"
    );
    assert_eq!(manifest.tombstones, 1);
    assert_eq!(manifest.last_sequence, BEFORE as u64 + 2);

    let import = import_snapshot(&t.child_config, &out);
    assert!(import.status.success());
    // The same snapshot twice: the node is no longer new.
    let again = import_snapshot(&t.child_config, &out);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("new node only"));

    // Changes made after the snapshot, while the parent was still stopped.
    {
        let root_store = open_store(&t.root, "national");
        for i in 0..AFTER {
            let id = format!("later{i}");
            let body = sample::patient(&id, "Later", "Change", "2001-01-01");
            sample::put_fhir(&root_store, "Patient", &id, body).await?;
        }
        root_store.flush().await?;
    }
    let (mut parent, parent_url) = run_node(&root_config)?;
    let text = std::fs::read_to_string(&t.child_config)?.replace(&t.parent_url, &parent_url);
    std::fs::write(&t.child_config, text)?;
    let (mut child, child_url) = run_node(&t.child_config)?;
    let token = std::fs::read_to_string(t.child_config.parent().unwrap().join("admin.token"))?;
    let started = Instant::now();
    let audited = loop {
        let status = status(&child_url, token.trim()).await?;
        let audited = status["counts"]["audit_records"].as_u64().unwrap_or(0);
        let idle = status["pull"]["running"] == false && status["push"]["running"] == false;
        if audited >= AFTER as u64 && idle {
            break audited;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "{status:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Let the push side run at least once more over the node's own feed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let audited_later = status(&child_url, token.trim()).await?["counts"]["audit_records"]
        .as_u64()
        .unwrap_or(0);
    child.kill()?;
    child.wait()?;
    parent.kill()?;
    parent.wait()?;
    // Only the later changes were synced; the push skipped them as echoes of the parent.
    assert!(
        audited_later <= 2 * AFTER as u64,
        "{audited} then {audited_later} audit records: the snapshot's resources were synced again"
    );

    let root_store = open_store(&t.root, "national");
    let child_store = open_store(&t.child_dir, "clinic");
    assert_eq!(
        root_store.last_sequence()?,
        (BEFORE + 2 + AFTER) as u64,
        "the child pushed nothing back"
    );
    for version in root_store.current_versions() {
        let version = version?;
        let held = child_store.read(&version.key)?;
        match held {
            Some(copy) if !version.deleted => {
                assert_eq!(copy.content_hash, version.content_hash, "{}", version.key);
                assert_eq!(copy.origin, "national", "{}", version.key);
            }
            None if version.deleted => {}
            other => panic!("{}: child holds {other:?}", version.key),
        }
    }
    let weight = child_store
        .read(&ResourceKey::fhir("Observation", "w1"))?
        .and_then(|r| r.body)
        .unwrap_or_default();
    assert!(weight.contains("72.50"), "decimals kept: {weight}");
    Ok(())
}

/// `sync-host store import --config config --snapshot dir`.
fn import_snapshot(config: &Path, dir: &Path) -> std::process::Output {
    sync_host(&[
        "store",
        "import",
        "--config",
        config.to_str().unwrap(),
        "--snapshot",
        dir.to_str().unwrap(),
    ])
}

/// Expects `store import --snapshot` to fail naming `expected`, with nothing written.
fn import_fails(t: &Stopped, snapshot: &Path, expected: &str) {
    let output = import_snapshot(&t.child_config, snapshot);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(expected), "`{expected}` not in: {stderr}");
    if t.child_dir.join("data").join("store").exists() {
        let store = open_store(&t.child_dir, "clinic");
        assert_eq!(
            store.last_sequence().unwrap(),
            0,
            "a refused snapshot wrote nothing"
        );
    }
}

fn copy_snapshot(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in [snapshot::MANIFEST_FILE, snapshot::RESOURCES_FILE] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_foreign_snapshot_changes_nothing() -> anyhow::Result<()> {
    let t = stopped_tree().await?;
    let good = t.root.join("snapshot");
    {
        let store = open_store(&t.root, "national");
        snapshot::export(&store, &good, 100, |_| {})?;
    }
    let resources = |dir: &Path| dir.join(snapshot::RESOURCES_FILE);

    let truncated = t.root.join("truncated");
    copy_snapshot(&good, &truncated);
    let bytes = std::fs::read(resources(&truncated))?;
    std::fs::write(resources(&truncated), &bytes[..bytes.len() / 2])?;
    import_fails(&t, &truncated, "damaged or incomplete");

    let flipped = t.root.join("flipped");
    copy_snapshot(&good, &flipped);
    let mut bytes = std::fs::read(resources(&flipped))?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(resources(&flipped), &bytes)?;
    import_fails(&t, &flipped, "damaged or incomplete");

    let foreign = t.root.join("foreign");
    copy_snapshot(&good, &foreign);
    let manifest = std::fs::read_to_string(foreign.join(snapshot::MANIFEST_FILE))?
        .replace("\"national\"", "\"elsewhere\"");
    std::fs::write(foreign.join(snapshot::MANIFEST_FILE), manifest)?;
    import_fails(&t, &foreign, "taken of node `elsewhere`");

    let missing = t.root.join("missing");
    std::fs::create_dir_all(&missing)?;
    import_fails(&t, &missing, "manifest.json");

    // After all that the node is still new: the good snapshot imports.
    let import = import_snapshot(&t.child_config, &good);
    assert!(import.status.success());
    Ok(())
}

//! Crash consistency: a writer process is SIGKILLed at random moments, again and again, on the
//! same store. After every kill the store must reopen with the change log and the resources in
//! exact agreement, and with every write the writer saw acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sync_host_store::store::{Change, ResourceKey, Store, StoreConfig};

/// Kills per test run.
const KILLS: usize = 24;
/// Resources the writer uses (`k0` .. `k63`).
const RESOURCES: usize = 64;

/// An acknowledged write: (resource id, version, deleted).
type Ack = (String, u64, bool);

/// Runs the writer once and kills it after `delay`; returns the lines it completed.
fn run_and_kill(dir: &std::path::Path, run: usize, delay: Duration) -> Vec<Ack> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_store-crash-writer"))
        .arg(dir)
        .arg(run.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("writer starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        // Only complete lines count: a line cut by the kill was never fully acknowledged.
        while lines.read_line(&mut line).unwrap_or(0) > 0 && line.ends_with('\n') {
            let fields: Vec<&str> = line.split_whitespace().collect();
            acks.push((
                fields[0].to_owned(),
                fields[1].parse().unwrap(),
                fields[2] == "del",
            ));
            line.clear();
        }
        acks
    });
    std::thread::sleep(delay);
    child.kill().expect("SIGKILL delivered");
    child.wait().expect("writer reaped");
    reader.join().expect("reader thread")
}

fn all_changes(store: &Store) -> Vec<Change> {
    store.changes(None, 0, usize::MAX).expect("log readable")
}

/// The log and the resources agree exactly, and sequences are contiguous from 1.
fn check_consistency(store: &Store) -> usize {
    let log = all_changes(store);
    let sequences: Vec<u64> = log.iter().map(|change| change.sequence).collect();
    assert_eq!(
        sequences,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "log is contiguous"
    );
    assert_eq!(store.change_count(None).unwrap(), log.len() as u64);
    assert_eq!(*store.subscribe().borrow(), log.len() as u64);
    // Every log entry's version exists, with the hash the log recorded (retention keeps all).
    let mut newest: BTreeMap<&ResourceKey, &Change> = BTreeMap::new();
    for change in &log {
        let version = store.vread(&change.key, change.version_id).unwrap();
        let version = version.unwrap_or_else(|| panic!("log entry {change:?} has no version"));
        assert_eq!(
            (version.sequence, &version.content_hash),
            (change.sequence, &change.content_hash)
        );
        newest.insert(&change.key, change);
    }
    // Every resource's current version is the one its newest log entry names.
    for id in 0..RESOURCES {
        let key = ResourceKey::fhir("Patient", format!("k{id}"));
        match (store.read(&key).unwrap(), newest.get(&key)) {
            (Some(current), Some(change)) => {
                assert_eq!(
                    (current.version_id, current.sequence),
                    (change.version_id, change.sequence)
                );
                let versions = store.history(&key, None, usize::MAX).unwrap();
                assert_eq!(
                    versions.len() as u64,
                    current.version_id,
                    "{key}: every version kept"
                );
            }
            (None, None) => {}
            (current, change) => panic!("{key}: current {current:?} but newest change {change:?}"),
        }
    }
    // The category position index lists exactly the combined log's entries.
    let by_position = store
        .changes_by_position(Some("patient"), 0, usize::MAX)
        .unwrap();
    assert_eq!(by_position, log);
    log.len()
}

fn check_acknowledged(store: &Store, acks: &[Ack]) {
    for (id, version, deleted) in acks {
        let key = ResourceKey::fhir("Patient", id.clone());
        let record = store.vread(&key, *version).unwrap();
        let record = record.unwrap_or_else(|| panic!("acknowledged {key} v{version} was lost"));
        assert_eq!(record.deleted, *deleted, "{key} v{version}");
    }
}

#[test]
fn sigkilled_writers_lose_nothing_acknowledged() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut acknowledged: BTreeSet<Ack> = BTreeSet::new();
    let mut entries = 0;
    for run in 0..KILLS {
        let delay = Duration::from_millis(rng.random_range(30..700));
        let acks = run_and_kill(dir.path(), run, delay);
        acknowledged.extend(acks.iter().cloned());
        let config = StoreConfig {
            node_id: "check".into(),
            history_retention: 0,
            ..StoreConfig::default()
        };
        let store = Store::open(dir.path(), config).expect("store reopens after SIGKILL");
        let now = check_consistency(&store);
        check_acknowledged(&store, &acknowledged.iter().cloned().collect::<Vec<_>>());
        println!(
            "run {run}: killed after {delay:?}, {} acknowledged, log {entries} -> {now}",
            acks.len()
        );
        assert!(now >= entries, "the log never shrinks");
        entries = now;
    }
    println!(
        "{KILLS} kills, {} acknowledged writes, {entries} log entries, {:?}",
        acknowledged.len(),
        started.elapsed()
    );
    assert!(
        acknowledged.len() > KILLS,
        "the writer made progress between kills"
    );
}

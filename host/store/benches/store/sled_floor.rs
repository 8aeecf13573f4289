//! The sled floor of a pulled resource: the same sled operations a node makes for one new
//! resource in a catch-up (store and sync state, in pages of 1,000 with the node's
//! transactions and flushes), with nothing else around them, so the CPU they cost can be set
//! next to a catch-up's CPU per resource.

use std::path::Path;
use std::time::{Duration, Instant};

use sled::Transactional;

/// Resources per page, as a catch-up span reads them.
const PAGE: usize = 1_000;

/// What the floor run cost.
pub struct Floor {
    pub elapsed: Duration,
    pub cpu_seconds: Option<f64>,
    pub operations_per_resource: usize,
}

/// Runs the floor over `bodies` (each stored LZ4-compressed, as the store does).
pub fn run(dir: &Path, bodies: &[String]) -> Floor {
    let store = sled::Config::new()
        .path(dir.join("store"))
        .cache_capacity(128 << 20)
        .open()
        .expect("store db opens");
    let state = sled::Config::new()
        .path(dir.join("state"))
        .cache_capacity(32 << 20)
        .open()
        .expect("state db opens");
    let tree = |db: &sled::Db, name: &str| db.open_tree(name).expect("tree opens");
    let (current, log, positions) = (
        tree(&store, "current"),
        tree(&store, "log"),
        tree(&store, "positions"),
    );
    let (intents, audit, bases) = (
        tree(&state, "intents"),
        tree(&state, "audit"),
        tree(&state, "bases"),
    );
    let (retries, dead, due) = (
        tree(&state, "retries"),
        tree(&state, "dead"),
        tree(&state, "due"),
    );
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut sequence = 0u64;
    for (page, chunk) in bodies.chunks(PAGE).enumerate() {
        let keys: Vec<Vec<u8>> = (0..chunk.len())
            .map(|i| format!("Patient/floor-{page}-{i}").into_bytes())
            .collect();
        // Existence check before fetching, then write intents made durable.
        for key in &keys {
            current.contains_key(key).expect("read");
        }
        for key in &keys {
            intents
                .fetch_and_update(key, |_| Some(vec![0u8; 64]))
                .expect("intent");
        }
        state.flush().expect("flush");
        // The store's group: current version, change log, category position; one flush.
        (&current, &log, &positions)
            .transaction(|(current, log, positions)| {
                for (i, (key, body)) in keys.iter().zip(chunk).enumerate() {
                    let position = sequence + i as u64;
                    current.get(key)?;
                    let mut record = lz4_flex::compress_prepend_size(body.as_bytes());
                    record.extend_from_slice(&[0u8; 96]);
                    current.insert(key.as_slice(), record)?;
                    log.insert(&position.to_be_bytes(), vec![0u8; 160])?;
                    positions.insert(&position.to_be_bytes(), &position.to_be_bytes())?;
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .expect("store transaction");
        store.flush().expect("flush");
        sequence += chunk.len() as u64;
        // The sync state's batch: settle earlier failures, replace the base, append the audit
        // record and advance the marker; one flush; then the intents are cleared.
        (&audit, &bases, &retries, &dead, &due)
            .transaction(|(audit, bases, retries, dead, due)| {
                for key in &keys {
                    retries.get(key)?;
                    due.remove(key.as_slice())?;
                    retries.remove(key.as_slice())?;
                    dead.remove(key.as_slice())?;
                    bases.get(key)?;
                    bases.insert(key.as_slice(), vec![0u8; 150])?;
                    let id = audit.generate_id()?;
                    audit.insert(&id.to_be_bytes(), vec![0u8; 350])?;
                }
                bases.insert(&b"marker"[..], vec![0u8; 120])?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .expect("state transaction");
        state.flush().expect("flush");
        let mut clear = sled::Batch::default();
        for key in &keys {
            clear.remove(key.as_slice());
        }
        intents.apply_batch(clear).expect("clear intents");
    }
    Floor {
        elapsed: started.elapsed(),
        cpu_seconds: cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| after - before),
        // Reads and writes per resource above: existence check, intent (read and write),
        // store get + 3 inserts, state 2 gets + 3 removes + 2 inserts + an id, intent removal.
        operations_per_resource: 15,
    }
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports these in clock ticks of 100 per second on every common platform.
    Some(ticks / 100.0)
}

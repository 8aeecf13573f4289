//! Store benchmark: versioned writes per second through the group committer next to raw sled
//! `insert` + `flush` of the same bytes with the same group pattern, and the store's size on
//! disk next to the raw JSON it holds; and the sled floor of a pulled resource (the sled
//! operations a catch-up makes per resource, alone), the figure to set next to the catch-up
//! bench's CPU per resource.
//!
//! `cargo bench -p sync-host-store --bench store`; `BENCH_RESOURCES` (default 100000) and
//! `BENCH_WRITERS` (default 256) shrink or grow the run.

#[path = "store/sled_floor.rs"]
mod sled_floor;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sync_host_store::store::{Precondition, ResourceKey, Store, StoreConfig, WriteRequest};
use tokio::sync::{mpsc, oneshot};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// ~1.5 KB FHIR Patients: the fhir2 example patient, compacted, with a narrative and its own
/// id and identifier per resource.
fn bodies(count: usize, round: usize) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/openmrs/fhir2/patient-example.json");
    let template: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    (0..count)
        .map(|index| {
            let mut patient = template.clone();
            patient["id"] = format!("bench-{index}").into();
            patient["identifier"][0]["value"] =
                format!("{}", 700_000_000 + index * 7 + round).into();
            patient["text"] = serde_json::json!({
                "status": "generated",
                "div": format!(
                    "<div xmlns=\"http://www.w3.org/1999/xhtml\">Patient {index}, round {round}: \
                     Pieter van de Heuvel, born 17 November 1944, Van Egmondkade 23, Amsterdam. \
                     Contact Sarah Abels (partner), 0690383372. General practitioner: \
                     Burgers University Medical Centre.</div>"
                ),
            });
            patient.to_string()
        })
        .collect()
}

/// Writes every body through the store from `writers` concurrent tasks.
async fn store_writes(store: &Store, bodies: Arc<Vec<String>>, writers: usize) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let (store, bodies) = (store.clone(), bodies.clone());
            tokio::spawn(async move {
                for index in (writer..bodies.len()).step_by(writers) {
                    let key = ResourceKey::fhir("Patient", format!("bench-{index}"));
                    let body = Some(bodies[index].clone());
                    let request = WriteRequest {
                        key,
                        body,
                        precondition: Precondition::Any,
                        origin: None,
                    };
                    store.write(request).await.expect("write");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer task");
    }
    started.elapsed()
}

type RawJob = (Vec<u8>, Vec<u8>, oneshot::Sender<()>);

/// Raw sled with the store's group pattern: one thread inserts what is queued, flushes once,
/// then answers every writer.
async fn raw_sled_writes(dir: &Path, bodies: Arc<Vec<String>>, writers: usize) -> Duration {
    let db = sled::open(dir).expect("sled opens");
    let (queue, mut jobs) = mpsc::unbounded_channel::<RawJob>();
    let committer = std::thread::spawn(move || {
        while let Some(first) = jobs.blocking_recv() {
            let mut group = vec![first];
            while let Ok(job) = jobs.try_recv() {
                group.push(job);
            }
            for (key, value, _) in &group {
                db.insert(key, value.as_slice()).expect("insert");
            }
            db.flush().expect("flush");
            for (_, _, reply) in group {
                let _ = reply.send(());
            }
        }
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let (queue, bodies) = (queue.clone(), bodies.clone());
            tokio::spawn(async move {
                for index in (writer..bodies.len()).step_by(writers) {
                    let (reply, done) = oneshot::channel();
                    let key = format!("Patient/bench-{index}").into_bytes();
                    queue
                        .send((key, bodies[index].as_bytes().to_vec(), reply))
                        .expect("queue");
                    done.await.expect("raw commit");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("raw writer task");
    }
    let elapsed = started.elapsed();
    drop(queue);
    committer.join().expect("raw committer");
    elapsed
}

/// Bytes of all files under `dir`.
fn directory_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => directory_size(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let count = env_number("BENCH_RESOURCES", 100_000);
    let writers = env_number("BENCH_WRITERS", 256);
    let first = Arc::new(bodies(count, 0));
    let second = Arc::new(bodies(count, 1));
    let average = first.iter().map(String::len).sum::<usize>() / count.max(1);
    println!(
        "store benchmark: {count} resources of ~{average} bytes, {writers} concurrent writers"
    );

    let floor_dir = tempfile::tempdir().expect("tempdir");
    let floor = sled_floor::run(floor_dir.path(), &first);
    if let Some(cpu) = floor.cpu_seconds {
        println!(
            "sled floor of a pulled resource: {:>6.1} us CPU per resource ({} sled operations \
             each, pages of 1000, 3 flushes per page; {:.0} resources/s)",
            cpu * 1e6 / count as f64,
            floor.operations_per_resource,
            rate(count, floor.elapsed)
        );
    }
    drop(floor_dir);

    let raw_dir = tempfile::tempdir().expect("tempdir");
    let raw = raw_sled_writes(raw_dir.path(), first.clone(), writers).await;
    let raw_rate = rate(count, raw);
    println!("raw sled insert+flush : {raw_rate:>10.0} writes/s ({raw:.2?})");

    let dir = tempfile::tempdir().expect("tempdir");
    let config = StoreConfig {
        node_id: "bench".into(),
        history_retention: 1,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), config).expect("store opens");
    let created = store_writes(&store, first.clone(), writers).await;
    let created_rate = rate(count, created);
    println!(
        "store versioned create: {created_rate:>10.0} writes/s ({created:.2?}), {:.2}x raw sled",
        created_rate / raw_rate
    );
    store.flush().await.expect("flush");
    let json_first: u64 = first.iter().map(|body| body.len() as u64).sum();
    let after_create = directory_size(dir.path());
    println!(
        "store on disk after creates (1 version each): {:.1} MiB vs raw JSON {:.1} MiB ({:.2}x)",
        megabytes(after_create),
        megabytes(json_first),
        after_create as f64 / json_first as f64
    );
    let updated = store_writes(&store, second.clone(), writers).await;
    let updated_rate = rate(count, updated);
    println!(
        "store versioned update: {updated_rate:>10.0} writes/s ({updated:.2?}), {:.2}x raw sled",
        updated_rate / raw_rate
    );
    assert_eq!(store.change_count(None).expect("count"), 2 * count as u64);

    store.flush().await.expect("flush");
    let json_current: u64 = second.iter().map(|body| body.len() as u64).sum();
    let json_all: u64 = json_current + json_first;
    let on_disk = directory_size(dir.path());
    println!(
        "store on disk (retention 1, 2 versions each): {:.1} MiB; raw JSON of current versions \
         {:.1} MiB ({:.2}x); of both kept versions {:.1} MiB ({:.2}x); sled size_on_disk {:.1} MiB",
        megabytes(on_disk),
        megabytes(json_current),
        on_disk as f64 / json_current as f64,
        megabytes(json_all),
        on_disk as f64 / json_all as f64,
        megabytes(store.size_on_disk().expect("size")),
    );
    println!(
        "raw sled on disk (current only): {:.1} MiB",
        megabytes(directory_size(raw_dir.path()))
    );
}

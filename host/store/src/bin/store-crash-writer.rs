//! Crash-test writer: writes to a store in a loop from many concurrent tasks and prints every
//! acknowledged write as `id version put|del` on its own line, flushed at once, so a test can
//! SIGKILL it at any moment and then check that everything it printed survived.
//!
//! Usage: `store-crash-writer <store-dir> <run-number>`.

use std::io::Write;
use std::path::PathBuf;

use sync_host_store::store::{
    Precondition, ResourceKey, Store, StoreConfig, WriteOutcome, WriteRequest,
};

/// Concurrent writer tasks; enough to form real commit groups.
const WRITERS: usize = 16;
/// Distinct resources written, so versions pile up on each.
const RESOURCES: usize = 64;

fn request(id: usize, run: u64, writer: usize, counter: u64, delete: bool) -> WriteRequest {
    let key = ResourceKey::fhir("Patient", format!("k{id}"));
    let body = (!delete).then(|| {
        format!(
            r#"{{"resourceType":"Patient","id":"k{id}","run":{run},"writer":{writer},"counter":{counter},"weight":72.50}}"#
        )
    });
    WriteRequest {
        key,
        body,
        precondition: Precondition::Any,
        origin: None,
    }
}

/// Prints one acknowledged outcome; exits when stdout is gone (the test stopped reading).
fn acknowledge(outcome: &WriteOutcome) {
    let (record, marker) = match outcome {
        WriteOutcome::Created(record) | WriteOutcome::Updated(record) => (record, "put"),
        WriteOutcome::Deleted(record) => (record, "del"),
        WriteOutcome::Unchanged(_) | WriteOutcome::AlreadyGone => return,
    };
    let mut out = std::io::stdout().lock();
    let line = format!("{} {} {marker}\n", record.key.id, record.version_id);
    if out
        .write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

async fn write_forever(store: Store, run: u64, writer: usize) -> Result<(), String> {
    for counter in 0u64.. {
        let id = (writer * 7 + counter as usize) % RESOURCES;
        let outcomes = if counter % 25 == 24 {
            // A multi-resource unit: all of it or none of it must survive.
            let unit = (0..3)
                .map(|offset| request((id + offset) % RESOURCES, run, writer, counter, false))
                .collect();
            store.write_all(unit).await
        } else {
            let delete = counter % 10 == 9;
            store
                .write(request(id, run, writer, counter, delete))
                .await
                .map(|outcome| vec![outcome])
        };
        for outcome in outcomes.map_err(|error| error.to_string())? {
            acknowledge(&outcome);
        }
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(run)) = (args.next(), args.next()) else {
        return Err("usage: store-crash-writer <store-dir> <run-number>".into());
    };
    let run: u64 = run.parse()?;
    let config = StoreConfig {
        node_id: "crash".into(),
        history_retention: 0,
        ..StoreConfig::default()
    };
    let store = Store::open(&PathBuf::from(dir), config)?;
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| tokio::spawn(write_forever(store.clone(), run, writer)))
        .collect();
    for writer in writers {
        writer.await??;
    }
    Ok(())
}

//! Many concurrent writers through the group committer: every write is acknowledged once, the
//! change log is contiguous and agrees with the resources.

use std::collections::BTreeSet;

use futures::FutureExt;

use sync_host_store::store::{
    Precondition, ResourceKey, Store, StoreConfig, WriteOutcome, WriteRequest,
};

fn open(dir: &std::path::Path) -> Store {
    let config = StoreConfig {
        node_id: "n".into(),
        history_retention: 1,
        ..StoreConfig::default()
    };
    Store::open(dir, config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_commits_and_keep_the_log_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut tasks = Vec::new();
    for writer in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut sequences = Vec::new();
            for round in 0..20 {
                // Writers overlap on keys so versions of one resource interleave across writers.
                let key = ResourceKey::fhir("Patient", format!("p{}", (writer + round) % 32));
                let body = format!(r#"{{"resourceType":"Patient","w":{writer},"r":{round}}}"#);
                let request = WriteRequest {
                    key,
                    body: Some(body),
                    precondition: Precondition::Any,
                    origin: None,
                };
                match store.write(request).await.unwrap() {
                    WriteOutcome::Created(record) | WriteOutcome::Updated(record) => {
                        sequences.push(record.sequence)
                    }
                    other => panic!("unexpected outcome {other:?}"),
                }
            }
            sequences
        }));
    }
    let mut all = BTreeSet::new();
    for task in tasks {
        for sequence in task.await.unwrap() {
            assert!(
                all.insert(sequence),
                "sequence {sequence} acknowledged twice"
            );
        }
    }
    assert_eq!(all.len(), 64 * 20);
    assert_eq!(
        all.iter().copied().collect::<Vec<_>>(),
        (1..=1280).collect::<Vec<u64>>()
    );
    let log = store.changes(None, 0, 10_000).unwrap();
    assert_eq!(log.len(), 1280);
    for id in 0..32 {
        let key = ResourceKey::fhir("Patient", format!("p{id}"));
        let current = store.read(&key).unwrap().unwrap();
        let entry = &log[current.sequence as usize - 1];
        assert_eq!((&entry.key, entry.version_id), (&key, current.version_id));
        assert_eq!(entry.content_hash, current.content_hash);
    }
    assert_eq!(store.change_count(Some("patient")).unwrap(), 1280);
}

fn write_request(id: &str, precondition: Precondition) -> WriteRequest {
    WriteRequest {
        key: ResourceKey::fhir("Patient", id),
        body: Some(format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#)),
        precondition,
        origin: None,
    }
}

#[tokio::test]
async fn requests_served_together_commit_in_one_group_with_their_own_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write(write_request("taken", Precondition::Any))
        .await
        .unwrap();
    let before = store.commit_groups();
    let mut requests = Vec::new();
    for i in 0..300 {
        let store = store.clone();
        requests.push(async move {
            // Every 100th write carries a precondition the store must refuse, alone.
            let (id, precondition) = if i % 100 == 7 {
                ("taken".to_string(), Precondition::Version(99))
            } else {
                (format!("p{i}"), Precondition::Any)
            };
            store.write(write_request(&id, precondition)).await
        });
    }
    let outcomes = sync_host_store::store::serve_together(requests).await;
    assert_eq!(store.commit_groups() - before, 1, "one group for the batch");
    let refused = outcomes.iter().filter(|o| o.is_err()).count();
    assert_eq!(refused, 3);
    for (i, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok(WriteOutcome::Created(record)) => assert_eq!(record.key.id, format!("p{i}")),
            Err(_) => assert_eq!(i % 100, 7),
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(store.change_count(None).unwrap(), 298);
}

#[tokio::test]
async fn a_request_that_waits_on_something_else_does_not_hold_the_batch_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let slow = {
        let store = store.clone();
        async move {
            wait.await.unwrap();
            store.write(write_request("slow", Precondition::Any)).await
        }
        .boxed()
    };
    let fast = {
        let store = store.clone();
        async move {
            let written = store.write(write_request("fast", Precondition::Any)).await;
            // The fast write was committed while the slow request still waited.
            release.send(()).unwrap();
            written
        }
        .boxed()
    };
    let outcomes = sync_host_store::store::serve_together(vec![slow, fast]).await;
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(store.change_count(None).unwrap(), 2);
}

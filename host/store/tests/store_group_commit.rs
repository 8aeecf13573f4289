//! Many concurrent writers through the group committer: every write is acknowledged once, the
//! change log is contiguous and agrees with the resources.

use std::collections::BTreeSet;

use sync_host_store::store::{
    Precondition, ResourceKey, Store, StoreConfig, WriteOutcome, WriteRequest,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_commits_and_keep_the_log_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        node_id: "n".into(),
        history_retention: 1,
    };
    let store = Store::open(dir.path(), config).unwrap();
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

//! Audit log against a real sled database: filters, paging newest first, retention, export.

use std::time::Duration;

use sync_host::audit::{
    AuditLog, AuditQuery, AuditRecord, Outcome, OutcomeKind, PluginRef, Retention, SkipReason,
    Timestamp,
};
use sync_host::sync::conflict::Direction;
use sync_host::sync::retry::FailureKind;

fn record(millis: u64, direction: Direction, resource_id: &str, outcome: Outcome) -> AuditRecord {
    AuditRecord {
        time: Timestamp::from_millis(millis),
        node: if millis.is_multiple_of(2) {
            "clinic-a"
        } else {
            "clinic-b"
        }
        .to_owned(),
        direction,
        action: "updated".to_owned(),
        category: "patient".to_owned(),
        resource_type: if resource_id.starts_with("enc") {
            "Encounter"
        } else {
            "Patient"
        }
        .to_owned(),
        resource_id: resource_id.to_owned(),
        event_id: Some(format!("urn:uuid:event-{millis}")),
        source_url: Some("http://127.0.0.1:1/ws/fhir2/R4".to_owned()),
        target_url: Some("local".to_owned()),
        plugin: Some(PluginRef {
            name: "fhir".to_owned(),
            version: "0.1.0".to_owned(),
        }),
        outcome,
        duration_ms: 3,
    }
}

fn outcome_for(i: u64) -> Outcome {
    match i % 4 {
        0 => Outcome::Applied,
        1 => Outcome::Unchanged,
        2 => Outcome::Failed {
            failure: FailureKind::Transient,
            status: Some(503),
            message: "upstream down".to_owned(),
            attempt: 1,
        },
        _ => Outcome::Skipped {
            reason: SkipReason::Echo,
        },
    }
}

/// 40 records, one per 10 ms, alternating direction, over 5 resources.
fn sample() -> Vec<AuditRecord> {
    (0..40)
        .map(|i| {
            let direction = if i % 3 == 0 {
                Direction::Push
            } else {
                Direction::Pull
            };
            let id = if i % 5 == 0 {
                format!("enc-{}", i % 2)
            } else {
                format!("pat-{}", i % 3)
            };
            record(1_000 + i * 10, direction, &id, outcome_for(i))
        })
        .collect()
}

fn open_log() -> anyhow::Result<(tempfile::TempDir, sled::Db, AuditLog)> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let log = AuditLog::new(db.open_tree("audit")?);
    Ok((dir, db, log))
}

/// Walks every page of `query` and returns the records in the order served.
fn all_pages(log: &AuditLog, mut query: AuditQuery) -> anyhow::Result<Vec<AuditRecord>> {
    let mut out = Vec::new();
    loop {
        let page = log.query(&query)?;
        assert!(page.entries.len() <= query.page_size());
        out.extend(page.entries.into_iter().map(|e| e.record));
        match page.next {
            Some(next) => query.before = Some(next),
            None => return Ok(out),
        }
    }
}

fn expected(records: &[AuditRecord], keep: impl Fn(&AuditRecord) -> bool) -> Vec<AuditRecord> {
    let mut out: Vec<_> = records.iter().filter(|r| keep(r)).cloned().collect();
    out.reverse();
    out
}

#[test]
fn pages_are_newest_first_and_cover_everything_once() -> anyhow::Result<()> {
    let (_dir, _db, log) = open_log()?;
    let records = sample();
    // Appended in two batches, out of time order, to show the key (not insertion) orders.
    log.append_batch(&records[20..])?;
    log.append_batch(&records[..20])?;
    let served = all_pages(
        &log,
        AuditQuery {
            limit: 7,
            ..AuditQuery::default()
        },
    )?;
    assert_eq!(served, expected(&records, |_| true));
    Ok(())
}

#[test]
fn every_filter_narrows_the_answer() -> anyhow::Result<()> {
    let (_dir, _db, log) = open_log()?;
    let records = sample();
    log.append_batch(&records)?;
    let base = AuditQuery {
        limit: 4,
        ..AuditQuery::default()
    };

    let q = AuditQuery {
        outcome: Some(OutcomeKind::Failed),
        ..base.clone()
    };
    let want = expected(&records, |r| r.outcome.kind() == OutcomeKind::Failed);
    assert_eq!(want.len(), 10);
    assert_eq!(all_pages(&log, q)?, want);

    let q = AuditQuery {
        direction: Some(Direction::Push),
        ..base.clone()
    };
    assert_eq!(
        all_pages(&log, q)?,
        expected(&records, |r| r.direction == Direction::Push)
    );

    let q = AuditQuery {
        resource_type: Some("Encounter".into()),
        ..base.clone()
    };
    assert_eq!(
        all_pages(&log, q)?,
        expected(&records, |r| r.resource_type == "Encounter")
    );

    let q = AuditQuery {
        resource_id: Some("pat-1".into()),
        node: Some("clinic-a".into()),
        ..base.clone()
    };
    let want = expected(&records, |r| {
        r.resource_id == "pat-1" && r.node == "clinic-a"
    });
    assert!(!want.is_empty());
    assert_eq!(all_pages(&log, q)?, want);

    let (since, until) = (Timestamp::from_millis(1_100), Timestamp::from_millis(1_200));
    let q = AuditQuery {
        since: Some(since),
        until: Some(until),
        ..base
    };
    let want = expected(&records, |r| r.time >= since && r.time < until);
    assert_eq!(want.len(), 10);
    assert_eq!(all_pages(&log, q)?, want);
    Ok(())
}

#[test]
fn records_of_the_same_millisecond_keep_distinct_keys() -> anyhow::Result<()> {
    let (_dir, _db, log) = open_log()?;
    let same: Vec<_> = (0..5)
        .map(|i| {
            record(
                7_000,
                Direction::Pull,
                &format!("pat-{i}"),
                Outcome::Applied,
            )
        })
        .collect();
    let keys = log.append_batch(&same)?;
    assert_eq!(keys.len(), 5);
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "keys grow in append order: {keys:?}"
    );
    let page = log.query(&AuditQuery::default())?;
    let ids: Vec<_> = page
        .entries
        .iter()
        .map(|e| e.record.resource_id.as_str())
        .collect();
    assert_eq!(ids, ["pat-4", "pat-3", "pat-2", "pat-1", "pat-0"]);
    assert_eq!(
        log.get(keys[2])?.map(|r| r.resource_id),
        Some("pat-2".to_owned())
    );
    Ok(())
}

#[test]
fn prune_removes_by_age_then_by_count_oldest_first() -> anyhow::Result<()> {
    let (_dir, _db, log) = open_log()?;
    let records = sample();
    log.append_batch(&records)?;
    // Now is 1_390 ms; keeping 100 ms of history keeps records at 1_290..=1_390.
    let now = Timestamp::from_millis(1_390);
    let by_age = Retention {
        max_age: Some(Duration::from_millis(100)),
        max_records: None,
    };
    let report = log.prune(by_age, now)?;
    assert_eq!(report.removed_by_age, 29);
    assert_eq!(log.len(), 11);

    let by_count = Retention {
        max_age: None,
        max_records: Some(4),
    };
    let report = log.prune(by_count, now)?;
    assert_eq!(report.removed_by_count, 7);
    let left = all_pages(&log, AuditQuery::default())?;
    assert_eq!(left, expected(&records[36..], |_| true));
    // The kept count agrees with what the tree holds, and with a count made afresh.
    assert_eq!(log.len(), 4);
    assert_eq!(log.len(), log.tree().len());
    assert_eq!(AuditLog::new(log.tree().clone()).len(), 4);
    Ok(())
}

#[test]
fn export_writes_json_lines_oldest_first() -> anyhow::Result<()> {
    let (_dir, _db, log) = open_log()?;
    let records = sample();
    log.append_batch(&records)?;
    let mut out = Vec::new();
    let query = AuditQuery {
        direction: Some(Direction::Pull),
        ..AuditQuery::default()
    };
    let written = log.export_jsonl(&query, &mut out)?;
    let text = String::from_utf8(out)?;
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), written);
    let parsed: Vec<AuditRecord> = lines
        .iter()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)?;
            assert!(
                value["key"]["seq"].is_u64(),
                "each line carries its key: {line}"
            );
            Ok(serde_json::from_value(value["record"].clone())?)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut want = expected(&records, |r| r.direction == Direction::Pull);
    want.reverse();
    assert_eq!(parsed, want);
    assert!(
        lines[0].contains("\"time\":\"1970-01-01T00:00:01.01Z\""),
        "{}",
        lines[0]
    );
    Ok(())
}

/// Opens the database at `path`, waiting while sled's background flusher of a just-dropped
/// handle still holds the file lock.
fn reopen(path: &std::path::Path) -> anyhow::Result<sled::Db> {
    for _ in 0..100 {
        match sled::open(path) {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(sled::open(path)?)
}

#[test]
fn records_survive_reopening_the_database() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let records = sample();
    {
        let db = sled::open(dir.path())?;
        AuditLog::new(db.open_tree("audit")?).append_batch(&records)?;
        db.flush()?;
    }
    let db = reopen(dir.path())?;
    let log = AuditLog::new(db.open_tree("audit")?);
    assert_eq!(
        all_pages(&log, AuditQuery::default())?,
        expected(&records, |_| true)
    );
    Ok(())
}

/// Queries stay fast on a log of realistic size: the first page is a short reverse scan, and
/// a selective filter over a bounded time range reads only that range.
#[test]
fn queries_on_a_large_log_answer_quickly() -> anyhow::Result<()> {
    let (_dir, _db, log) = open_log()?;
    let records: Vec<_> = (0..20_000u64)
        .map(|i| {
            let id = format!("pat-{}", i % 500);
            record(1_000_000 + i * 100, Direction::Pull, &id, outcome_for(i))
        })
        .collect();
    let started = std::time::Instant::now();
    for chunk in records.chunks(500) {
        log.append_batch(chunk)?;
    }
    let append = started.elapsed();

    let started = std::time::Instant::now();
    let newest = log.query(&AuditQuery {
        limit: 50,
        ..AuditQuery::default()
    })?;
    let first_page = started.elapsed();
    assert_eq!(newest.entries.len(), 50);
    assert_eq!(newest.entries[0].record, records[19_999]);

    let started = std::time::Instant::now();
    let one_resource = AuditQuery {
        resource_id: Some("pat-7".into()),
        since: Some(Timestamp::from_millis(1_000_000 + 10_000 * 100)),
        ..AuditQuery::default()
    };
    let hits = all_pages(&log, one_resource)?;
    let filtered = started.elapsed();
    assert_eq!(hits.len(), 20);

    println!(
        "20000 records: append {append:?}, newest page of 50 {first_page:?}, \
         one resource over half the log {filtered:?}"
    );
    assert!(
        first_page < Duration::from_secs(2),
        "first page took {first_page:?}"
    );
    assert!(
        filtered < Duration::from_secs(10),
        "filtered scan took {filtered:?}"
    );
    Ok(())
}

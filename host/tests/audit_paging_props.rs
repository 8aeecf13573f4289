//! Model check of audit queries: for random logs and random filters, walking every page
//! returns exactly the matching records, newest first, each once.

use proptest::prelude::*;
use sync_host::audit::{AuditLog, AuditQuery, AuditRecord, Outcome, OutcomeKind, Timestamp};
use sync_host::sync::conflict::Direction;

fn record(time: u64, pull: bool, resource: u8, applied: bool) -> AuditRecord {
    AuditRecord {
        time: Timestamp::from_millis(time),
        node: format!("node-{}", resource % 2),
        direction: if pull {
            Direction::Pull
        } else {
            Direction::Push
        },
        action: "created".into(),
        category: "obs".into(),
        resource_type: "Observation".into(),
        resource_id: format!("obs-{resource}"),
        event_id: None,
        source_url: None,
        target_url: None,
        plugin: None,
        outcome: if applied {
            Outcome::Applied
        } else {
            Outcome::Unchanged
        },
        duration_ms: 0,
    }
}

fn arb_records() -> impl Strategy<Value = Vec<AuditRecord>> {
    // Few distinct times, so many records share a millisecond.
    proptest::collection::vec((0u64..20, any::<bool>(), 0u8..4, any::<bool>()), 0..60).prop_map(
        |v| {
            v.into_iter()
                .map(|(t, p, r, a)| record(t, p, r, a))
                .collect()
        },
    )
}

fn arb_query() -> impl Strategy<Value = AuditQuery> {
    (
        proptest::option::of(0u64..20),
        proptest::option::of(0u64..21),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(0u8..4),
        1usize..8,
    )
        .prop_map(
            |(since, until, pull, applied, resource, limit)| AuditQuery {
                since: since.map(Timestamp::from_millis),
                until: until.map(Timestamp::from_millis),
                direction: pull.map(|p| if p { Direction::Pull } else { Direction::Push }),
                outcome: applied.map(|a| {
                    if a {
                        OutcomeKind::Applied
                    } else {
                        OutcomeKind::Unchanged
                    }
                }),
                resource_id: resource.map(|r| format!("obs-{r}")),
                limit,
                ..AuditQuery::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn paging_returns_exactly_the_matching_records(records in arb_records(), query in arb_query()) {
        let db = sled::Config::new().temporary(true).open().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let log = AuditLog::new(db.open_tree("audit").map_err(|e| TestCaseError::fail(e.to_string()))?);
        // One append per record, so the append order is the tie-break within a millisecond.
        for r in &records {
            log.append_batch(std::slice::from_ref(r)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let mut expected: Vec<(usize, &AuditRecord)> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                query.since.is_none_or(|s| r.time >= s)
                    && query.until.is_none_or(|u| r.time < u)
                    && query.matches(r)
            })
            .collect();
        expected.sort_by_key(|(i, r)| std::cmp::Reverse((r.time, *i)));
        let expected: Vec<AuditRecord> = expected.into_iter().map(|(_, r)| r.clone()).collect();

        let mut served = Vec::new();
        let mut q = query.clone();
        loop {
            let page = log.query(&q).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(page.entries.len() <= q.limit);
            served.extend(page.entries.into_iter().map(|e| e.record));
            match page.next {
                Some(next) => q.before = Some(next),
                None => break,
            }
        }
        prop_assert_eq!(served, expected);
    }
}

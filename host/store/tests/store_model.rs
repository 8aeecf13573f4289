//! Model-based property test: random writes and deletes against a real store and against a
//! tiny in-memory model must agree on every outcome, version and change-log entry.

use std::collections::HashMap;

use proptest::prelude::*;
use sync_host_store::store::{
    Action, Kind, Precondition, ResourceKey, Store, StoreConfig, WriteOutcome, WriteRequest,
};

#[derive(Debug, Clone)]
enum Op {
    Put { id: u8, rest: bool, content: u8 },
    Delete { id: u8, rest: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..4, any::<bool>(), 0u8..3).prop_map(|(id, rest, content)| Op::Put { id, rest, content }),
        1 => (0u8..4, any::<bool>()).prop_map(|(id, rest)| Op::Delete { id, rest }),
    ]
}

fn key(id: u8, rest: bool) -> ResourceKey {
    if rest {
        ResourceKey::rest("patient", format!("u{id}"))
    } else {
        ResourceKey::fhir("Patient", format!("p{id}"))
    }
}

/// What the model remembers per resource: version, content, deleted.
type ModelState = HashMap<ResourceKey, (u64, u8, bool)>;

/// The action the model expects, or `None` when nothing is logged.
fn expect(model: &mut ModelState, op: &Op) -> Option<(ResourceKey, u64, Action)> {
    match *op {
        Op::Put { id, rest, content } => {
            let key = key(id, rest);
            let entry = model.get(&key).copied();
            let (version, action) = match entry {
                Some((_, old, false)) if old == content => return None,
                Some((version, _, false)) => (version + 1, Action::Updated),
                Some((version, _, true)) => (version + 1, Action::Created),
                None => (1, Action::Created),
            };
            model.insert(key.clone(), (version, content, false));
            Some((key, version, action))
        }
        Op::Delete { id, rest } => {
            let key = key(id, rest);
            match model.get(&key).copied() {
                Some((version, content, false)) => {
                    model.insert(key.clone(), (version + 1, content, true));
                    Some((key, version + 1, Action::Deleted))
                }
                _ => None,
            }
        }
    }
}

fn request(op: &Op) -> WriteRequest {
    let (key, body) = match *op {
        Op::Put { id, rest, content } => (
            key(id, rest),
            Some(format!(r#"{{"resourceType":"Patient","c":{content}}}"#)),
        ),
        Op::Delete { id, rest } => (key(id, rest), None),
    };
    WriteRequest {
        key,
        body,
        precondition: Precondition::Any,
        origin: None,
    }
}

async fn run(ops: Vec<Op>, retention: usize) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        node_id: "model".into(),
        history_retention: retention,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), config).unwrap();
    let mut model = ModelState::new();
    let mut expected_log = Vec::new();
    for op in &ops {
        let expected = expect(&mut model, op);
        let outcome = store.write(request(op)).await.unwrap();
        match (&expected, outcome.record()) {
            (None, _) => prop_assert!(
                matches!(
                    outcome,
                    WriteOutcome::Unchanged(_) | WriteOutcome::AlreadyGone
                ),
                "{op:?}: expected no change, got {outcome:?}"
            ),
            (Some((_, version, action)), Some(record)) => {
                prop_assert_eq!((record.version_id, record.action), (*version, *action));
            }
            (Some(_), None) => prop_assert!(false, "{op:?}: expected a change, got {outcome:?}"),
        }
        expected_log.extend(expected);
    }
    let log = store.changes(None, 0, usize::MAX).unwrap();
    let actual: Vec<_> = log
        .iter()
        .map(|c| (c.key.clone(), c.version_id, c.action))
        .collect();
    prop_assert_eq!(&actual, &expected_log);
    prop_assert_eq!(
        store.change_count(Some("patient")).unwrap(),
        expected_log.len() as u64
    );
    for (key, (version, _, deleted)) in &model {
        let current = store.read(key).unwrap().unwrap();
        prop_assert_eq!((current.version_id, current.deleted), (*version, *deleted));
        let kept = store.history(key, None, usize::MAX).unwrap().len() as u64;
        let expected_kept = if retention == 0 {
            *version
        } else {
            (*version).min(retention as u64 + 1)
        };
        prop_assert_eq!(kept, expected_kept, "{} history", key);
    }
    let live = |kind| {
        store.list(
            kind,
            if kind == Kind::Rest {
                "patient"
            } else {
                "Patient"
            },
            None,
            100,
        )
    };
    let listed = live(Kind::Fhir).unwrap().len() + live(Kind::Rest).unwrap().len();
    prop_assert_eq!(
        listed,
        model.values().filter(|(_, _, deleted)| !deleted).count()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn store_agrees_with_a_model(ops in prop::collection::vec(op(), 1..40), retention in 0usize..3) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(ops, retention))?;
    }
}

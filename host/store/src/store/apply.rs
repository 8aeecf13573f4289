//! Applies a group of queued writes in one sled transaction: resource, history, change log,
//! category position index and counters move together or not at all.

use std::collections::HashMap;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use time::OffsetDateTime;

use super::codec;
use super::plan::{self, Context, Decision};
use super::types::{Change, StoreError, VersionRecord, WriteOutcome, WriteRequest};

/// Key of the node-wide sequence counter in the `counters` tree.
pub(crate) const SEQUENCE_COUNTER: &[u8] = b"s";
/// Prefix of per-category entry counters in the `counters` tree.
pub(crate) const CATEGORY_COUNTER_PREFIX: &[u8] = b"c";

/// The sled trees of a store.
#[derive(Clone)]
pub(crate) struct Trees {
    /// The database, for flushing.
    pub db: sled::Db,
    /// Resource key -> current version (possibly a tombstone).
    pub current: sled::Tree,
    /// Resource key, 0, version -> an older version kept for history.
    pub history: sled::Tree,
    /// Sequence -> change.
    pub log: sled::Tree,
    /// Category, 0, position -> sequence.
    pub positions: sled::Tree,
    /// Sequence counter and per-category entry counts.
    pub counters: sled::Tree,
}

impl Trees {
    /// Opens (or creates) the trees of `db`.
    pub fn open(db: sled::Db) -> Result<Trees, StoreError> {
        Ok(Trees {
            current: db.open_tree("current")?,
            history: db.open_tree("history")?,
            log: db.open_tree("log")?,
            positions: db.open_tree("positions")?,
            counters: db.open_tree("counters")?,
            db,
        })
    }
}

/// Counter key of a category's entry count.
pub(crate) fn category_counter(category: &str) -> Vec<u8> {
    let mut key = CATEGORY_COUNTER_PREFIX.to_vec();
    key.extend_from_slice(category.as_bytes());
    key
}

/// One queued unit: a single write, or the writes of a transaction bundle (all or nothing).
pub(crate) type Unit = Vec<WriteRequest>;
/// The answer to one unit.
pub(crate) type UnitResult = Result<Vec<WriteOutcome>, StoreError>;

/// Settings the apply step needs.
pub(crate) struct ApplySettings<'a> {
    pub node_id: &'a str,
    pub history_retention: usize,
}

/// The transaction's view of the five trees.
struct View<'t> {
    current: &'t TransactionalTree,
    history: &'t TransactionalTree,
    log: &'t TransactionalTree,
    positions: &'t TransactionalTree,
    counters: &'t TransactionalTree,
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// Applies every unit in one transaction and returns each unit's result plus the last sequence.
pub(crate) fn apply_group(
    trees: &Trees,
    units: &[&Unit],
    settings: &ApplySettings<'_>,
    now: OffsetDateTime,
) -> Result<(Vec<UnitResult>, u64), StoreError> {
    let all = (
        &trees.current,
        &trees.history,
        &trees.log,
        &trees.positions,
        &trees.counters,
    );
    all.transaction(|(current, history, log, positions, counters)| {
        let view = View {
            current,
            history,
            log,
            positions,
            counters,
        };
        let mut sequence = read_counter(view.counters, SEQUENCE_COUNTER)?;
        let mut results = Vec::with_capacity(units.len());
        for unit in units {
            let decided = decide_unit(&view, unit, settings, now, sequence)?;
            results.push(match decided {
                Ok(decisions) => {
                    let outcomes = write_unit(&view, decisions, settings)?;
                    sequence = read_counter(view.counters, SEQUENCE_COUNTER)?;
                    Ok(outcomes)
                }
                Err(error) => Err(error),
            });
        }
        Ok((results, sequence))
    })
    .map_err(|error| match error {
        sled::transaction::TransactionError::Abort(error) => error,
        sled::transaction::TransactionError::Storage(error) => error.into(),
    })
}

fn storage(error: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(error)
}

fn read_counter(counters: &TransactionalTree, key: &[u8]) -> TxResult<u64> {
    match counters.get(key)? {
        Some(bytes) => codec::decode_u64(&bytes).map_err(storage),
        None => Ok(0),
    }
}

fn read_current(
    view: &View<'_>,
    key: &super::types::ResourceKey,
) -> TxResult<Option<VersionRecord>> {
    match view.current.get(codec::resource_key(key))? {
        Some(bytes) => codec::decode_record(key.clone(), &bytes)
            .map(Some)
            .map_err(storage),
        None => Ok(None),
    }
}

/// Decides every request of a unit against the state the earlier ones leave behind, so a unit
/// that writes one resource twice sees its own first write. Nothing is written yet.
fn decide_unit(
    view: &View<'_>,
    unit: &Unit,
    settings: &ApplySettings<'_>,
    now: OffsetDateTime,
    last_sequence: u64,
) -> TxResult<Result<Vec<Decision>, StoreError>> {
    let mut overlay: HashMap<&super::types::ResourceKey, Option<VersionRecord>> = HashMap::new();
    let mut decisions = Vec::with_capacity(unit.len());
    let mut sequence = last_sequence;
    for request in unit {
        let current = match overlay.get(&request.key) {
            Some(record) => record.clone(),
            None => read_current(view, &request.key)?,
        };
        let context = Context {
            node_id: settings.node_id,
            now,
            sequence: sequence + 1,
        };
        match plan::decide(request, current.as_ref(), &context) {
            Ok(Decision::NewVersion(record)) => {
                sequence += 1;
                overlay.insert(&request.key, Some(record.clone()));
                decisions.push(Decision::NewVersion(record));
            }
            Ok(nothing) => {
                overlay.insert(&request.key, current);
                decisions.push(nothing);
            }
            Err(error) => return Ok(Err(error)),
        }
    }
    Ok(Ok(decisions))
}

fn write_unit(
    view: &View<'_>,
    decisions: Vec<Decision>,
    settings: &ApplySettings<'_>,
) -> TxResult<Vec<WriteOutcome>> {
    let mut outcomes = Vec::with_capacity(decisions.len());
    for decision in decisions {
        match decision {
            Decision::Nothing(outcome) => outcomes.push(outcome),
            Decision::NewVersion(record) => {
                write_version(view, &record, settings)?;
                outcomes.push(plan::outcome_of(&record));
            }
        }
    }
    Ok(outcomes)
}

/// Makes `record` current, moves the previous version to history, prunes history beyond the
/// retention, and logs the change with its category position.
fn write_version(
    view: &View<'_>,
    record: &VersionRecord,
    settings: &ApplySettings<'_>,
) -> TxResult<()> {
    let key = &record.key;
    if let Some(previous) = read_current(view, key)? {
        view.history.insert(
            codec::history_key(key, previous.version_id),
            codec::encode_record(&previous),
        )?;
        // Transactions cannot scan, so prune exactly the version that just fell out of the
        // window; versions are contiguous, so this keeps the newest `history_retention`.
        let retention = settings.history_retention as u64;
        if retention > 0 && previous.version_id > retention {
            view.history
                .remove(codec::history_key(key, previous.version_id - retention))?;
        }
    }
    view.current
        .insert(codec::resource_key(key), codec::encode_record(record))?;
    let change = Change {
        sequence: record.sequence,
        action: record.action,
        category: key.category(),
        key: key.clone(),
        version_id: record.version_id,
        content_hash: record.content_hash.clone(),
        origin: record.origin.clone(),
        at: record.last_updated,
    };
    view.log.insert(
        &record.sequence.to_be_bytes(),
        codec::encode_change(&change),
    )?;
    let counter_key = category_counter(&change.category);
    let position = read_counter(view.counters, &counter_key)?;
    view.positions.insert(
        codec::position_key(&change.category, position),
        &record.sequence.to_be_bytes(),
    )?;
    view.counters
        .insert(counter_key, &(position + 1).to_be_bytes())?;
    view.counters
        .insert(SEQUENCE_COUNTER, &record.sequence.to_be_bytes())?;
    Ok(())
}

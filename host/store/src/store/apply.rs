//! Applies a group of queued writes in one sled transaction: resource, history, change log,
//! category position index and counters move together or not at all.

use std::collections::{BTreeSet, HashMap};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use time::OffsetDateTime;

use super::codec;
use super::plan::{self, Context, Decision};
use super::types::{Change, StoreError, VersionRecord, WriteOutcome};

/// Key of the node-wide sequence counter in the `counters` tree.
pub(crate) const SEQUENCE_COUNTER: &[u8] = b"s";
/// Prefix of per-category entry counters in the `counters` tree.
pub(crate) const CATEGORY_COUNTER_PREFIX: &[u8] = b"c";
// `b"i"` is taken: earlier versions kept a store id made once under it.

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

/// A random id for one opening of a store, named by the tags of its content (feed page
/// ETags). A different store has another, and so has the same files opened again: a backup
/// restored and then written to holds other content under the same page names than the store
/// it was copied from, and must not answer `304` to a reader holding that store's pages. The
/// price is one full read of `recent` by each reader after a restart.
pub(crate) fn instance_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Counter key of a category's entry count.
pub(crate) fn category_counter(category: &str) -> Vec<u8> {
    let mut key = CATEGORY_COUNTER_PREFIX.to_vec();
    key.extend_from_slice(category.as_bytes());
    key
}

/// The sequence counter and per-category entry counts. The committer is the only writer, so
/// it keeps them in memory and stores the changed ones once per group, in the group's
/// transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    /// Last committed sequence.
    pub sequence: u64,
    /// Entries per category.
    pub categories: HashMap<String, u64>,
}

impl Counters {
    /// Reads the stored counters.
    pub fn load(trees: &Trees) -> Result<Counters, StoreError> {
        let sequence = match trees.counters.get(SEQUENCE_COUNTER)? {
            Some(bytes) => codec::decode_u64(&bytes)?,
            None => 0,
        };
        let mut categories = HashMap::new();
        for entry in trees.counters.scan_prefix(CATEGORY_COUNTER_PREFIX) {
            let (key, value) = entry?;
            let name = String::from_utf8(key[CATEGORY_COUNTER_PREFIX.len()..].to_vec())
                .map_err(|_| StoreError::Storage("category name is not UTF-8".into()))?;
            categories.insert(name, codec::decode_u64(&value)?);
        }
        Ok(Counters {
            sequence,
            categories,
        })
    }
}

/// Counters being advanced inside one transaction, with the categories that changed and the
/// group's commit time.
struct Advancing {
    counters: Counters,
    touched: BTreeSet<String>,
    committed_at: OffsetDateTime,
}

/// One queued unit: a single write, or the writes of a transaction bundle (all or nothing).
pub(crate) type Unit = Vec<plan::Prepared>;
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

/// Applies every unit in one transaction; returns each unit's result and the advanced counters.
pub(crate) fn apply_group(
    trees: &Trees,
    units: &[&Unit],
    settings: &ApplySettings<'_>,
    now: OffsetDateTime,
    counters: &Counters,
) -> Result<(Vec<UnitResult>, Counters), StoreError> {
    let all = (
        &trees.current,
        &trees.history,
        &trees.log,
        &trees.positions,
        &trees.counters,
    );
    all.transaction(|(current, history, log, positions, counters_tree)| {
        let view = View {
            current,
            history,
            log,
            positions,
            counters: counters_tree,
        };
        // sled may run this closure again after a conflict, so start from the committed counters.
        let mut advancing = Advancing {
            counters: counters.clone(),
            touched: BTreeSet::new(),
            committed_at: now,
        };
        let mut results = Vec::with_capacity(units.len());
        for unit in units {
            let decided = decide_unit(&view, unit, settings, now, advancing.counters.sequence)?;
            results.push(match decided {
                Ok(decisions) => Ok(write_unit(&view, decisions, settings, &mut advancing)?),
                Err(error) => Err(error),
            });
        }
        store_counters(&view, &advancing)?;
        Ok((results, advancing.counters))
    })
    .map_err(|error| match error {
        sled::transaction::TransactionError::Abort(error) => error,
        sled::transaction::TransactionError::Storage(error) => error.into(),
    })
}

fn store_counters(view: &View<'_>, advancing: &Advancing) -> TxResult<()> {
    let counters = &advancing.counters;
    view.counters
        .insert(SEQUENCE_COUNTER, &counters.sequence.to_be_bytes())?;
    for category in &advancing.touched {
        let count = counters.categories.get(category).copied().unwrap_or(0);
        view.counters
            .insert(category_counter(category), &count.to_be_bytes())?;
    }
    Ok(())
}

fn storage(error: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(error)
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
    advancing: &mut Advancing,
) -> TxResult<Vec<WriteOutcome>> {
    let mut outcomes = Vec::with_capacity(decisions.len());
    for decision in decisions {
        match decision {
            Decision::Nothing(outcome) => outcomes.push(outcome),
            Decision::NewVersion(record) => {
                write_version(view, &record, settings, advancing)?;
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
    advancing: &mut Advancing,
) -> TxResult<()> {
    let key = &record.key;
    if let Some(previous) = view.current.get(codec::resource_key(key))? {
        // The previous version moves to history as the very bytes it was stored as.
        let previous_version = codec::record_version(&previous).map_err(storage)?;
        view.history
            .insert(codec::history_key(key, previous_version), previous)?;
        // Transactions cannot scan, so prune exactly the version that just fell out of the
        // window; versions are contiguous, so this keeps the newest `history_retention`.
        let retention = settings.history_retention as u64;
        if retention > 0 && previous_version > retention {
            view.history
                .remove(codec::history_key(key, previous_version - retention))?;
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
        // The log is in commit order; a relayed version's own time may be older.
        at: advancing.committed_at,
    };
    view.log.insert(
        &record.sequence.to_be_bytes(),
        codec::encode_change(&change),
    )?;
    let count = advancing
        .counters
        .categories
        .entry(change.category.clone())
        .or_insert(0);
    view.positions.insert(
        codec::position_key(&change.category, *count),
        &record.sequence.to_be_bytes(),
    )?;
    *count += 1;
    advancing.counters.sequence = record.sequence;
    advancing.touched.insert(change.category);
    Ok(())
}

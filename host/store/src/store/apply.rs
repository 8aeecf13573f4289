//! Applies a group of queued writes in one sled transaction: resource, history, change log,
//! category position index and counters move together or not at all.

use std::collections::{BTreeSet, HashMap, HashSet};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use time::OffsetDateTime;

use super::codec;
use super::place::{follow_placement, owners_with_members, placement_of};
use super::plan::{self, Context, Decision};
use super::types::{Change, Placement, ResourceKey, StoreError, VersionRecord, WriteOutcome};

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
    /// Owner key, 0, member key -> nothing: the resources in each Patient's compartment.
    pub members: sled::Tree,
    /// Owner key -> nothing: Patients whose keys changed and whose compartment has not yet
    /// followed them (see `follow`).
    pub follow: sled::Tree,
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
            members: db.open_tree("members")?,
            follow: db.open_tree("follow")?,
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
pub(crate) struct Advancing {
    counters: Counters,
    touched: BTreeSet<String>,
    committed_at: OffsetDateTime,
    /// Patients named by the compartment resources this transaction wrote.
    pub(crate) owners_named: HashSet<ResourceKey>,
}

impl Advancing {
    /// The last sequence logged so far, in this transaction or before it.
    pub fn sequence(&self) -> u64 {
        self.counters.sequence
    }
}

/// One queued unit: a single write, or the writes of a transaction bundle (all or nothing).
pub(crate) type Unit = Vec<plan::Prepared>;
/// The answer to one unit.
pub(crate) type UnitResult = Result<Vec<WriteOutcome>, StoreError>;

/// Settings the apply step needs.
pub(crate) struct ApplySettings<'a> {
    pub node_id: &'a str,
    pub history_retention: usize,
    pub classifier: &'a dyn crate::scope::Classify,
}

/// The transaction's view of the trees.
pub(crate) struct View<'t> {
    pub current: &'t TransactionalTree,
    history: &'t TransactionalTree,
    log: &'t TransactionalTree,
    positions: &'t TransactionalTree,
    pub counters: &'t TransactionalTree,
    pub members: &'t TransactionalTree,
    pub follow: &'t TransactionalTree,
}

pub(crate) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// Applies every unit in one transaction; returns each unit's result and the advanced counters.
pub(crate) fn apply_group(
    trees: &Trees,
    units: &[&Unit],
    settings: &ApplySettings<'_>,
    now: OffsetDateTime,
    counters: &Counters,
) -> Result<(Vec<UnitResult>, Counters), StoreError> {
    // Concurrent writers have no order among themselves: the units writing Patients go
    // first, so a compartment's resource written in the same group inherits its Patient's
    // keys whatever order the writers arrived in.
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by_key(|&i| !codec::unit_writes_owner(units[i]));
    let keys = units
        .iter()
        .flat_map(|unit| unit.iter().map(|request| &request.key));
    let owners = owners_with_members(trees, keys)?;
    transact(trees, now, counters, owners, |view, advancing| {
        let mut results: Vec<Option<UnitResult>> = vec![None; units.len()];
        for &i in &order {
            let unit = units[i];
            let decided = decide_unit(view, unit, settings, now, advancing.counters.sequence)?;
            results[i] = Some(match decided {
                Ok(decisions) => Ok(write_unit(view, decisions, settings, advancing)?),
                Err(error) => Err(error),
            });
        }
        Ok(results.into_iter().flatten().collect())
    })
}

/// Runs `work` in one transaction over every tree, starting from the committed `counters`,
/// and stores the counters it advanced; returns its answer and those counters.
pub(crate) fn transact<T>(
    trees: &Trees,
    now: OffsetDateTime,
    counters: &Counters,
    owners: HashSet<ResourceKey>,
    work: impl Fn(&View<'_>, &mut Advancing) -> TxResult<T>,
) -> Result<(T, Counters), StoreError> {
    let all = (
        &trees.current,
        &trees.history,
        &trees.log,
        &trees.positions,
        &trees.counters,
        &trees.members,
        &trees.follow,
    );
    all.transaction(
        |(current, history, log, positions, counters_tree, members, follow)| {
            let view = View {
                current,
                history,
                log,
                positions,
                counters: counters_tree,
                members,
                follow,
            };
            // sled may run this closure again after a conflict, so start from the committed counters.
            let mut advancing = Advancing {
                counters: counters.clone(),
                touched: BTreeSet::new(),
                committed_at: now,
                owners_named: owners.clone(),
            };
            let answer = work(&view, &mut advancing)?;
            store_counters(&view, &advancing)?;
            Ok((answer, advancing.counters))
        },
    )
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

pub(crate) fn storage(error: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(error)
}

fn read_current(view: &View<'_>, key: &ResourceKey) -> TxResult<Option<VersionRecord>> {
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
    let mut overlay: HashMap<&ResourceKey, Option<VersionRecord>> = HashMap::new();
    let mut decisions = Vec::with_capacity(unit.len());
    let mut sequence = last_sequence;
    for request in unit {
        let current = match overlay.get(&request.key) {
            Some(record) => record.clone(),
            None => read_current(view, &request.key)?,
        };
        let placement = match &request.body {
            Some(body) => {
                // A write that supplies no keys (a local edit) keeps those the version it
                // replaces was supplied with: the body cannot say them again.
                let kept = current.as_ref().filter(|_| body.supplied.is_empty());
                let supplied = kept.map_or(&body.supplied, |c| &c.placement.supplied);
                placement_of(view, &overlay, &body.classification, supplied)?
            }
            None => Placement::default(),
        };
        let context = Context {
            node_id: settings.node_id,
            now,
            sequence: sequence + 1,
            placement,
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
    let mut previous_placement = None;
    if let Some(previous) = view.current.get(codec::resource_key(key))? {
        previous_placement = Some(codec::record_placement(&previous).map_err(storage)?);
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
    let left_keys = follow_placement(view, record, previous_placement.as_ref(), advancing)?;
    log_change(view, record, record.sequence, left_keys, advancing)
}

/// Appends the change-log entry of `record` with its category position.
pub(crate) fn log_change(
    view: &View<'_>,
    record: &VersionRecord,
    sequence: u64,
    left_keys: Vec<String>,
    advancing: &mut Advancing,
) -> TxResult<()> {
    let key = &record.key;
    let change = Change {
        sequence,
        action: record.action,
        category: key.category(),
        key: key.clone(),
        version_id: record.version_id,
        content_hash: record.content_hash.clone(),
        origin: record.origin.clone(),
        // The log is in commit order; a relayed version's own time may be older.
        at: advancing.committed_at,
        placement: record.placement.clone(),
        left_keys,
    };
    view.log
        .insert(&sequence.to_be_bytes(), codec::encode_change(&change))?;
    let count = advancing
        .counters
        .categories
        .entry(change.category.clone())
        .or_insert(0);
    view.positions.insert(
        codec::position_key(&change.category, *count),
        &sequence.to_be_bytes(),
    )?;
    *count += 1;
    advancing.counters.sequence = sequence;
    advancing.touched.insert(change.category);
    Ok(())
}

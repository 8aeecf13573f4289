//! The batch commit: one sled transaction over every state tree, then one flush, so a feed
//! marker never advances without the effects and audit records of its batch.

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use crate::audit::{AuditKey, AuditRecord, EncodedRecord, Outcome, OutcomeKind, Timestamp};
use crate::state::counts::QueueDelta;
use crate::state::due_index::{TxResult, due_key, unindex};
use crate::state::{
    BaseKey, ConflictRecord, DurablePoint, FailureKey, Marker, MarkerKey, RetryEntry, RetryUpdate,
    StateError, SyncState, decode, encode,
};
use crate::sync::conflict::SyncBase;

/// Everything one processed batch changes.
#[derive(Debug, Clone, Default)]
pub struct BatchCommit {
    /// One audit record per processed event.
    pub audit: Vec<AuditRecord>,
    /// New sync bases of resources synced successfully, each with the base it replaces.
    pub bases: Vec<BaseUpdate>,
    /// Retry queue and dead-letter changes for failed events.
    pub retries: Vec<RetryUpdate>,
    /// New or updated conflict records.
    pub conflicts: Vec<ConflictRecord>,
    /// Resources synced successfully: their earlier failures are settled (removed from the
    /// retry queue and dead letters) and a `Settled` audit record is written for each.
    pub settled: Vec<FailureKey>,
    /// The feed position after this batch.
    pub marker: Option<(MarkerKey, Marker)>,
}

/// A new sync base, and the base its writer read when it decided (`None`: there was none).
/// The commit applies it only if the stored base is still `replaces`, so two writers that
/// raced on one resource are detected instead of the later one silently winning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUpdate {
    /// Which resource.
    pub key: BaseKey,
    /// The base the decision was made against.
    pub replaces: Option<SyncBase>,
    /// The base to store.
    pub base: SyncBase,
    /// Both sides now hold the base's content (a sync, a written winner). A base that only
    /// steers the next decision (a winner left where it was) is not agreed, and only an
    /// agreed base closes the resource's open conflicts.
    pub agreed: bool,
}

/// One encoded base update.
struct EncodedBase {
    key: Vec<u8>,
    resource: String,
    replaces: Option<SyncBase>,
    value: Vec<u8>,
}

/// What a commit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Keys of the audit records written, `BatchCommit::audit` first, then one per settled
    /// failure.
    pub audit_keys: Vec<AuditKey>,
    /// The earlier failures this batch settled.
    pub settled: Vec<RetryEntry>,
}

/// A settled key with the audit record to write if something was pending for it.
struct Settlement {
    key: Vec<u8>,
    template: AuditRecord,
}

/// The batch with every value serialised up front, so the transaction itself cannot fail on
/// encoding and stays short.
struct EncodedBatch {
    audit: Vec<EncodedRecord>,
    bases: Vec<EncodedBase>,
    retries: Vec<EncodedRetry>,
    conflicts: Vec<(Vec<u8>, Vec<u8>)>,
    settled: Vec<Settlement>,
    marker: Option<(Vec<u8>, Vec<u8>)>,
}

/// One retry update, encoded.
struct EncodedRetry {
    direction: crate::sync::conflict::Direction,
    key: Vec<u8>,
    value: Vec<u8>,
    next_at: Timestamp,
    dead_letter: bool,
}

impl SyncState {
    /// Applies `batch` atomically and waits until it is durable.
    ///
    /// Conflicts left open on a resource the batch gives an agreed base are closed with it (see
    /// `SyncState::settled_by_bases`), whichever writer made the batch. Those records are read
    /// before the transaction, so a writer whose batch can touch a resource another writer is
    /// deciding holds [`SyncState::deciding`], as every sync batch and resolution does.
    pub async fn commit_batch(&self, mut batch: BatchCommit) -> Result<CommitReport, StateError> {
        self.step_hook.reached(DurablePoint::BeforeCommit).await;
        let moot = self.settled_by_bases(&batch)?;
        batch.conflicts.extend(moot);
        let encoded = encode_batch(&batch)?;
        let trees = (
            self.audit.tree(),
            &self.markers,
            &self.bases,
            &self.retries,
            &self.dead_letters,
            &self.retry_due,
            &self.conflicts,
        );
        let (report, queues) = trees
            .transaction(|(audit, markers, bases, retries, dead, due, conflicts)| {
                let settled = settle(&encoded.settled, retries, dead, due)?;
                let mut queues = QueueDelta::default();
                for (tree, entry, _) in &settled {
                    let (retries, dead) = if *tree == super::RETRIES {
                        (-1, 0)
                    } else {
                        (0, -1)
                    };
                    queues.add(QueueDelta::of(entry.key.direction, retries, dead));
                }
                let mut audit_keys = insert_audit(&encoded.audit, audit)?;
                for (_, entry, template) in &settled {
                    let record = settled_record(entry, template);
                    let encoded = EncodedRecord::encode(&record)
                        .map_err(|e| ConflictableTransactionError::Abort(e.into()))?;
                    audit_keys.push(encoded.insert_in(audit)?);
                }
                for update in &encoded.bases {
                    replace_base(update, bases)?;
                }
                for retry in &encoded.retries {
                    queues.add(apply_retry(retry, retries, dead, due)?);
                }
                for (key, value) in &encoded.conflicts {
                    conflicts.insert(key.as_slice(), value.as_slice())?;
                }
                if let Some((key, value)) = &encoded.marker {
                    markers.insert(key.as_slice(), value.as_slice())?;
                }
                let settled = settled.into_iter().map(|(_, entry, _)| entry).collect();
                Ok((
                    CommitReport {
                        audit_keys,
                        settled,
                    },
                    queues,
                ))
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StateError::Storage(e),
            })?;
        self.audit.appended(report.audit_keys.len());
        self.queue_count.apply(queues);
        for record in &batch.audit {
            self.outcomes.add(record.direction, record.outcome.kind());
        }
        self.recent_failures.note(&batch.audit);
        for entry in &report.settled {
            self.outcomes.add(entry.key.direction, OutcomeKind::Settled);
        }
        let new_bases = encoded
            .bases
            .iter()
            .filter(|b| b.replaces.is_none())
            .count();
        self.base_count.added(new_bases);
        for record in &batch.conflicts {
            self.open.note(record);
        }
        self.flush().await?;
        self.step_hook.reached(DurablePoint::AfterCommit).await;
        tracing::debug!(
            audit = report.audit_keys.len(),
            settled = report.settled.len(),
            marker = batch.marker.as_ref().map(|(_, m)| m.entry_id.as_str()),
            "batch committed"
        );
        Ok(report)
    }
}

fn encode_batch(batch: &BatchCommit) -> Result<EncodedBatch, StateError> {
    let audit = batch
        .audit
        .iter()
        .map(EncodedRecord::encode)
        .collect::<Result<_, _>>()?;
    let bases = encode_bases(&batch.bases)?;
    let retries = batch
        .retries
        .iter()
        .map(|update| {
            let (entry, dead) = match update {
                RetryUpdate::Schedule(e) => (e, false),
                RetryUpdate::DeadLetter(e) => (e, true),
            };
            let value = encode(|| format!("retry entry for {}", entry.key), entry)?;
            Ok(EncodedRetry {
                direction: entry.key.direction,
                key: entry.key.to_bytes(),
                value,
                next_at: entry.next_at,
                dead_letter: dead,
            })
        })
        .collect::<Result<_, StateError>>()?;
    let conflicts = batch
        .conflicts
        .iter()
        .map(|c| {
            Ok((
                c.id.to_be_bytes().to_vec(),
                encode(|| format!("conflict {}", c.id), c)?,
            ))
        })
        .collect::<Result<_, StateError>>()?;
    let settled = batch
        .settled
        .iter()
        .map(|key| Settlement {
            key: key.to_bytes(),
            template: settlement_template(batch, key),
        })
        .collect();
    let marker = match &batch.marker {
        Some((k, m)) => Some((
            k.to_bytes(),
            encode(|| format!("marker of feed {}", k.feed), m)?,
        )),
        None => None,
    };
    Ok(EncodedBatch {
        audit,
        bases,
        retries,
        conflicts,
        settled,
        marker,
    })
}

/// Encodes the base updates, one per resource: when a batch updates a resource twice, the
/// last base is stored and the first `replaces` is checked.
fn encode_bases(updates: &[BaseUpdate]) -> Result<Vec<EncodedBase>, StateError> {
    let mut out: Vec<EncodedBase> = Vec::with_capacity(updates.len());
    let mut position: std::collections::HashMap<Vec<u8>, usize> =
        std::collections::HashMap::with_capacity(updates.len());
    for update in updates {
        let key = update.key.to_bytes();
        let value = encode(
            || format!("base of {}", update.key.resource_id),
            &update.base,
        )?;
        if let Some(&at) = position.get(&key) {
            out[at].value = value;
            continue;
        }
        position.insert(key.clone(), out.len());
        out.push(EncodedBase {
            key,
            resource: format!("{}/{}", update.key.resource_type, update.key.resource_id),
            replaces: update.replaces.clone(),
            value,
        });
    }
    Ok(out)
}

/// Stores one base if the stored one is still the base its writer decided against.
fn replace_base(update: &EncodedBase, bases: &TransactionalTree) -> TxResult<()> {
    let key = update.key.as_slice();
    let current: Option<SyncBase> = match bases.get(key)? {
        Some(bytes) => {
            Some(decode(super::BASES, &bytes).map_err(ConflictableTransactionError::Abort)?)
        }
        None => None,
    };
    if current != update.replaces {
        return Err(ConflictableTransactionError::Abort(StateError::BaseRaced {
            resource: update.resource.clone(),
        }));
    }
    bases.insert(key, update.value.as_slice())?;
    Ok(())
}

/// The batch's own audit record for the settled resource (the success that settles it), so
/// the `Settled` record carries the same URLs, plugin and node.
fn settlement_template(batch: &BatchCommit, key: &FailureKey) -> AuditRecord {
    let own = batch.audit.iter().rev().find(|r| {
        r.direction == key.direction
            && r.resource_type == key.resource_type
            && r.resource_id == key.resource_id
    });
    match own {
        Some(record) => record.clone(),
        None => AuditRecord {
            time: Timestamp::now(),
            // A batch is processed by one node; borrow its id from any record.
            node: batch
                .audit
                .first()
                .map(|r| r.node.clone())
                .unwrap_or_default(),
            direction: key.direction,
            action: String::new(),
            category: String::new(),
            resource_type: key.resource_type.clone(),
            resource_id: key.resource_id.clone(),
            event_id: None,
            source_url: None,
            target_url: None,
            plugin: None,
            outcome: Outcome::Applied,
            duration_ms: 0,
        },
    }
}

fn settled_record(entry: &RetryEntry, template: &AuditRecord) -> AuditRecord {
    AuditRecord {
        event_id: Some(entry.event_id.clone()),
        outcome: Outcome::Settled {
            earlier_failure_id: entry.id,
        },
        duration_ms: 0,
        ..template.clone()
    }
}

/// Moves one entry into the retry queue (indexed by `next_at`) or the dead letters; returns
/// how the two queues' sizes changed.
fn apply_retry(
    retry: &EncodedRetry,
    retries: &TransactionalTree,
    dead: &TransactionalTree,
    due: &TransactionalTree,
) -> TxResult<QueueDelta> {
    let key = retry.key.as_slice();
    unindex(retries, due, key)?;
    if retry.dead_letter {
        let was_retry = retries.remove(key)?.is_some();
        let was_dead = dead.insert(key, retry.value.as_slice())?.is_some();
        Ok(QueueDelta::of(
            retry.direction,
            QueueDelta::step(false, was_retry),
            QueueDelta::step(true, was_dead),
        ))
    } else {
        let was_dead = dead.remove(key)?.is_some();
        let was_retry = retries.insert(key, retry.value.as_slice())?.is_some();
        due.insert(due_key(retry.next_at, key), &[][..])?;
        Ok(QueueDelta::of(
            retry.direction,
            QueueDelta::step(true, was_retry),
            QueueDelta::step(false, was_dead),
        ))
    }
}

/// Removes pending failures of the settled keys from both queues.
fn settle<'a>(
    settlements: &'a [Settlement],
    retries: &TransactionalTree,
    dead: &TransactionalTree,
    due: &TransactionalTree,
) -> TxResult<Vec<(&'static str, RetryEntry, &'a AuditRecord)>> {
    let mut out = Vec::new();
    for settlement in settlements {
        let key = settlement.key.as_slice();
        unindex(retries, due, key)?;
        for (name, tree) in [(super::RETRIES, retries), (super::DEAD_LETTERS, dead)] {
            if let Some(bytes) = tree.remove(key)? {
                let entry = decode(name, &bytes).map_err(ConflictableTransactionError::Abort)?;
                out.push((name, entry, &settlement.template));
            }
        }
    }
    Ok(out)
}

fn insert_audit(records: &[EncodedRecord], audit: &TransactionalTree) -> TxResult<Vec<AuditKey>> {
    records.iter().map(|r| r.insert_in(audit)).collect()
}

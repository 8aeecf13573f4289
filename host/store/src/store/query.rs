//! Read paths of the store: versions, history, listings and the change log. Straight sled
//! reads; they never wait for the committer.

use std::ops::Bound;

use time::OffsetDateTime;

use super::apply::{CATEGORY_COUNTER_PREFIX, SEQUENCE_COUNTER, Trees, category_counter};
use super::codec;
use super::types::{Change, Kind, ResourceKey, StoreError, VersionRecord};

/// The last committed sequence (0 for an empty store).
pub(crate) fn last_sequence(trees: &Trees) -> Result<u64, StoreError> {
    counter(trees, SEQUENCE_COUNTER)
}

fn counter(trees: &Trees, key: &[u8]) -> Result<u64, StoreError> {
    match trees.counters.get(key)? {
        Some(bytes) => codec::decode_u64(&bytes),
        None => Ok(0),
    }
}

pub(crate) fn read(trees: &Trees, key: &ResourceKey) -> Result<Option<VersionRecord>, StoreError> {
    match trees.current.get(codec::resource_key(key))? {
        Some(bytes) => codec::decode_record(key.clone(), &bytes).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn current_versions(
    trees: &Trees,
) -> impl Iterator<Item = Result<VersionRecord, StoreError>> + '_ {
    trees.current.iter().map(|item| {
        let (key, value) = item?;
        let key = codec::decode_resource_key(&key)?;
        codec::decode_record(key, &value)
    })
}

pub(crate) fn vread(
    trees: &Trees,
    key: &ResourceKey,
    version_id: u64,
) -> Result<Option<VersionRecord>, StoreError> {
    let Some(current) = read(trees, key)? else {
        return Ok(None);
    };
    if version_id >= current.version_id {
        return Ok((version_id == current.version_id).then_some(current));
    }
    match trees.history.get(codec::history_key(key, version_id))? {
        Some(bytes) => codec::decode_record(key.clone(), &bytes).map(Some),
        None => Ok(None),
    }
}

fn at_or_after(record: &VersionRecord, since: Option<OffsetDateTime>) -> bool {
    since.is_none_or(|since| record.last_updated >= since)
}

pub(crate) fn history(
    trees: &Trees,
    key: &ResourceKey,
    since: Option<OffsetDateTime>,
    limit: usize,
) -> Result<Vec<VersionRecord>, StoreError> {
    let Some(current) = read(trees, key)? else {
        return Ok(Vec::new());
    };
    let mut versions = Vec::new();
    if at_or_after(&current, since) {
        versions.push(current);
    }
    for entry in trees.history.scan_prefix(codec::history_prefix(key)).rev() {
        if versions.len() >= limit {
            break;
        }
        let (_, bytes) = entry?;
        let record = codec::decode_record(key.clone(), &bytes)?;
        if at_or_after(&record, since) {
            versions.push(record);
        }
    }
    versions.truncate(limit);
    Ok(versions)
}

pub(crate) fn type_history(
    trees: &Trees,
    kind: Kind,
    resource_type: &str,
    since: Option<OffsetDateTime>,
    limit: usize,
) -> Result<Vec<VersionRecord>, StoreError> {
    let category = resource_type.to_lowercase();
    let mut versions = Vec::new();
    for entry in trees
        .positions
        .scan_prefix(codec::category_prefix(&category))
        .rev()
    {
        if versions.len() >= limit {
            break;
        }
        let (_, sequence) = entry?;
        let change = change_at(trees, codec::decode_u64(&sequence)?)?;
        if since.is_some_and(|since| change.at < since) {
            // The log is in commit order, so everything further back is older still.
            break;
        }
        if change.key.kind != kind || change.key.resource_type != resource_type {
            continue;
        }
        // Versions beyond the history retention are gone; the log still names them. A relayed
        // version's own time can be older than its commit time, so filter on it too.
        if let Some(record) = vread(trees, &change.key, change.version_id)?
            && at_or_after(&record, since)
        {
            versions.push(record);
        }
    }
    Ok(versions)
}

pub(crate) fn list(
    trees: &Trees,
    kind: Kind,
    resource_type: &str,
    after_id: Option<&str>,
    limit: usize,
) -> Result<Vec<VersionRecord>, StoreError> {
    let prefix = codec::type_prefix(kind, resource_type);
    let start = match after_id {
        Some(id) => Bound::Excluded([prefix.as_slice(), id.as_bytes()].concat()),
        None => Bound::Included(prefix.clone()),
    };
    let mut records = Vec::new();
    for entry in trees.current.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
        let (key_bytes, bytes) = entry?;
        if !key_bytes.starts_with(&prefix) || records.len() >= limit {
            break;
        }
        let record = codec::decode_record(codec::decode_resource_key(&key_bytes)?, &bytes)?;
        if !record.deleted {
            records.push(record);
        }
    }
    Ok(records)
}

fn change_at(trees: &Trees, sequence: u64) -> Result<Change, StoreError> {
    let bytes = trees.log.get(sequence.to_be_bytes())?.ok_or_else(|| {
        StoreError::Storage(format!("change log has no entry for sequence {sequence}"))
    })?;
    codec::decode_change(sequence, &bytes)
}

pub(crate) fn changes(
    trees: &Trees,
    category: Option<&str>,
    after: u64,
    limit: usize,
) -> Result<Vec<Change>, StoreError> {
    match category {
        None => trees
            .log
            .range(after.saturating_add(1).to_be_bytes()..)
            .take(limit)
            .map(|entry| {
                let (key, bytes) = entry?;
                codec::decode_change(codec::decode_u64(&key)?, &bytes)
            })
            .collect(),
        Some(category) => {
            let start = first_position_after(trees, category, after)?;
            changes_by_position(trees, Some(category), start, limit)
        }
    }
}

/// Binary search for the first position of `category` whose sequence is greater than `after`
/// (positions are in sequence order).
fn first_position_after(trees: &Trees, category: &str, after: u64) -> Result<u64, StoreError> {
    let (mut low, mut high) = (0, change_count(trees, Some(category))?);
    while low < high {
        let middle = low + (high - low) / 2;
        let sequence = match trees.positions.get(codec::position_key(category, middle))? {
            Some(bytes) => codec::decode_u64(&bytes)?,
            None => {
                return Err(StoreError::Storage(format!(
                    "category {category:?} has no position {middle}"
                )));
            }
        };
        if sequence <= after {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

pub(crate) fn change_count(trees: &Trees, category: Option<&str>) -> Result<u64, StoreError> {
    match category {
        // Sequences are contiguous from 1, so the last one is the count.
        None => last_sequence(trees),
        Some(category) => counter(trees, &category_counter(category)),
    }
}

pub(crate) fn changes_by_position(
    trees: &Trees,
    category: Option<&str>,
    start: u64,
    limit: usize,
) -> Result<Vec<Change>, StoreError> {
    let Some(category) = category else {
        // Position n of the combined log is sequence n + 1.
        return changes(trees, None, start, limit);
    };
    let prefix = codec::category_prefix(category);
    trees
        .positions
        .range(codec::position_key(category, start)..)
        .take_while(|entry| {
            entry
                .as_ref()
                .map_or(true, |(key, _)| key.starts_with(&prefix))
        })
        .take(limit)
        .map(|entry| {
            let (_, sequence) = entry?;
            change_at(trees, codec::decode_u64(&sequence)?)
        })
        .collect()
}

pub(crate) fn categories(trees: &Trees) -> Result<Vec<String>, StoreError> {
    trees
        .counters
        .scan_prefix(CATEGORY_COUNTER_PREFIX)
        .map(|entry| {
            let (key, _) = entry?;
            String::from_utf8(key[CATEGORY_COUNTER_PREFIX.len()..].to_vec())
                .map_err(|_| StoreError::Storage("category name is not UTF-8".into()))
        })
        .collect()
}

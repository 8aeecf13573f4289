//! Where a version is placed, inside its write transaction: its own keys with those of the
//! Patient whose compartment it is in, the compartment index kept up to date, and a Patient
//! whose keys moved queued for its compartment to follow (see `follow`).

use std::collections::{HashMap, HashSet};

use sled::transaction::TransactionalTree;

use super::apply::{Advancing, Trees, TxResult, View, storage};
use super::codec;
use super::types::{Placement, ResourceKey, StoreError, VersionRecord};
use crate::scope::Classification;

/// Where a body classified as `classification` belongs: its own keys, those its source
/// supplied with it, and those of the Patient whose compartment it is in, as that Patient
/// stands in this transaction.
pub(crate) fn placement_of(
    view: &View<'_>,
    overlay: &HashMap<&ResourceKey, Option<VersionRecord>>,
    classification: &Classification,
    supplied: &[String],
) -> TxResult<Placement> {
    let owner_keys = match &classification.owner {
        Some(owner) => match overlay.get(owner) {
            Some(record) => record.as_ref().map(|record| record.placement.keys.clone()),
            None => current_placement(view.current, owner)?.map(|placement| placement.keys),
        },
        None => None,
    };
    Ok(Placement::of(
        classification,
        supplied,
        owner_keys.unwrap_or_default(),
    ))
}

/// The placement of a resource's current version, without decoding its body.
pub(crate) fn current_placement(
    current: &TransactionalTree,
    key: &ResourceKey,
) -> TxResult<Option<Placement>> {
    match current.get(codec::resource_key(key))? {
        Some(bytes) => codec::record_placement(&bytes).map(Some).map_err(storage),
        None => Ok(None),
    }
}

/// Keeps the compartment index up to date with `record`'s owner and, when the keys of a
/// resource that may own a compartment changed, queues its compartment to follow. Returns
/// the keys the resource left.
pub(crate) fn follow_placement(
    view: &View<'_>,
    record: &VersionRecord,
    previous: Option<&Placement>,
    advancing: &mut Advancing,
) -> TxResult<Vec<String>> {
    let placement = &record.placement;
    let previous_owner = previous.and_then(|previous| previous.owner.as_ref());
    if previous_owner != placement.owner.as_ref() {
        if let Some(old) = previous_owner {
            view.members.remove(codec::member_key(old, &record.key))?;
        }
        if let Some(owner) = &placement.owner {
            view.members
                .insert(codec::member_key(owner, &record.key), &[] as &[u8])?;
            advancing.owners_named.insert(owner.clone());
        }
    }
    let previous_keys = previous
        .map(|previous| previous.keys.as_slice())
        .unwrap_or(&[]);
    let moved = previous_keys != placement.keys.as_slice();
    if moved && codec::may_own_compartment(&record.key) && has_members(record, advancing) {
        view.follow
            .insert(codec::resource_key(&record.key), &[] as &[u8])?;
    }
    Ok(previous_keys
        .iter()
        .filter(|key| !placement.keys.contains(key))
        .cloned()
        .collect())
}

/// Whether any resource names `record` as the Patient of its compartment: one committed
/// before this transaction (found by [`owners_with_members`]) or one written in it. A Patient
/// nothing names yet has nothing to follow it.
fn has_members(record: &VersionRecord, advancing: &Advancing) -> bool {
    advancing.owners_named.contains(&record.key)
}

/// Which of `keys` are Patients some committed resource names as the Patient of its
/// compartment. Read before the transaction, which cannot scan (and must not read the trees
/// outside itself); the committer is the only writer, so the answer holds through it.
pub(crate) fn owners_with_members<'k>(
    trees: &Trees,
    keys: impl Iterator<Item = &'k ResourceKey>,
) -> Result<HashSet<ResourceKey>, StoreError> {
    let mut owners = HashSet::new();
    for key in keys.filter(|key| codec::may_own_compartment(key)) {
        if let Some(entry) = trees.members.scan_prefix(codec::member_prefix(key)).next() {
            entry?;
            owners.insert(key.clone());
        }
    }
    Ok(owners)
}

//! A compartment follows its Patient: when a Patient's keys change, every resource in its
//! compartment is placed again and logged, so that readers of the new keys receive it and
//! readers of the old ones learn that it left. The work is queued in the Patient's own write
//! transaction and done afterwards by the committer in bounded, durable steps.

use time::OffsetDateTime;

use super::apply::{self, Advancing, ApplySettings, Counters, Trees, TxResult, View};
use super::codec;
use super::place;
use super::plan::truncate_to_millis;
use super::types::{Placement, ResourceKey, StoreError};

/// Members placed again in one transaction: bounds its size and how long writers wait.
const MEMBERS_PER_STEP: usize = 256;

/// Whether any compartment still has to follow its Patient.
pub(crate) fn pending(trees: &Trees) -> bool {
    !trees.follow.is_empty()
}

/// Places up to [`MEMBERS_PER_STEP`] members of the first queued compartment again, in one
/// transaction that also records how far it got, and flushes. Returns whether work remains.
pub(crate) fn step(
    trees: &Trees,
    settings: &ApplySettings<'_>,
    counters: &mut Counters,
) -> Result<bool, StoreError> {
    let Some(entry) = trees.follow.iter().next() else {
        return Ok(false);
    };
    let (owner_bytes, resume_after) = entry?;
    let owner = codec::decode_resource_key(&owner_bytes)?;
    let members = next_members(trees, &owner, &resume_after)?;
    let finished = members.len() < MEMBERS_PER_STEP;
    let now = truncate_to_millis(OffsetDateTime::now_utc());
    // Members are never Patients: none of them has a compartment of its own to follow.
    let ((), advanced) = apply::transact(
        trees,
        now,
        counters,
        Default::default(),
        |view, advancing| {
            for member in &members {
                place_again(view, member, settings, advancing)?;
            }
            match (finished, members.last()) {
                (false, Some(last)) => {
                    view.follow
                        .insert(owner_bytes.as_ref(), codec::resource_key(last))?;
                }
                _ => {
                    view.follow.remove(owner_bytes.as_ref())?;
                }
            }
            Ok(())
        },
    )?;
    *counters = advanced;
    trees.db.flush()?;
    if !members.is_empty() {
        tracing::debug!(%owner, members = members.len(), "compartment followed its patient");
    }
    Ok(pending(trees))
}

/// The members of `owner`'s compartment after `resume_after` (a member's key; empty for the
/// start), at most [`MEMBERS_PER_STEP`].
fn next_members(
    trees: &Trees,
    owner: &ResourceKey,
    resume_after: &[u8],
) -> Result<Vec<ResourceKey>, StoreError> {
    let prefix = codec::member_prefix(owner);
    let mut start = prefix.clone();
    start.extend_from_slice(resume_after);
    let mut members = Vec::new();
    for entry in trees.members.range(start..) {
        let (key, _) = entry?;
        if !key.starts_with(&prefix) || members.len() == MEMBERS_PER_STEP {
            break;
        }
        let member = &key[prefix.len()..];
        if member == resume_after {
            continue;
        }
        members.push(codec::decode_resource_key(member)?);
    }
    Ok(members)
}

/// Places the current version of `key` again: its own classification with the keys of the
/// Patient whose compartment it is in, as that Patient stands in this transaction. When the
/// keys changed it is logged (the version stays the same: nothing in the body changed), and
/// a Patient's compartment is queued to follow. Tombstones stay where they were.
pub(crate) fn place_again(
    view: &View<'_>,
    key: &ResourceKey,
    settings: &ApplySettings<'_>,
    advancing: &mut Advancing,
) -> TxResult<()> {
    let Some(bytes) = view.current.get(codec::resource_key(key))? else {
        return Ok(());
    };
    let mut record = codec::decode_record(key.clone(), &bytes).map_err(apply::storage)?;
    let Some(body) = record.body.as_deref().filter(|_| !record.deleted) else {
        return Ok(());
    };
    let own = settings.classifier.classify(key, body);
    let owner_keys = match &own.owner {
        Some(owner) => place::current_placement(view.current, owner)?
            .map(|placement| placement.keys)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    // Keys its source supplied are not in the body: they stay with the version.
    let placement = Placement::of(&own, &record.placement.supplied, owner_keys);
    if placement == record.placement {
        return Ok(());
    }
    let previous = std::mem::replace(&mut record.placement, placement);
    view.current
        .insert(codec::resource_key(key), codec::encode_record(&record))?;
    let left_keys = place::follow_placement(view, &record, Some(&previous), advancing)?;
    let sequence = advancing.sequence() + 1;
    apply::log_change(view, &record, sequence, left_keys, advancing)
}

//! A store last classified under other rules, or before classification existed, is classified
//! again after it opens: every current version is placed again in bounded, durable steps, and
//! each one whose keys changed is logged, so scoped readers receive what now belongs to them.
//! Until a version is placed again it keeps its old placement (a version from before
//! classification is placed nowhere, so no scoped client sees it meanwhile).

use std::ops::Bound;

use time::OffsetDateTime;

use super::apply::{self, ApplySettings, Counters, Trees};
use super::codec;
use super::follow::place_again;
use super::plan::truncate_to_millis;
use super::types::StoreError;
use crate::scope::Classify;

/// Key in the `counters` tree: the last resource key a pass has placed again (empty at its
/// start); present only while a pass is under way.
const CURSOR: &[u8] = b"r";
/// Key in the `counters` tree: the digest of the rules the store was last classified with.
const RULES: &[u8] = b"k";
/// Versions placed again in one transaction.
const RECORDS_PER_STEP: usize = 256;
/// A pass logs its progress every this many versions placed again.
const PROGRESS_EVERY: u64 = 25_600;

/// How far the pass of this opening has got, for its progress log.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    placed: u64,
}

/// Starts a pass when `classifier`'s rules are not those the store was classified with. A
/// pass under way for other rules starts again from the beginning.
pub(crate) fn start_if_needed(trees: &Trees, classifier: &dyn Classify) -> Result<(), StoreError> {
    let rules = classifier.digest();
    if trees.counters.get(RULES)?.as_deref() == Some(rules.as_bytes()) {
        return Ok(());
    }
    if trees.current.is_empty() {
        trees.counters.insert(RULES, rules.as_bytes())?;
        return Ok(());
    }
    tracing::info!(
        resources = trees.current.len(),
        "the store was classified under other rules; classifying it again"
    );
    trees.counters.insert(CURSOR, &[] as &[u8])?;
    trees.db.flush()?;
    Ok(())
}

/// Whether a pass is under way.
pub(crate) fn pending(trees: &Trees) -> bool {
    trees.counters.contains_key(CURSOR).unwrap_or(false)
}

/// Places the next [`RECORDS_PER_STEP`] current versions again and records how far the pass
/// got, in one transaction, then flushes.
pub(crate) fn step(
    trees: &Trees,
    settings: &ApplySettings<'_>,
    counters: &mut Counters,
    progress: &mut Progress,
) -> Result<(), StoreError> {
    let cursor = trees.counters.get(CURSOR)?.unwrap_or_default();
    let start = if cursor.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Excluded(cursor.to_vec())
    };
    let mut keys = Vec::with_capacity(RECORDS_PER_STEP);
    for entry in trees
        .current
        .range::<Vec<u8>, _>((start, Bound::Unbounded))
        .take(RECORDS_PER_STEP)
    {
        let (key, _) = entry?;
        keys.push(key);
    }
    let finished = keys.len() < RECORDS_PER_STEP;
    let rules = settings.classifier.digest();
    let now = truncate_to_millis(OffsetDateTime::now_utc());
    let keys = keys
        .iter()
        .map(|key| codec::decode_resource_key(key))
        .collect::<Result<Vec<_>, _>>()?;
    let owners = super::place::owners_with_members(trees, keys.iter())?;
    let ((), advanced) = apply::transact(trees, now, counters, owners, |view, advancing| {
        for key in &keys {
            place_again(view, key, settings, advancing)?;
        }
        match (finished, keys.last()) {
            (false, Some(last)) => {
                view.counters.insert(CURSOR, codec::resource_key(last))?;
            }
            _ => {
                view.counters.remove(CURSOR)?;
                view.counters.insert(RULES, rules.as_bytes())?;
            }
        }
        Ok(())
    })?;
    *counters = advanced;
    trees.db.flush()?;
    let before = progress.placed;
    progress.placed += keys.len() as u64;
    if finished {
        tracing::info!(
            placed = progress.placed,
            "the store is classified under its rules"
        );
    } else if before / PROGRESS_EVERY != progress.placed / PROGRESS_EVERY {
        tracing::info!(
            placed = progress.placed,
            of = trees.current.len(),
            "classifying the store again"
        );
    }
    Ok(())
}

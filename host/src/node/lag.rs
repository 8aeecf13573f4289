//! How far behind a node is, for `status`: entries each direction still has to process.
//!
//! Pull lag is what the parent has published beyond the pull markers. Push lag is what the
//! node's own feed holds beyond the push marker *that push would send*: a change that came
//! from the parent (its origin is the parent, or its content is what both sides agreed on at
//! the last sync) is skipped as an echo, so it is no push work. A direction that does not run
//! has no lag at all.

use sync_host_store::store::{Change, ResourceKey};

use crate::node::NodeHandle;
use crate::node::services::LOCAL_FEED_OWNER;
use crate::state::{BaseKey, Marker, MarkerKey, StateError};
use crate::sync::conflict::TOMBSTONE_HASH;

/// Local feed entries looked at per store read.
const SCAN_PAGE: usize = 1000;

/// Local feed entries inspected at most; beyond them every entry counts as pending, so a
/// `status` call stays cheap on a node that has not pushed for a long time.
const SCAN_LIMIT: usize = 10_000;

/// How many of `changes` a push would still send to `parent`, given the content hash each
/// resource had at its last sync (`base_hash`).
pub fn pending_push(
    changes: &[Change],
    parent: &str,
    mut base_hash: impl FnMut(&ResourceKey) -> Option<String>,
) -> u64 {
    let pending = changes.iter().filter(|change| {
        if change.origin == parent {
            return false;
        }
        let synced = if change.content_hash.is_empty() {
            TOMBSTONE_HASH
        } else {
            change.content_hash.as_str()
        };
        base_hash(&change.key).as_deref() != Some(synced)
    });
    pending.count() as u64
}

/// Entries the push has yet to send, or `None` when this node does not push (no parent, push
/// disabled, or an external local server whose feed this node does not hold).
pub fn push_lag(
    node: &NodeHandle,
    markers: &[(MarkerKey, Marker)],
) -> Result<Option<u64>, StateError> {
    let (Some(_), Some(parent), Some(store)) = (&node.push, &node.parent_node, &node.store) else {
        return Ok(None);
    };
    // An unreadable store shows as an unknown lag; the status answer itself still helps.
    let Ok(total) = store.change_count(None) else {
        return Ok(None);
    };
    let mut cursor = markers
        .iter()
        .find(|(k, _)| k.parent_node == LOCAL_FEED_OWNER)
        .and_then(|(_, m)| m.sequence)
        .unwrap_or(0);
    let mut pending = 0;
    let mut inspected = 0;
    while inspected < SCAN_LIMIT && cursor < total {
        let Ok(page) = store.changes(None, cursor, SCAN_PAGE) else {
            return Ok(None);
        };
        let Some(last) = page.last() else { break };
        cursor = last.sequence;
        inspected += page.len();
        let mut error = None;
        pending += pending_push(&page, parent, |key| {
            let base = node.state.base(&BaseKey {
                resource_type: key.resource_type.clone(),
                resource_id: key.id.clone(),
            });
            match base {
                Ok(base) => base.map(|b| b.content_hash),
                Err(e) => {
                    error = Some(e);
                    None
                }
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
    }
    Ok(Some(pending + total.saturating_sub(cursor)))
}

/// Entries the parent has published beyond this node's pull markers, as far as the feeds'
/// sequence numbers tell (`None` for feeds without them, such as OpenMRS's, and for a node
/// that does not pull).
pub fn pull_lag(node: &NodeHandle, markers: &[(MarkerKey, Marker)]) -> Option<u64> {
    let services = node.services.as_ref()?;
    let (service, _) = services.pull.as_ref()?;
    let parent = node.parent_node.as_deref()?;
    let mut lag = None;
    for feed in service.feeds() {
        let newest = feed.newest_sequence()?;
        let done = markers
            .iter()
            .find(|(k, _)| k.parent_node == parent && k.feed == feed.name())
            .and_then(|(_, m)| m.sequence)
            .unwrap_or(0);
        lag = Some(lag.unwrap_or(0) + newest.saturating_sub(done));
    }
    lag
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_host_store::store::Action;

    fn change(id: &str, origin: &str, hash: &str) -> Change {
        Change {
            sequence: 1,
            action: if hash.is_empty() {
                Action::Deleted
            } else {
                Action::Updated
            },
            category: "patient".into(),
            key: ResourceKey::fhir("Patient", id),
            version_id: 1,
            content_hash: hash.into(),
            origin: origin.into(),
            at: time::OffsetDateTime::UNIX_EPOCH,
            placement: Default::default(),
            left_keys: Vec::new(),
        }
    }

    #[test]
    fn pulled_and_already_synced_changes_are_not_push_work() {
        let changes = [
            change("local-edit", "clinic", "h1"),
            change("from-parent", "district", "h2"),
            change("relayed", "national", "h3"),
            change("deleted-upstream", "national", ""),
            change("edited-again", "clinic", "h5"),
        ];
        let bases = |key: &ResourceKey| match key.id.as_str() {
            "relayed" => Some("h3".to_string()),
            "deleted-upstream" => Some(TOMBSTONE_HASH.to_string()),
            "edited-again" => Some("h4".to_string()),
            _ => None,
        };
        assert_eq!(pending_push(&changes, "district", bases), 2);
    }
}

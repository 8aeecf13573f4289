//! Comparing what nodes hold: the live resources of each store by content hash (which leaves
//! out the node-local meta), and the differences between nodes.

use std::collections::BTreeMap;

use sync_host_store::store::{Kind, Store, StoreError};

use super::Network;

/// The resource types a comparison looks at.
pub type TypeList<'a> = &'a [(Kind, &'a str)];

/// `type/id` → content hash of every live (not deleted) resource of `types` in `store`.
pub fn contents(
    store: &Store,
    types: TypeList<'_>,
) -> Result<BTreeMap<String, String>, StoreError> {
    let mut out = BTreeMap::new();
    for (kind, resource_type) in types {
        let mut after: Option<String> = None;
        loop {
            let page = store.list(*kind, resource_type, after.as_deref(), 500)?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.id.clone());
            for record in &page {
                out.insert(
                    format!("{resource_type}/{}", record.key.id),
                    record.content_hash.clone(),
                );
            }
        }
    }
    Ok(out)
}

/// Every difference between the first node's contents and each other node's; empty when the
/// network has converged.
pub fn differences(network: &Network, types: TypeList<'_>) -> Result<Vec<String>, StoreError> {
    let mut snapshots = Vec::new();
    for node in &network.nodes {
        if let Some(store) = &node.running.handle.store {
            snapshots.push((node.spec.id.clone(), contents(store, types)?));
        }
    }
    let Some(((first_id, first), rest)) = snapshots.split_first().map(|(f, r)| ((&f.0, &f.1), r))
    else {
        return Ok(Vec::new());
    };
    let mut diffs = Vec::new();
    for (id, snapshot) in rest {
        for (key, hash) in first {
            match snapshot.get(key) {
                None => diffs.push(format!("{key} is on {first_id} but not on {id}")),
                Some(other) if other != hash => {
                    diffs.push(format!("{key} differs between {first_id} and {id}"))
                }
                Some(_) => {}
            }
        }
        for key in snapshot.keys().filter(|k| !first.contains_key(*k)) {
            diffs.push(format!("{key} is on {id} but not on {first_id}"));
        }
    }
    Ok(diffs)
}

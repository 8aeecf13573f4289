//! Comparing what nodes hold: the live resources of each store by content hash (which leaves
//! out the node-local meta), and the differences between nodes, each node compared with what
//! the data scopes on its way to the root admit of the root's records.

use std::collections::BTreeMap;

use sync_host_store::scope::DataScope;
use sync_host_store::store::{Kind, Placement, Store, StoreError};

use super::Network;

/// The resource types a comparison looks at.
pub type TypeList<'a> = &'a [(Kind, &'a str)];

/// `type/id` → content hash of every live (not deleted) resource of `types` in `store`.
pub fn contents(
    store: &Store,
    types: TypeList<'_>,
) -> Result<BTreeMap<String, String>, StoreError> {
    Ok(placed_contents(store, types)?
        .into_iter()
        .map(|(key, (hash, _))| (key, hash))
        .collect())
}

/// `type/id` → content hash and placement of every live resource of `types` in `store`.
pub fn placed_contents(
    store: &Store,
    types: TypeList<'_>,
) -> Result<BTreeMap<String, (String, Placement)>, StoreError> {
    let mut out = BTreeMap::new();
    for (kind, resource_type) in types {
        let mut after: Option<String> = None;
        loop {
            let page = store.list(*kind, resource_type, after.as_deref(), 500)?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.id.clone());
            for record in page {
                out.insert(
                    format!("{resource_type}/{}", record.key.id),
                    (record.content_hash, record.placement),
                );
            }
        }
    }
    Ok(out)
}

/// The data scopes between node `id` and the root: its own (the one its parent gives it)
/// and each ancestor's. A record of the root reaches the node only if all of them admit it.
pub fn scopes_above(network: &Network, id: &str) -> Vec<DataScope> {
    let mut scopes = Vec::new();
    let mut at = network.node(id);
    while let Some(node) = at {
        if let Some(patterns) = &node.spec.data_scope
            && let Ok(scope) = DataScope::new(patterns)
        {
            scopes.push(scope);
        }
        at = node.spec.parent.as_deref().and_then(|p| network.node(p));
    }
    scopes
}

/// Every difference between the first node's (the root's) contents and what each other node
/// holds, after the data scopes on the node's way to the root; empty when the network has
/// converged. A node holding a record its scopes do not admit is a difference too.
pub fn differences(network: &Network, types: TypeList<'_>) -> Result<Vec<String>, StoreError> {
    let mut snapshots = Vec::new();
    for node in &network.nodes {
        if let Some(store) = &node.running.handle.store {
            snapshots.push((node.spec.id.clone(), placed_contents(store, types)?));
        }
    }
    let Some(((first_id, first), rest)) = snapshots.split_first().map(|(f, r)| ((&f.0, &f.1), r))
    else {
        return Ok(Vec::new());
    };
    let mut diffs = Vec::new();
    for (id, snapshot) in rest {
        let scopes = scopes_above(network, id);
        let admitted = |placement: &Placement| scopes.iter().all(|s| s.admits(placement));
        for (key, (hash, placement)) in first {
            match snapshot.get(key) {
                None if admitted(placement) => {
                    diffs.push(format!("{key} is on {first_id} but not on {id}"));
                }
                Some(_) if !admitted(placement) => {
                    diffs.push(format!("{key} is on {id}, outside its data scope"));
                }
                Some((other, _)) if other != hash => {
                    diffs.push(format!("{key} differs between {first_id} and {id}"))
                }
                _ => {}
            }
        }
        for key in snapshot.keys().filter(|k| !first.contains_key(*k)) {
            diffs.push(format!("{key} is on {id} but not on {first_id}"));
        }
    }
    Ok(diffs)
}

//! What the simulation knows independently of the engine: every acknowledged local write
//! (its content hash, what the node held just before, and which earlier writes that node could
//! have seen), and, per node, the writes whose effects may have reached it through sync runs.
//! The knowledge is an over-approximation (every run is assumed to carry everything), so the
//! checks built on it may miss a loss but never invent one.

use std::collections::{BTreeMap, BTreeSet};

use sync_host::network::sample;

use super::schedule::PARENT;

/// The hash the checks use for a tombstone.
pub const DELETED: &str = "deleted";

/// One acknowledged local write.
#[derive(Debug, Clone)]
pub struct Write {
    pub id: usize,
    /// The schedule step that made it.
    pub step: usize,
    pub node: usize,
    /// Index into the resource pool.
    pub resource: usize,
    /// Content hash written, or [`DELETED`].
    pub hash: String,
    /// What the node held before: a content hash, [`DELETED`], or `None` when it had no copy.
    pub pre: Option<String>,
    /// Writes the node may have seen when it wrote this one.
    pub knew: BTreeSet<usize>,
}

/// The ledger of one schedule.
#[derive(Debug)]
pub struct Ledger {
    pub writes: Vec<Write>,
    /// Per node, the writes that may have reached it.
    pub knows: Vec<BTreeSet<usize>>,
    /// Per (node, resource), the body the node held before its own last write (`None`: none or
    /// a tombstone), which an undo writes back.
    undo: BTreeMap<(usize, usize), Option<String>>,
    /// Numbers new content, so every `Put` writes a body never written before.
    next_content: u64,
}

impl Ledger {
    /// An empty ledger for `nodes` nodes.
    pub fn new(nodes: usize) -> Self {
        Self {
            writes: Vec::new(),
            knows: vec![BTreeSet::new(); nodes],
            undo: BTreeMap::new(),
            next_content: 0,
        }
    }

    /// A body of `resource_type/id` never written before.
    pub fn new_body(&mut self, resource_type: &str, id: &str) -> String {
        self.next_content += 1;
        let n = self.next_content;
        match resource_type {
            "Patient" => sample::patient(id, "Amani", &format!("Family-{n}"), "1990-05-01"),
            _ => sample::weight(id, "p1", &format!("{}.{:02}", 40 + n / 100, n % 100)),
        }
    }

    /// What an undo at `node` of `resource` writes back: `Some(None)` deletes.
    pub fn undo_body(&self, node: usize, resource: usize) -> Option<Option<String>> {
        self.undo.get(&(node, resource)).cloned()
    }

    /// Records an acknowledged write; `pre_body` is what the node held before it.
    pub fn record(
        &mut self,
        step: usize,
        node: usize,
        resource: usize,
        hash: String,
        pre: Option<String>,
        pre_body: Option<String>,
    ) {
        let id = self.writes.len();
        self.writes.push(Write {
            id,
            step,
            node,
            resource,
            hash,
            pre,
            knew: self.knows[node].clone(),
        });
        self.knows[node].insert(id);
        self.undo.insert((node, resource), pre_body);
    }

    /// Every node may have seen every write so far: what is known of real processes, whose
    /// runs are triggered and then happen on their own time.
    pub fn share_all(&mut self) {
        let all: BTreeSet<usize> = (0..self.writes.len()).collect();
        for known in &mut self.knows {
            known.clone_from(&all);
        }
    }

    /// A run of `node` may have carried everything across its link, in its own direction and
    /// back: a conflict won by the target's state is written back to the source.
    pub fn transfer(&mut self, node: usize, _pull: bool) {
        let Some(parent) = PARENT[node] else { return };
        let both: BTreeSet<usize> = self.knows[parent]
            .union(&self.knows[node])
            .copied()
            .collect();
        self.knows[parent].clone_from(&both);
        self.knows[node] = both;
    }
}

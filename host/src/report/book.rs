//! The latest report of every node below this one, kept in the sync state's database so a
//! restarted parent still shows its network before the next reports arrive.

use super::kept::{KeptError, KeptTree};
use super::network::KeptReport;

/// The tree holding the reports, keyed by node id.
pub const REPORTS: &str = "sync.reports";

/// The kept reports. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReportBook {
    kept: KeptTree<KeptReport>,
}

impl ReportBook {
    /// The reports kept in `tree`.
    pub fn new(tree: sled::Tree) -> Self {
        Self {
            kept: KeptTree::new(tree),
        }
    }

    /// Every kept report, by node id.
    pub fn all(&self) -> Result<Vec<KeptReport>, KeptError> {
        self.kept.all()
    }

    /// The kept report of `node`.
    pub fn get(&self, node: &str) -> Result<Option<KeptReport>, KeptError> {
        self.kept.get(node)
    }

    /// Replaces everything kept through the child `via` by `kept`, in one atomic batch: a
    /// node no longer below that child is forgotten.
    pub fn replace_via(&self, via: &str, kept: &[KeptReport]) -> Result<(), KeptError> {
        let gone: Vec<String> = self
            .all()?
            .into_iter()
            .filter(|old| old.via == via && !kept.iter().any(|k| k.node == old.node))
            .map(|old| old.node)
            .collect();
        let put: Vec<(&str, &KeptReport)> = kept.iter().map(|k| (k.node.as_str(), k)).collect();
        self.kept.replace(&gone, &put)
    }
}

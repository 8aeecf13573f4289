//! The latest report of every node below this one, kept in the sync state's database so a
//! restarted parent still shows its network before the next reports arrive.

use super::network::KeptReport;

/// The tree holding the reports, keyed by node id.
pub const REPORTS: &str = "sync.reports";

/// What can go wrong with the kept reports.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("report storage failed")]
    Storage(#[from] sled::Error),
    #[error("could not encode the report of `{node}`")]
    Encode {
        node: String,
        source: serde_json::Error,
    },
    #[error("the kept report of `{node}` is unreadable")]
    Decode {
        node: String,
        source: serde_json::Error,
    },
}

/// The kept reports. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReportBook {
    tree: sled::Tree,
}

impl ReportBook {
    /// The reports kept in `tree`.
    pub fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    /// Every kept report, by node id.
    pub fn all(&self) -> Result<Vec<KeptReport>, BookError> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (key, value) = item?;
            out.push(decode(&key, &value)?);
        }
        Ok(out)
    }

    /// The kept report of `node`.
    pub fn get(&self, node: &str) -> Result<Option<KeptReport>, BookError> {
        self.tree
            .get(node.as_bytes())?
            .map(|value| decode(node.as_bytes(), &value))
            .transpose()
    }

    /// Replaces everything kept through the child `via` by `kept`, in one atomic batch: a
    /// node no longer below that child is forgotten.
    pub fn replace_via(&self, via: &str, kept: &[KeptReport]) -> Result<(), BookError> {
        let mut batch = sled::Batch::default();
        for old in self.all()? {
            if old.via == via && !kept.iter().any(|k| k.node == old.node) {
                batch.remove(old.node.as_bytes());
            }
        }
        for report in kept {
            let value = serde_json::to_vec(report).map_err(|source| BookError::Encode {
                node: report.node.clone(),
                source,
            })?;
            batch.insert(report.node.as_bytes(), value);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

fn decode(key: &[u8], value: &[u8]) -> Result<KeptReport, BookError> {
    serde_json::from_slice(value).map_err(|source| BookError::Decode {
        node: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}

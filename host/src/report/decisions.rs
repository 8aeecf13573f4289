//! Conflict decisions made at an ancestor for a node below it. The parent never dials the
//! child: a decision waits at each level and travels down in the answer to the next report
//! from below, and its outcome travels up in the target's own report. Every node on the way
//! keeps the decision until it sees that outcome.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::kept::{KeptError, KeptTree};
use crate::audit::Timestamp;
use crate::sync::conflict::Side;

/// The tree holding decisions, keyed by decision id.
pub const DECISIONS: &str = "sync.decisions";

/// Decisions one report answer carries at most; the rest follow in later answers. Well below
/// [`MAX_OUTCOMES`], so the outcomes of a whole answer fit in the next report with room for
/// the answers before it that a level above has not heard of yet.
pub const MAX_PER_ANSWER: usize = 50;

/// Decision outcomes a report carries at most, newest first.
pub const MAX_OUTCOMES: usize = 500;

/// An operator's decision about one conflict of a node below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Unique in the tree: the issuing node's id and a number of its own.
    pub id: String,
    /// The node holding the conflict.
    pub target: String,
    /// The conflict's id on the target.
    pub conflict_id: u64,
    /// `Type/id` of the conflict's resource, checked by the target before it applies anything.
    pub resource: String,
    /// Keep this side's version…
    pub side: Option<Side>,
    /// …or write this merged body (JSON text, kept exactly as the operator wrote it).
    pub body: Option<String>,
    /// The operator.
    pub by: String,
    /// The node the operator acted from.
    pub from_node: String,
    /// When the operator decided, by the issuing node's clock.
    pub issued_at: Timestamp,
}

/// What became of a decision at its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionOutcome {
    /// The decision's id.
    pub id: String,
    /// Whether the resolution was written; `false` when the target refused it.
    pub applied: bool,
    /// What the target said (the winner, or why it refused, e.g. stale).
    pub message: String,
    /// When, by the target's clock.
    pub at: Timestamp,
}

/// A decision as a node keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptDecision {
    pub decision: Decision,
    /// `None` while the outcome has not been heard of.
    pub outcome: Option<DecisionOutcome>,
}

/// The decisions a node keeps: issued here, passing through, or addressed to it. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct DecisionBook {
    kept: KeptTree<KeptDecision>,
}

impl DecisionBook {
    /// The decisions kept in `tree`.
    pub fn new(tree: sled::Tree) -> Self {
        Self {
            kept: KeptTree::new(tree),
        }
    }

    /// Every kept decision.
    pub fn all(&self) -> Result<Vec<KeptDecision>, KeptError> {
        self.kept.all()
    }

    /// One decision.
    pub fn get(&self, id: &str) -> Result<Option<KeptDecision>, KeptError> {
        self.kept.get(id)
    }

    /// Keeps `decision` as pending, unless it is kept already (a decision delivered again
    /// keeps its outcome).
    pub fn keep(&self, decision: Decision) -> Result<(), KeptError> {
        let id = decision.id.clone();
        let pending = KeptDecision {
            decision,
            outcome: None,
        };
        self.kept.put_if_absent(&id, &pending)
    }

    /// Records what became of decisions: each `(target, outcomes)` settles only pending
    /// decisions addressed to `target`, so no node can settle another's. Returns how many.
    pub fn settle_from(&self, reports: &[(&str, &[DecisionOutcome])]) -> Result<usize, KeptError> {
        let mut pending: std::collections::BTreeMap<String, KeptDecision> = self
            .all()?
            .into_iter()
            .filter(|k| k.outcome.is_none())
            .map(|k| (k.decision.id.clone(), k))
            .collect();
        let mut settled = 0;
        for (target, outcomes) in reports {
            for outcome in *outcomes {
                let Some(kept) = pending.get_mut(&outcome.id) else {
                    continue;
                };
                if kept.decision.target != *target || kept.outcome.is_some() {
                    continue;
                }
                kept.outcome = Some(outcome.clone());
                self.kept.put(&outcome.id, kept)?;
                settled += 1;
            }
        }
        Ok(settled)
    }

    /// Pending decisions whose target is one of `targets`, oldest first, at most `limit`.
    pub fn pending_for(
        &self,
        targets: &BTreeSet<&str>,
        limit: usize,
    ) -> Result<Vec<Decision>, KeptError> {
        let mut pending: Vec<Decision> = self
            .all()?
            .into_iter()
            .filter(|k| k.outcome.is_none() && targets.contains(k.decision.target.as_str()))
            .map(|k| k.decision)
            .collect();
        pending.sort_by_key(|d| d.issued_at);
        pending.truncate(limit);
        Ok(pending)
    }

    /// The outcomes of decisions addressed to `target`, newest first, at most `limit`.
    pub fn outcomes_of(
        &self,
        target: &str,
        limit: usize,
    ) -> Result<Vec<DecisionOutcome>, KeptError> {
        let mut outcomes: Vec<DecisionOutcome> = self
            .all()?
            .into_iter()
            .filter(|k| k.decision.target == target)
            .filter_map(|k| k.outcome)
            .collect();
        outcomes.sort_by_key(|o| std::cmp::Reverse(o.at));
        outcomes.truncate(limit);
        Ok(outcomes)
    }
}

/// Why a merged body cannot be sent for a conflict on `resource` (`Type/id`): it must be a
/// JSON object, and a FHIR resource must name the same type and id.
pub fn merged_body_problem(resource: &str, body: &str) -> Option<String> {
    let value: serde_json::Value = match serde_json::from_str(body) {
        Ok(value) => value,
        Err(e) => return Some(format!("the merged body is not JSON: {e}")),
    };
    let Some(object) = value.as_object() else {
        return Some("the merged body is not a JSON object".into());
    };
    let (kind, id) = resource.split_once('/').unwrap_or((resource, ""));
    let is_fhir = kind.starts_with(|c: char| c.is_ascii_uppercase());
    if !is_fhir {
        return None;
    }
    let named = |key: &str| object.get(key).and_then(|v| v.as_str()).unwrap_or_default();
    if named("resourceType") != kind || named("id") != id {
        return Some(format!(
            "the merged body is {}/{}, not {resource}",
            named("resourceType"),
            named("id")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(id: &str, target: &str) -> Decision {
        Decision {
            id: id.into(),
            target: target.into(),
            conflict_id: 7,
            resource: "Patient/p".into(),
            side: Some(Side::Child),
            body: None,
            by: "ana".into(),
            from_node: "national".into(),
            issued_at: Timestamp::from_millis(1),
        }
    }

    #[test]
    fn a_decision_stays_pending_until_its_outcome_is_heard_and_keeps_it() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = sled::open(dir.path())?;
        let book = DecisionBook::new(db.open_tree(DECISIONS)?);
        book.keep(decision("national-1", "clinic"))?;
        book.keep(decision("national-2", "other"))?;
        let targets = BTreeSet::from(["clinic"]);
        assert_eq!(book.pending_for(&targets, 10)?.len(), 1);
        let outcome = DecisionOutcome {
            id: "national-1".into(),
            applied: true,
            message: "child kept".into(),
            at: Timestamp::from_millis(5),
        };
        // Another node cannot settle it; its target can.
        assert_eq!(
            book.settle_from(&[("other", std::slice::from_ref(&outcome))])?,
            0
        );
        assert_eq!(
            book.settle_from(&[("clinic", std::slice::from_ref(&outcome))])?,
            1
        );
        assert!(book.pending_for(&targets, 10)?.is_empty());
        // Delivered again, it keeps its outcome.
        book.keep(decision("national-1", "clinic"))?;
        assert_eq!(book.outcomes_of("clinic", 10)?, vec![outcome]);
        Ok(())
    }

    #[test]
    fn a_merged_body_must_be_the_same_resource() {
        assert_eq!(
            merged_body_problem("Patient/p", r#"{"resourceType":"Patient","id":"p"}"#),
            None
        );
        assert!(
            merged_body_problem("Patient/p", r#"{"resourceType":"Patient","id":"q"}"#).is_some()
        );
        assert!(merged_body_problem("Patient/p", "[1]").is_some());
        assert!(merged_body_problem("Patient/p", "{nope").is_some());
        assert_eq!(merged_body_problem("visit/abc", r#"{"uuid":"abc"}"#), None);
    }
}

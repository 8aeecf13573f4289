//! The audit record: what happened to one event on one node, as DESIGN §5 lists it.

use serde::{Deserialize, Serialize};

use crate::audit::Timestamp;
use crate::sync::conflict::{Direction, Policy, Side};
use crate::sync::retry::FailureKind;

/// The plugin that handled an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRef {
    /// The plugin's name (`fhir`, `rest`, ...).
    pub name: String,
    /// The plugin's own version string.
    pub version: String,
}

/// Why an event was skipped without being fetched or stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// The change came from the node it would be sent to.
    Echo,
    /// The target already holds this content (by hash or version from the feed).
    AlreadyPresent,
    /// The source already holds a newer state than the event announced; a later entry of the
    /// feed carries that state and its origin.
    Superseded,
    /// The resource left this node's data scope at the parent, which sends no further
    /// changes of it; the copy here is kept as it is.
    LeftScope,
}

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// The resource was written to the target.
    Applied,
    /// The target already had the same content.
    Unchanged,
    /// An event filter rejected it.
    Filtered {
        /// The filter plugin's name.
        by: String,
        /// The reason the filter gave.
        reason: String,
    },
    /// Both sides changed; `winner` is `None` when parked for an operator.
    Conflict {
        /// The conflict record's id in the sync state.
        conflict_id: u64,
        /// The policy applied.
        policy: Policy,
        /// The side that won, if a policy decided.
        winner: Option<Side>,
    },
    /// The attempt failed.
    Failed {
        /// The failure's class.
        failure: FailureKind,
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// The OperationOutcome text or error message.
        message: String,
        /// The attempt number (1 for the first try).
        attempt: u32,
    },
    /// A later success settled an earlier failure.
    Settled {
        /// The id of the retry or dead-letter entry that was settled.
        earlier_failure_id: u64,
    },
    /// Not processed, on purpose.
    Skipped {
        /// Why.
        reason: SkipReason,
    },
}

/// The outcome without its details, for filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    /// [`Outcome::Applied`].
    Applied,
    /// [`Outcome::Unchanged`].
    Unchanged,
    /// [`Outcome::Filtered`].
    Filtered,
    /// [`Outcome::Conflict`].
    Conflict,
    /// [`Outcome::Failed`].
    Failed,
    /// [`Outcome::Settled`].
    Settled,
    /// [`Outcome::Skipped`].
    Skipped,
}

impl Outcome {
    /// This outcome's kind.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Applied => OutcomeKind::Applied,
            Outcome::Unchanged => OutcomeKind::Unchanged,
            Outcome::Filtered { .. } => OutcomeKind::Filtered,
            Outcome::Conflict { .. } => OutcomeKind::Conflict,
            Outcome::Failed { .. } => OutcomeKind::Failed,
            Outcome::Settled { .. } => OutcomeKind::Settled,
            Outcome::Skipped { .. } => OutcomeKind::Skipped,
        }
    }
}

/// One processed event on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When processing finished.
    pub time: Timestamp,
    /// The node that wrote the record.
    pub node: String,
    /// Pull or push.
    pub direction: Direction,
    /// The feed action (`created`, `updated`, `voided`, ...).
    pub action: String,
    /// The feed category (`patient`, ...).
    pub category: String,
    /// The resource type (`Patient`) or REST resource name.
    pub resource_type: String,
    /// The resource id.
    pub resource_id: String,
    /// The feed entry id, when the record comes from an event.
    pub event_id: Option<String>,
    /// Where the resource was read from.
    pub source_url: Option<String>,
    /// Where it was written to.
    pub target_url: Option<String>,
    /// The resource client or filter involved.
    pub plugin: Option<PluginRef>,
    /// What happened.
    pub outcome: Outcome,
    /// How long processing took, in milliseconds.
    pub duration_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_json_is_tagged_and_readable() {
        let failed = Outcome::Failed {
            failure: FailureKind::Transient,
            status: Some(503),
            message: "Service Unavailable".into(),
            attempt: 2,
        };
        let json = serde_json::to_value(&failed).expect("serialises");
        assert_eq!(json["kind"], "failed");
        assert_eq!(json["failure"], "transient");
        assert_eq!(json["status"], 503);
        assert_eq!(failed.kind(), OutcomeKind::Failed);
        let back: Outcome = serde_json::from_value(json).expect("parses");
        assert_eq!(back, failed);
    }
}

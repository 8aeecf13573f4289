//! What a status report says: one node's view of itself, as a child sends it to its parent and
//! a parent relays it further up. Fields a reader does not know are ignored, so nodes of
//! different versions can report to each other during an upgrade. Everything here is a summary: no resource body is ever part
//! of a report, so a report cannot carry what the node's push filters would keep back.

use serde::{Deserialize, Serialize};

use super::decisions::{Decision, DecisionOutcome};
use crate::audit::Timestamp;
use crate::sync::conflict::{Direction, Policy};
use crate::sync::retry::FailureKind;
use crate::sync::status::{LastRun, ProgressSnapshot};

/// Recent failures a report lists at most.
pub const MAX_FAILURES: usize = 50;

/// Open conflicts a report summarises at most (the counts still say how many there are).
pub const MAX_CONFLICTS: usize = 200;

/// Plugins a report lists at most.
pub const MAX_PLUGINS: usize = 64;

/// Longest message text a report keeps; longer ones are cut at a character boundary.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// One node's report about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    /// The reporting node's id.
    pub node: String,
    /// The node it syncs with, as its own configuration names it.
    pub parent: Option<String>,
    /// The sync-host version the node runs.
    pub version: String,
    /// When the node made the report, by its own clock (shown, never used for ages).
    pub generated_at: Timestamp,
    /// The plugins it has loaded.
    pub plugins: Vec<PluginSummary>,
    /// The pull direction, when it runs.
    pub pull: Option<DirectionReport>,
    /// The push direction, when it runs.
    pub push: Option<DirectionReport>,
    /// How much waits for attention.
    pub counts: ReportCounts,
    /// The most recent failed events, newest first.
    pub recent_failures: Vec<FailureSummary>,
    /// The open conflicts, oldest first.
    pub conflicts: Vec<ConflictSummary>,
    /// What became of the decisions ancestors sent this node, newest first.
    #[serde(default)]
    pub decisions: Vec<DecisionOutcome>,
}

/// A loaded plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginSummary {
    /// The name the configuration uses.
    pub name: String,
    /// The plugin's own version string.
    pub version: String,
    /// `resource-client` or `event-filter`.
    pub world: String,
    /// The sha256 of its component, hex.
    pub digest: String,
}

/// One direction of the reporting node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DirectionReport {
    /// Entries still to process, when known.
    pub lag_entries: Option<u64>,
    /// The last run that finished.
    pub last_success: Option<Timestamp>,
    /// The last run that failed, and why.
    pub last_failure: Option<FailureNote>,
    /// Whether a run is under way.
    pub running: bool,
    /// Catch-up progress of the run under way.
    pub progress: Option<ProgressSnapshot>,
    /// Runs finished since the node started.
    #[serde(default)]
    pub runs: u64,
    /// What the last finished run did.
    #[serde(default)]
    pub last_run: Option<LastRun>,
}

/// When something failed, and its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureNote {
    /// When.
    pub at: Timestamp,
    /// What the node said.
    pub message: String,
}

/// The counts a report carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ReportCounts {
    /// Conflicts waiting for an operator or a policy.
    pub open_conflicts: u64,
    /// Events waiting for another attempt.
    pub retries: u64,
    /// Events that ran out of attempts.
    pub dead_letters: u64,
}

/// One failed event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureSummary {
    /// When it failed.
    pub at: Timestamp,
    /// Pull or push.
    pub direction: Direction,
    /// `Type/id`.
    pub resource: String,
    /// The failure's class.
    pub kind: FailureKind,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// The message, cut to [`MAX_MESSAGE_CHARS`].
    pub message: String,
}

/// One open conflict, without either body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictSummary {
    /// The conflict's id on the reporting node.
    pub id: u64,
    /// Pull or push.
    pub direction: Direction,
    /// `Type/id`.
    pub resource: String,
    /// The feed category.
    pub category: String,
    /// When it was detected.
    pub detected_at: Timestamp,
    /// The policy that parked or decided it.
    pub policy: Policy,
    /// The parent's version.
    pub parent: VersionSummary,
    /// The child's version.
    pub child: VersionSummary,
}

/// One side of a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSummary {
    /// The side's version id, when it has one.
    pub version: Option<String>,
    /// The content hash.
    pub content_hash: String,
    /// Whether this side deleted the resource.
    pub deleted: bool,
}

/// What a child sends its parent: its own report, and the latest it holds of every node below
/// it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportUpload {
    /// The child's own report.
    pub report: NodeReport,
    /// The nodes below the child.
    #[serde(default)]
    pub below: Vec<RelayedNode>,
}

/// A node below the sender, as the sender last heard of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayedNode {
    /// Its id.
    pub node: String,
    /// The node it reports to.
    pub parent: String,
    /// Seconds since its report reached the tree, by the sender's clock (ages add up level by
    /// level, so no two nodes' clocks are ever compared); `None` when it never reported.
    pub age_secs: Option<u64>,
    /// Its latest report; `None` when it never reported.
    pub report: Option<NodeReport>,
}

/// A parent's answer to an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAnswer {
    /// Reports kept (the sender's and those below it).
    pub accepted: usize,
    /// Decisions for the sender or nodes below it, to apply or pass on.
    #[serde(default)]
    pub decisions: Vec<Decision>,
}

/// `text` cut to [`MAX_MESSAGE_CHARS`] characters.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 3);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(clipped.ends_with('…'));
        assert_eq!(clip("short"), "short");
    }
}

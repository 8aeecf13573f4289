//! A node's own status report, and what it uploads to its parent: the report plus the latest
//! of every node below it. Read from the node's live status and its sync state; nothing here
//! writes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::audit::{Outcome, Timestamp};
use crate::node::NodeHandle;
use crate::plugins::PluginRegistry;
use crate::report::decisions::MAX_OUTCOMES;
use crate::report::model::{
    ConflictSummary, DirectionReport, FailureNote, FailureSummary, MAX_CONFLICTS, MAX_FAILURES,
    MAX_PLUGINS, PluginSummary, ReportCounts, VersionSummary, clip,
};
use crate::report::{
    DecisionBook, KeptError, NodeReport, Position, ReportBook, ReportUpload, network,
};
use crate::state::{ConflictRecord, ConflictVersion, StateError};
use crate::sync::status::DirectionStatus;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportingError {
    #[error("reading the sync state for the report")]
    State(#[from] StateError),
    #[error(transparent)]
    Kept(#[from] KeptError),
}

/// What a node knows about the report tree: where it keeps its children's reports, which
/// children it has, and when a report is stale.
pub struct Reporting {
    pub book: ReportBook,
    /// Conflict decisions issued here, passing through, or addressed to this node.
    pub decisions: DecisionBook,
    /// Configured child node ids, by the name of their client.
    pub children: BTreeMap<String, String>,
    pub stale_after: Duration,
    pub plugins: Vec<PluginSummary>,
}

impl Reporting {
    /// The child node ids, for checking uploads.
    pub fn child_ids(&self) -> BTreeSet<String> {
        self.children.values().cloned().collect()
    }

    /// Where `node` stands, given what it keeps: for an upload from `sender`, the nodes kept
    /// through other children are taken.
    pub fn standing(
        &self,
        node: &NodeHandle,
        sender: Option<&str>,
        kept: &[crate::report::KeptReport],
    ) -> Standing {
        let taken = match sender {
            Some(sender) => kept
                .iter()
                .filter(|k| k.via != sender)
                .map(|k| k.node.clone())
                .collect(),
            None => BTreeSet::new(),
        };
        Standing {
            this: node.node_id.clone(),
            parent: node.parent_node.clone(),
            children: self.child_ids(),
            taken,
        }
    }
}

/// The owned parts of a [`Position`].
pub struct Standing {
    this: String,
    parent: Option<String>,
    children: BTreeSet<String>,
    taken: BTreeSet<String>,
}

impl Standing {
    /// The position these parts describe.
    pub fn position(&self) -> Position<'_> {
        Position {
            this: &self.this,
            parent: self.parent.as_deref(),
            children: &self.children,
            taken: &self.taken,
        }
    }
}

/// The plugins of `registry`, as a report lists them.
pub fn plugin_summaries(registry: &PluginRegistry) -> Vec<PluginSummary> {
    registry
        .iter()
        .take(MAX_PLUGINS)
        .map(|entry| PluginSummary {
            name: entry.name.clone(),
            version: entry.plugin.info().version.clone(),
            world: entry.plugin.world().to_string(),
            digest: entry.plugin.digest().to_string(),
        })
        .collect()
}

/// This node's report about itself, now.
pub fn own_report(node: &NodeHandle) -> Result<NodeReport, ReportingError> {
    let markers = node.state.markers()?;
    let counts = node.state.counts(Timestamp::now())?;
    let direction = |control: &Option<(_, DirectionStatus)>, lag: Option<u64>| {
        control
            .as_ref()
            .map(|(_, status)| direction_report(status, lag))
    };
    let pull_lag = crate::node::lag::pull_lag(node, &markers);
    let push_lag = crate::node::lag::push_lag(node, &markers)?;
    let conflicts = node.state.oldest_open_conflicts(MAX_CONFLICTS)?;
    Ok(NodeReport {
        node: node.node_id.clone(),
        parent: node.parent_node.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        generated_at: Timestamp::now(),
        plugins: node.reporting.plugins.clone(),
        pull: direction(&node.pull, pull_lag),
        push: direction(&node.push, push_lag),
        counts: ReportCounts {
            open_conflicts: counts.open_conflicts as u64,
            retries: counts.retries as u64,
            dead_letters: counts.dead_letters as u64,
        },
        recent_failures: recent_failures(node),
        conflicts: conflicts.iter().map(conflict_summary).collect(),
        decisions: node
            .reporting
            .decisions
            .outcomes_of(&node.node_id, MAX_OUTCOMES)?,
    })
}

/// What this node sends its parent: its own report and everything it holds from below.
pub fn upload(node: &NodeHandle) -> Result<ReportUpload, ReportingError> {
    let report = own_report(node)?;
    let kept = node.reporting.book.all()?;
    let standing = node.reporting.standing(node, None, &kept);
    Ok(ReportUpload {
        report,
        below: network::relay(&kept, &standing.position(), Timestamp::now()),
    })
}

fn direction_report(status: &DirectionStatus, lag_entries: Option<u64>) -> DirectionReport {
    let snapshot = status.snapshot();
    DirectionReport {
        lag_entries,
        last_success: snapshot.last_success,
        last_failure: snapshot.last_failure.map(|(at, message)| FailureNote {
            at,
            message: clip(&message),
        }),
        running: snapshot.running,
        progress: snapshot.progress,
        runs: snapshot.runs,
        last_run: snapshot.last_run.map(|mut run| {
            run.error = run.error.as_deref().map(clip);
            run
        }),
    }
}

fn recent_failures(node: &NodeHandle) -> Vec<FailureSummary> {
    node.state
        .recent_failures()
        .into_iter()
        .take(MAX_FAILURES)
        .filter_map(|record| {
            let Outcome::Failed {
                failure,
                status,
                message,
                ..
            } = record.outcome
            else {
                return None;
            };
            Some(FailureSummary {
                at: record.time,
                direction: record.direction,
                resource: format!("{}/{}", record.resource_type, record.resource_id),
                kind: failure,
                status,
                message: clip(&message),
            })
        })
        .collect()
}

fn conflict_summary(record: &ConflictRecord) -> ConflictSummary {
    let side = |version: &ConflictVersion| VersionSummary {
        version: version.version.clone(),
        content_hash: version.effective_hash().to_string(),
        deleted: version.deleted,
    };
    ConflictSummary {
        id: record.id,
        direction: record.direction,
        resource: format!("{}/{}", record.resource_type, record.resource_id),
        category: record.category.clone(),
        detected_at: record.detected_at,
        policy: record.policy,
        parent: side(&record.parent),
        child: side(&record.child),
    }
}

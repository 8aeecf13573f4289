//! The pure rules of the report tree: which uploads a parent accepts from a child, what it
//! relays upward, and the network view an operator reads. No I/O; the clock is an argument.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::model::{
    FailureNote, MAX_CONFLICTS, MAX_FAILURES, MAX_MESSAGE_CHARS, MAX_PLUGINS, NodeReport,
    RelayedNode, ReportCounts, ReportUpload,
};
use crate::audit::Timestamp;
use crate::config::is_valid_node_id;

/// Nodes one upload may carry below its sender.
pub const MAX_BELOW: usize = 10_000;

/// A node's latest report as a parent keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptReport {
    /// The node.
    pub node: String,
    /// The node it reports to.
    pub parent: String,
    /// The direct child of this node it came through (the node itself for a direct report).
    pub via: String,
    /// When it arrived here, by this node's clock.
    pub received_at: Timestamp,
    /// Its age when it arrived: 0 for a direct report; `None` when it never reported.
    pub age_at_receipt_secs: Option<u64>,
    /// The report; `None` when it never reported.
    pub report: Option<NodeReport>,
}

impl KeptReport {
    /// Seconds since the report reached the tree, or `None` when the node never reported.
    pub fn age_secs(&self, now: Timestamp) -> Option<u64> {
        let here = now.as_millis().saturating_sub(self.received_at.as_millis()) / 1000;
        self.age_at_receipt_secs.map(|age| age.saturating_add(here))
    }
}

/// Why an upload was refused. Nothing of a refused upload is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("client `{client}` reports only as node `{client}`, not as `{claimed}`")]
    NotItself { client: String, claimed: String },
    #[error("node `{node}` names `{claimed}` as its parent, but this node is `{this}`")]
    OtherParent {
        node: String,
        claimed: String,
        this: String,
    },
    #[error("`{0}` is not a valid node id")]
    InvalidId(String),
    #[error("the report of `{node}` lists {count} {what}, more than the {limit} allowed")]
    TooMany {
        node: String,
        what: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("the upload lists {0} nodes below its sender, more than the {MAX_BELOW} allowed")]
    TooManyNodes(usize),
}

/// Where this node stands in the tree, for checking uploads.
pub struct Position<'a> {
    /// This node's id.
    pub this: &'a str,
    /// The node it reports to, if any: no node below may take its name.
    pub parent: Option<&'a str>,
    /// The node ids of its configured children.
    pub children: &'a BTreeSet<String>,
    /// Nodes kept through another child: a sender may not claim them.
    pub taken: &'a BTreeSet<String>,
}

/// What an upload leaves to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    /// The sender's report and every relayed node it may speak for.
    pub kept: Vec<KeptReport>,
    /// Relayed nodes left out, with why: one bad entry (a misconfigured clinic far below)
    /// must not cut the sender's whole subtree off.
    pub dropped: Vec<(String, &'static str)>,
}

/// The reports to keep from `upload`, sent by the child node `from` and received `now`; the
/// reports kept earlier through `from` are replaced by these. The sender's own report must be
/// right, or nothing is kept; a relayed node it may not speak for is left out.
pub fn admit(
    upload: ReportUpload,
    from: &str,
    here: &Position<'_>,
    now: Timestamp,
) -> Result<Admitted, Refusal> {
    let ReportUpload { report, below } = upload;
    if report.node != from {
        return Err(Refusal::NotItself {
            client: from.to_string(),
            claimed: report.node,
        });
    }
    if report.parent.as_deref() != Some(here.this) {
        return Err(Refusal::OtherParent {
            node: report.node,
            claimed: report.parent.unwrap_or_default(),
            this: here.this.to_string(),
        });
    }
    check_bounds(&report)?;
    if below.len() > MAX_BELOW {
        return Err(Refusal::TooManyNodes(below.len()));
    }
    let mut dropped = Vec::new();
    let mut candidates: BTreeMap<String, RelayedNode> = BTreeMap::new();
    for relayed in below {
        match problem_with(&relayed, from, here) {
            Some(why) => dropped.push((relayed.node, why)),
            None if candidates.contains_key(&relayed.node) => {
                dropped.push((relayed.node, "it appears twice"));
            }
            None => {
                candidates.insert(relayed.node.clone(), relayed);
            }
        }
    }
    let parents: BTreeMap<&str, &str> = candidates
        .values()
        .map(|r| (r.node.as_str(), r.parent.as_str()))
        .collect();
    let reached: BTreeSet<String> = reaching(&parents, from)
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut kept = vec![KeptReport {
        node: from.to_string(),
        parent: here.this.to_string(),
        via: from.to_string(),
        received_at: now,
        age_at_receipt_secs: Some(0),
        report: Some(report),
    }];
    for (node, relayed) in candidates {
        if !reached.contains(&node) {
            dropped.push((node, "its parents do not lead to the sender"));
            continue;
        }
        kept.push(KeptReport {
            node,
            parent: relayed.parent,
            via: from.to_string(),
            received_at: now,
            age_at_receipt_secs: relayed.age_secs.filter(|_| relayed.report.is_some()),
            report: relayed.report,
        });
    }
    Ok(Admitted { kept, dropped })
}

/// Why the sender `from` may not speak for `relayed`, if it may not.
fn problem_with(relayed: &RelayedNode, from: &str, here: &Position<'_>) -> Option<&'static str> {
    let node = relayed.node.as_str();
    if !is_valid_node_id(node) || !is_valid_node_id(&relayed.parent) {
        return Some("its id or its parent's is not a valid node id");
    }
    if node == here.this || node == from || Some(node) == here.parent {
        return Some("it is this node, the sender or this node's parent");
    }
    if here.children.contains(node) {
        return Some("it is another child of this node");
    }
    if here.taken.contains(node) {
        return Some("it is reported through another child");
    }
    if let Some(report) = &relayed.report {
        if report.node != node || report.parent.as_deref() != Some(relayed.parent.as_str()) {
            return Some("its report names another node or parent");
        }
        if check_bounds(report).is_err() {
            return Some("its report is over a bound");
        }
    }
    None
}

/// The nodes whose chain of parents ends at the sender. Each node's verdict is worked out
/// once, so a chain of ten thousand costs ten thousand steps, and a cycle ends the walk.
fn reaching<'a>(parents: &BTreeMap<&'a str, &'a str>, from: &str) -> BTreeSet<&'a str> {
    let mut verdicts: BTreeMap<&str, bool> = BTreeMap::new();
    for start in parents.keys() {
        let mut path: Vec<&str> = Vec::new();
        let mut on_path: BTreeSet<&str> = BTreeSet::new();
        let mut at: &str = start;
        let verdict = loop {
            if at == from {
                break true;
            }
            if let Some(known) = verdicts.get(at) {
                break *known;
            }
            let Some(up) = parents.get(at) else {
                break false;
            };
            if !on_path.insert(at) {
                break false;
            }
            path.push(at);
            at = up;
        };
        for node in path {
            verdicts.insert(node, verdict);
        }
    }
    verdicts
        .into_iter()
        .filter_map(|(node, reached)| reached.then_some(node))
        .collect()
}

fn check_bounds(report: &NodeReport) -> Result<(), Refusal> {
    let too_many = |what, count, limit| Refusal::TooMany {
        node: report.node.clone(),
        what,
        count,
        limit,
    };
    let long_messages = report
        .recent_failures
        .iter()
        .filter(|f| f.message.chars().count() > MAX_MESSAGE_CHARS + 1)
        .count();
    let checks = [
        ("failures", report.recent_failures.len(), MAX_FAILURES),
        ("conflicts", report.conflicts.len(), MAX_CONFLICTS),
        ("plugins", report.plugins.len(), MAX_PLUGINS),
        (
            "decision outcomes",
            report.decisions.len(),
            super::decisions::MAX_OUTCOMES,
        ),
        ("over-long messages", long_messages, 0),
    ];
    for (what, count, limit) in checks {
        if count > limit {
            return Err(too_many(what, count, limit));
        }
    }
    if !is_valid_node_id(&report.node) {
        return Err(Refusal::InvalidId(report.node.clone()));
    }
    Ok(())
}

/// What this node relays upward: every node below it that it knows, with its age now, and
/// each configured child that never reported.
pub fn relay(kept: &[KeptReport], here: &Position<'_>, now: Timestamp) -> Vec<RelayedNode> {
    let mut below: Vec<RelayedNode> = kept
        .iter()
        .map(|k| RelayedNode {
            node: k.node.clone(),
            parent: k.parent.clone(),
            age_secs: k.age_secs(now),
            report: k.report.clone(),
        })
        .collect();
    let known: BTreeSet<&str> = kept.iter().map(|k| k.node.as_str()).collect();
    for child in here.children {
        if !known.contains(child.as_str()) {
            below.push(RelayedNode {
                node: child.clone(),
                parent: here.this.to_string(),
                age_secs: None,
                report: None,
            });
        }
    }
    below
}

/// A node's health as the network view shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// Reported within the stale age.
    Ok,
    /// Its latest report is older than the stale age.
    Stale,
    /// Configured below, never heard of.
    NeverReported,
}

/// One row of the network view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRow {
    pub node: String,
    pub parent: Option<String>,
    /// Levels below the node answering (0 for itself).
    pub depth: usize,
    pub health: Health,
    /// Seconds since its report reached the tree.
    pub age_secs: Option<u64>,
    /// When its report reached the tree, by the answering node's clock.
    pub reported_at: Option<Timestamp>,
    pub version: Option<String>,
    pub pull_lag: Option<u64>,
    pub push_lag: Option<u64>,
    pub last_success: Option<Timestamp>,
    pub counts: Option<ReportCounts>,
    /// The newest failure of either direction.
    pub last_failure: Option<FailureNote>,
}

/// The network as seen from the node that made `this`: itself first, then every node below
/// it depth first (children by id); nodes whose parent is unknown come last.
pub fn view(
    this: &NodeReport,
    kept: &[KeptReport],
    here: &Position<'_>,
    now: Timestamp,
    stale_after: Duration,
) -> Vec<NetworkRow> {
    let entries: BTreeMap<String, RelayedNode> = relay(kept, here, now)
        .into_iter()
        .map(|relayed| (relayed.node.clone(), relayed))
        .collect();
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (node, entry) in &entries {
        children
            .entry(entry.parent.as_str())
            .or_default()
            .push(node);
    }
    let mut rows = vec![row(
        this.node.clone(),
        this.parent.clone(),
        0,
        Some(0),
        Some(this),
        now,
        stale_after,
    )];
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut stack: Vec<(&str, usize)> = children
        .get(this.node.as_str())
        .map(|c| c.iter().rev().map(|n| (*n, 1)).collect())
        .unwrap_or_default();
    while let Some((node, depth)) = stack.pop() {
        // Each node is placed once, so a cycle in what was relayed cannot loop.
        if !placed.insert(node) {
            continue;
        }
        if let Some(entry) = entries.get(node) {
            rows.push(kept_row(entry, depth, now, stale_after));
        }
        if let Some(below) = children.get(node) {
            stack.extend(below.iter().rev().map(|n| (*n, depth + 1)));
        }
    }
    for (node, entry) in &entries {
        if !placed.contains(node.as_str()) {
            rows.push(kept_row(entry, 1, now, stale_after));
        }
    }
    rows
}

fn kept_row(
    entry: &RelayedNode,
    depth: usize,
    now: Timestamp,
    stale_after: Duration,
) -> NetworkRow {
    row(
        entry.node.clone(),
        Some(entry.parent.clone()),
        depth,
        entry.age_secs,
        entry.report.as_ref(),
        now,
        stale_after,
    )
}

fn row(
    node: String,
    parent: Option<String>,
    depth: usize,
    age_secs: Option<u64>,
    report: Option<&NodeReport>,
    now: Timestamp,
    stale_after: Duration,
) -> NetworkRow {
    let health = match (age_secs, report) {
        (Some(age), Some(_)) if age <= stale_after.as_secs() => Health::Ok,
        (Some(_), Some(_)) => Health::Stale,
        _ => Health::NeverReported,
    };
    let directions = || {
        report
            .into_iter()
            .flat_map(|r| [&r.pull, &r.push])
            .flatten()
    };
    NetworkRow {
        node,
        parent,
        depth,
        health,
        age_secs: age_secs.filter(|_| report.is_some()),
        reported_at: age_secs
            .filter(|_| report.is_some())
            .map(|age| now.saturating_sub(Duration::from_secs(age))),
        version: report.map(|r| r.version.clone()),
        pull_lag: report
            .and_then(|r| r.pull.as_ref())
            .and_then(|d| d.lag_entries),
        push_lag: report
            .and_then(|r| r.push.as_ref())
            .and_then(|d| d.lag_entries),
        last_success: directions().filter_map(|d| d.last_success).max(),
        counts: report.map(|r| r.counts),
        last_failure: directions()
            .filter_map(|d| d.last_failure.clone())
            .max_by_key(|f| f.at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::ReportCounts;

    fn report(node: &str, parent: &str) -> NodeReport {
        NodeReport {
            node: node.into(),
            parent: Some(parent.into()),
            version: "0.1.0".into(),
            generated_at: Timestamp::from_millis(0),
            plugins: Vec::new(),
            pull: None,
            push: None,
            counts: ReportCounts::default(),
            recent_failures: Vec::new(),
            conflicts: Vec::new(),
            decisions: Vec::new(),
        }
    }

    fn relayed(node: &str, parent: &str, age: Option<u64>) -> RelayedNode {
        RelayedNode {
            node: node.into(),
            parent: parent.into(),
            age_secs: age,
            report: age.map(|_| report(node, parent)),
        }
    }

    fn upload(from: &str, below: Vec<RelayedNode>) -> ReportUpload {
        ReportUpload {
            report: report(from, "district"),
            below,
        }
    }

    fn children() -> BTreeSet<String> {
        ["clinic-1", "clinic-2"].map(String::from).into()
    }

    fn admit_at_district(upload: ReportUpload) -> Result<Vec<KeptReport>, Refusal> {
        let children = children();
        let taken = BTreeSet::from(["post-of-clinic-2".to_string()]);
        let here = Position {
            this: "district",
            parent: Some("national"),
            children: &children,
            taken: &taken,
        };
        admit(upload, "clinic-1", &here, Timestamp::from_millis(1_000_000)).map(|a| a.kept)
    }

    fn kept_nodes(kept: &[KeptReport]) -> Vec<&str> {
        kept.iter().map(|k| k.node.as_str()).collect()
    }

    #[test]
    fn a_child_reports_itself_and_its_subtree() {
        let kept = admit_at_district(upload(
            "clinic-1",
            vec![
                relayed("post-a", "clinic-1", Some(30)),
                relayed("post-b", "post-a", None),
            ],
        ))
        .expect("accepted");
        let nodes: Vec<_> = kept
            .iter()
            .map(|k| (k.node.as_str(), k.via.as_str()))
            .collect();
        assert_eq!(
            nodes,
            [
                ("clinic-1", "clinic-1"),
                ("post-a", "clinic-1"),
                ("post-b", "clinic-1")
            ]
        );
        assert_eq!(kept[1].age_at_receipt_secs, Some(30));
        assert_eq!(kept[2].report, None);
    }

    #[test]
    fn a_child_may_speak_only_for_itself_and_nodes_below_it() {
        let as_other = upload("clinic-2", vec![]);
        assert!(matches!(
            admit_at_district(as_other),
            Err(Refusal::NotItself { .. })
        ));
        let wrong_parent = ReportUpload {
            report: report("clinic-1", "national"),
            below: vec![],
        };
        assert!(matches!(
            admit_at_district(wrong_parent),
            Err(Refusal::OtherParent { .. })
        ));
        let mut lying = relayed("liar", "clinic-1", Some(1));
        lying.report = Some(report("clinic-2", "clinic-1"));
        let claims = vec![
            relayed("clinic-2", "clinic-1", Some(1)),
            relayed("district", "clinic-1", Some(1)),
            relayed("national", "clinic-1", Some(1)),
            relayed("post-of-clinic-2", "clinic-1", Some(1)),
            relayed("x", "y", Some(1)),
            relayed("y", "x", Some(1)),
            relayed("z", "nowhere", Some(1)),
            relayed("twice", "clinic-1", Some(1)),
            relayed("twice", "clinic-1", None),
            relayed("bad id", "clinic-1", None),
            relayed("under-z", "z", Some(1)),
            lying,
            relayed("post-a", "clinic-1", Some(1)),
        ];
        let kept =
            admit_at_district(upload("clinic-1", claims)).expect("the sender's own report is fine");
        // Only what the sender may speak for is kept; everything else is left out, not the lot.
        assert_eq!(kept_nodes(&kept), ["clinic-1", "post-a", "twice"]);
    }

    #[test]
    fn a_long_chain_is_walked_once() {
        let mut chain = Vec::new();
        let mut parent = "clinic-1".to_string();
        for n in 0..MAX_BELOW {
            let node = format!("n{n}");
            chain.push(relayed(&node, &parent, None));
            parent = node;
        }
        let kept = admit_at_district(upload("clinic-1", chain)).expect("accepted");
        assert_eq!(kept.len(), MAX_BELOW + 1);
    }

    #[test]
    fn an_oversized_report_is_refused() {
        let mut big = upload("clinic-1", vec![]);
        big.report.recent_failures = vec![
            crate::report::model::FailureSummary {
                at: Timestamp::from_millis(0),
                direction: crate::sync::conflict::Direction::Pull,
                resource: "Patient/p".into(),
                kind: crate::sync::retry::FailureKind::Transient,
                status: None,
                message: String::new(),
            };
            MAX_FAILURES + 1
        ];
        assert!(matches!(
            admit_at_district(big),
            Err(Refusal::TooMany { .. })
        ));
    }

    #[test]
    fn the_view_walks_the_tree_and_ages_add_up_across_levels() {
        let now = Timestamp::from_millis(10_000_000);
        let kept =
            |node: &str, parent: &str, received_secs_ago: u64, age: Option<u64>| KeptReport {
                node: node.into(),
                parent: parent.into(),
                via: "district".into(),
                received_at: now.saturating_sub(Duration::from_secs(received_secs_ago)),
                age_at_receipt_secs: age,
                report: age.map(|_| report(node, parent)),
            };
        let book = vec![
            kept("district", "national", 10, Some(0)),
            kept("clinic-1", "district", 10, Some(50)),
            kept("clinic-3", "district", 10, None),
            kept("orphan", "gone", 10, Some(0)),
        ];
        let children: BTreeSet<String> = ["district", "district-b"].map(String::from).into();
        let taken = BTreeSet::new();
        let here = Position {
            this: "national",
            parent: None,
            children: &children,
            taken: &taken,
        };
        let mut this = report("national", "x");
        this.parent = None;
        let rows = view(&this, &book, &here, now, Duration::from_secs(30));
        let shape: Vec<_> = rows
            .iter()
            .map(|r| (r.node.as_str(), r.depth, r.health, r.age_secs))
            .collect();
        assert_eq!(
            shape,
            [
                ("national", 0, Health::Ok, Some(0)),
                ("district", 1, Health::Ok, Some(10)),
                ("clinic-1", 2, Health::Stale, Some(60)),
                ("clinic-3", 2, Health::NeverReported, None),
                ("district-b", 1, Health::NeverReported, None),
                ("orphan", 1, Health::Ok, Some(10)),
            ]
        );
        assert_eq!(
            rows[2].reported_at,
            Some(now.saturating_sub(Duration::from_secs(60)))
        );
    }
}

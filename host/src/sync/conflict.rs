//! Conflict detection and resolution: pure decisions over content hashes, no I/O.
//!
//! Per resource a node remembers a [`SyncBase`]: the content hash (and parent version) at the
//! last successful sync. When a new state arrives from the other side, [`decide`] compares it
//! with the local state and the base; a [`Decision::Conflict`] is then settled by a [`Policy`]
//! through [`resolve`]. Whatever the policy, the losing version is carried in the
//! [`Resolution`] so the caller keeps it: nothing is silently lost.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::audit::Timestamp;

/// The hash recorded for a tombstone: every deleted state is the same "content".
pub const TOMBSTONE_HASH: &str = "deleted";

/// Which way a sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The parent's changes are copied into this node.
    Pull,
    /// This node's changes are copied up to the parent.
    Push,
}

/// A side of a parent/child pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The node above.
    Parent,
    /// The node below.
    Child,
}

/// What this node remembers about a resource from its last successful sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncBase {
    /// Content hash both sides agreed on ([`TOMBSTONE_HASH`] for a deletion).
    pub content_hash: String,
    /// The parent's version at that point, used as `If-Match` when pushing.
    pub parent_version: Option<String>,
}

/// One state of a resource on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionState {
    /// Canonical content hash of the body (ignored when `deleted`).
    pub content_hash: String,
    /// The side's version id, when it has one.
    pub version: Option<String>,
    /// `meta.lastUpdated`, when known.
    pub last_updated: Option<Timestamp>,
    /// True for a tombstone.
    pub deleted: bool,
}

impl VersionState {
    /// The hash used for comparisons: all tombstones compare equal.
    pub fn effective_hash(&self) -> &str {
        if self.deleted {
            TOMBSTONE_HASH
        } else {
            &self.content_hash
        }
    }
}

/// The outcome of comparing local, incoming and base states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Only the other side changed (or nothing is here yet): write the incoming state.
    Apply,
    /// Both sides already hold the same content.
    Unchanged,
    /// Only this side changed since the base: the incoming state is the older one and must
    /// not replace it; the change travels the other way.
    KeepLocal,
    /// Both sides changed since the base (or there is no base and they differ).
    Conflict,
}

/// Decides what to do with `incoming` given the `local` state (`None` when the resource
/// does not exist here) and the base from the last successful sync.
///
/// On pull `local` is this node's store and `incoming` the parent's state; on push `local` is
/// the parent's current state (the write target) and `incoming` this node's state.
pub fn decide(
    base: Option<&SyncBase>,
    local: Option<&VersionState>,
    incoming: &VersionState,
) -> Decision {
    let Some(local) = local else {
        // Deleting something that never existed here changes nothing.
        return if incoming.deleted {
            Decision::Unchanged
        } else {
            Decision::Apply
        };
    };
    if local.effective_hash() == incoming.effective_hash() {
        return Decision::Unchanged;
    }
    let Some(base) = base else {
        // Two different states and no shared history: no way to tell which is newer.
        return Decision::Conflict;
    };
    let local_changed = local.effective_hash() != base.content_hash;
    let incoming_changed = incoming.effective_hash() != base.content_hash;
    match (local_changed, incoming_changed) {
        (false, _) => Decision::Apply,
        (true, false) => Decision::KeepLocal,
        (true, true) => Decision::Conflict,
    }
}

/// Decides after the parent refused a push with 412/409: the parent changed even if our base
/// says otherwise, so anything but identical content is a conflict.
pub fn decide_rejected_push(
    parent_current: Option<&VersionState>,
    child: &VersionState,
) -> Decision {
    match parent_current {
        Some(parent) if parent.effective_hash() == child.effective_hash() => Decision::Unchanged,
        _ => Decision::Conflict,
    }
}

/// How a conflict is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The parent's version wins.
    ParentWins,
    /// The child's version wins.
    ChildWins,
    /// The version with the later `meta.lastUpdated` wins; ties (and unknown times) go to
    /// the parent, which is the side more people have seen.
    NewestWins,
    /// Nothing is written; the conflict is parked for an operator. This is the default
    /// because silently overwriting a clinical record is the worst outcome.
    #[default]
    Manual,
}

/// Conflict policies of one node: a default and per-category overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySet {
    /// Used for every category without an override.
    #[serde(default)]
    pub default: Policy,
    /// Overrides keyed by feed category (`patient`, `encounter`, ...).
    #[serde(default)]
    pub per_category: BTreeMap<String, Policy>,
}

impl PolicySet {
    /// The policy for `category`.
    pub fn policy_for(&self, category: &str) -> Policy {
        self.per_category
            .get(category)
            .copied()
            .unwrap_or(self.default)
    }
}

/// How a conflict was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A policy chose a winner; the loser must be kept with the conflict record.
    Decided {
        /// The side whose version won.
        winner: Side,
        /// The winning state.
        winning: VersionState,
        /// The losing state, kept so nothing is lost.
        losing: VersionState,
        /// True when the incoming state must be written to the target.
        write_incoming: bool,
        /// The base to remember once the resolution is carried out. When the incoming state
        /// is written, replace `parent_version` with the version the target assigns.
        new_base: SyncBase,
    },
    /// Manual policy: no winner, both versions kept for an operator.
    Parked {
        /// The parent's state.
        parent: VersionState,
        /// The child's state.
        child: VersionState,
    },
}

impl Resolution {
    /// The winning side, `None` when parked.
    pub fn winner(&self) -> Option<Side> {
        match self {
            Resolution::Decided { winner, .. } => Some(*winner),
            Resolution::Parked { .. } => None,
        }
    }
}

/// The side `incoming` comes from in `direction`.
pub fn incoming_side(direction: Direction) -> Side {
    match direction {
        Direction::Pull => Side::Parent,
        Direction::Push => Side::Child,
    }
}

/// Settles a conflict between `local` and `incoming` by `policy`.
pub fn resolve(
    direction: Direction,
    policy: Policy,
    local: &VersionState,
    incoming: &VersionState,
) -> Resolution {
    let (parent, child) = match direction {
        Direction::Pull => (incoming, local),
        Direction::Push => (local, incoming),
    };
    let winner = match policy {
        Policy::ParentWins => Side::Parent,
        Policy::ChildWins => Side::Child,
        Policy::NewestWins => newest(parent, child),
        Policy::Manual => {
            return Resolution::Parked {
                parent: parent.clone(),
                child: child.clone(),
            };
        }
    };
    let incoming_wins = winner == incoming_side(direction);
    let (winning, losing) = if incoming_wins {
        (incoming, local)
    } else {
        (local, incoming)
    };
    Resolution::Decided {
        winner,
        winning: winning.clone(),
        losing: losing.clone(),
        write_incoming: incoming_wins,
        new_base: base_after_resolution(parent, incoming),
    }
}

/// The base after a decided conflict. It is always the incoming hash: if the incoming state
/// lost, the next sync in the other direction then sees "only the winner's side changed" and
/// carries the winner across instead of reporting the same conflict again.
fn base_after_resolution(parent: &VersionState, incoming: &VersionState) -> SyncBase {
    SyncBase {
        content_hash: incoming.effective_hash().to_owned(),
        parent_version: parent.version.clone(),
    }
}

/// Which side is newer by `last_updated`; ties and unknown times go to the parent.
fn newest(parent: &VersionState, child: &VersionState) -> Side {
    match (parent.last_updated, child.last_updated) {
        (Some(p), Some(c)) if c > p => Side::Child,
        (None, Some(_)) => Side::Child,
        _ => Side::Parent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn state(hash: &str, millis: Option<u64>) -> VersionState {
        VersionState {
            content_hash: hash.to_owned(),
            version: Some(format!("v-{hash}")),
            last_updated: millis.map(Timestamp::from_millis),
            deleted: false,
        }
    }

    fn base(hash: &str) -> SyncBase {
        SyncBase {
            content_hash: hash.to_owned(),
            parent_version: None,
        }
    }

    #[test]
    fn absent_local_applies_and_absent_delete_is_unchanged() {
        assert_eq!(decide(None, None, &state("a", None)), Decision::Apply);
        let mut tomb = state("a", None);
        tomb.deleted = true;
        assert_eq!(decide(None, None, &tomb), Decision::Unchanged);
    }

    #[test]
    fn only_other_side_changed_applies_only_local_changed_keeps() {
        let b = base("a");
        assert_eq!(
            decide(Some(&b), Some(&state("a", None)), &state("b", None)),
            Decision::Apply
        );
        assert_eq!(
            decide(Some(&b), Some(&state("b", None)), &state("a", None)),
            Decision::KeepLocal
        );
        assert_eq!(
            decide(Some(&b), Some(&state("b", None)), &state("c", None)),
            Decision::Conflict
        );
        assert_eq!(
            decide(None, Some(&state("b", None)), &state("c", None)),
            Decision::Conflict
        );
        assert_eq!(
            decide(None, Some(&state("c", None)), &state("c", None)),
            Decision::Unchanged
        );
    }

    #[test]
    fn tombstones_compare_equal_whatever_their_hash() {
        let mut x = state("x", None);
        x.deleted = true;
        let mut y = state("y", None);
        y.deleted = true;
        assert_eq!(decide(None, Some(&x), &y), Decision::Unchanged);
    }

    #[test]
    fn rejected_push_is_a_conflict_unless_identical() {
        let child = state("c", None);
        assert_eq!(
            decide_rejected_push(Some(&state("p", None)), &child),
            Decision::Conflict
        );
        assert_eq!(decide_rejected_push(None, &child), Decision::Conflict);
        assert_eq!(
            decide_rejected_push(Some(&state("c", None)), &child),
            Decision::Unchanged
        );
    }

    #[test]
    fn newest_wins_by_last_updated_and_ties_go_to_parent() {
        let older = state("old", Some(1_000));
        let newer = state("new", Some(2_000));
        let r = resolve(Direction::Pull, Policy::NewestWins, &newer, &older);
        assert_eq!(r.winner(), Some(Side::Child));
        let r = resolve(Direction::Pull, Policy::NewestWins, &older, &newer);
        assert_eq!(r.winner(), Some(Side::Parent));
        let same = state("same", Some(1_000));
        let r = resolve(Direction::Push, Policy::NewestWins, &same, &older);
        assert_eq!(r.winner(), Some(Side::Parent));
    }

    #[test]
    fn child_wins_on_pull_keeps_local_and_bases_on_parent() {
        let local = state("child", None);
        let incoming = state("parent", None);
        let Resolution::Decided {
            winner,
            losing,
            write_incoming,
            new_base,
            ..
        } = resolve(Direction::Pull, Policy::ChildWins, &local, &incoming)
        else {
            panic!("child-wins must decide");
        };
        assert_eq!(winner, Side::Child);
        assert!(!write_incoming);
        assert_eq!(losing, incoming);
        // The next push then sees "only the child changed" and carries the winner up.
        assert_eq!(
            decide(Some(&new_base), Some(&incoming), &local),
            Decision::Apply
        );
    }

    #[test]
    fn policy_set_uses_category_override() {
        let mut set = PolicySet::default();
        assert_eq!(set.policy_for("patient"), Policy::Manual);
        set.per_category.insert("obs".into(), Policy::ParentWins);
        assert_eq!(set.policy_for("obs"), Policy::ParentWins);
    }

    fn arb_state() -> impl Strategy<Value = VersionState> {
        ("[abc]", proptest::option::of(0u64..5), any::<bool>()).prop_map(|(h, t, d)| {
            let mut s = state(&h, t);
            s.deleted = d;
            s
        })
    }

    fn arb_policy() -> impl Strategy<Value = Policy> {
        prop_oneof![
            Just(Policy::ParentWins),
            Just(Policy::ChildWins),
            Just(Policy::NewestWins),
            Just(Policy::Manual)
        ]
    }

    proptest! {
        #[test]
        fn never_apply_when_hashes_equal(
            b in proptest::option::of("[abc]|deleted"),
            local in proptest::option::of(arb_state()),
            incoming in arb_state(),
        ) {
            let b = b.map(|h| base(&h));
            let d = decide(b.as_ref(), local.as_ref(), &incoming);
            if let Some(l) = &local {
                let equal = l.effective_hash() == incoming.effective_hash();
                prop_assert_eq!(equal, d == Decision::Unchanged);
                if let (Decision::Conflict, Some(b)) = (d, &b) {
                    prop_assert_ne!(l.effective_hash(), b.content_hash.as_str());
                    prop_assert_ne!(incoming.effective_hash(), b.content_hash.as_str());
                }
            }
        }

        #[test]
        fn resolution_keeps_the_loser_and_manual_never_picks(
            dir in prop_oneof![Just(Direction::Pull), Just(Direction::Push)],
            policy in arb_policy(),
            local in arb_state(),
            incoming in arb_state(),
        ) {
            match resolve(dir, policy, &local, &incoming) {
                Resolution::Parked { parent, child } => {
                    prop_assert_eq!(policy, Policy::Manual);
                    let (want_parent, want_child) = match dir {
                        Direction::Pull => (&incoming, &local),
                        Direction::Push => (&local, &incoming),
                    };
                    prop_assert_eq!(&parent, want_parent);
                    prop_assert_eq!(&child, want_child);
                }
                Resolution::Decided { winning, losing, write_incoming, .. } => {
                    prop_assert_ne!(policy, Policy::Manual);
                    let expected_loser = if write_incoming { &local } else { &incoming };
                    prop_assert_eq!(&losing, expected_loser);
                    let expected_winner = if write_incoming { &incoming } else { &local };
                    prop_assert_eq!(&winning, expected_winner);
                }
            }
        }
    }
}

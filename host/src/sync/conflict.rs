//! Conflict detection and resolution: pure decisions over content hashes, no I/O.
//!
//! Per resource a node remembers a [`SyncBase`]: the content hash (and parent version) at the
//! last successful sync. When a new state arrives from the other side, [`decide`] compares it
//! with the local state and the base; a [`Decision::Conflict`] is then settled by a [`Policy`]
//! through [`resolve`]. Whatever the policy, the losing version is carried in the
//! [`Resolution`] so the caller keeps it: nothing is silently lost.

use serde::{Deserialize, Serialize};

use crate::audit::Timestamp;

mod resolve;

pub use resolve::{Policy, PolicySet, Resolution, incoming_side, resolve};

/// The hash recorded for a tombstone: every deleted state is the same "content".
pub const TOMBSTONE_HASH: &str = "deleted";

pub use sync_host_runtime::Direction;

/// A side of a parent/child pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The node above.
    Parent,
    /// The node below.
    Child,
}

impl Side {
    /// The other side of the pair.
    pub fn other(self) -> Side {
        match self {
            Side::Parent => Side::Child,
            Side::Child => Side::Parent,
        }
    }
}

/// What this node remembers about a resource from its last successful sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncBase {
    /// Content hash both sides agreed on ([`TOMBSTONE_HASH`] for a deletion).
    pub content_hash: String,
    /// The parent's version at that point, used as `If-Match` when pushing.
    pub parent_version: Option<String>,
    /// This node's own version at that point. Bases written before versions were recorded
    /// have none; a side whose version is unknown is compared by content alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_version: Option<String>,
    /// The resource left this node's data scope at the parent, and this node kept its copy:
    /// the parent sends no further changes of it and would refuse this node's, so a push
    /// holds its local edits back until a pull brings the resource into the scope again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub left_scope: bool,
}

impl SyncBase {
    /// The base version recorded for `side`.
    pub fn version_of(&self, side: Side) -> Option<&str> {
        match side {
            Side::Parent => self.parent_version.as_deref(),
            Side::Child => self.child_version.as_deref(),
        }
    }

    /// Whether `state` of `side` differs from this base: other content, or, when both
    /// versions are known, another version. A side whose version moved has changed even if its
    /// content came back to the base (an undo, or a re-creation deleted again), so that a
    /// concurrent change on the other side is seen as a conflict, not applied over it.
    pub fn changed(&self, side: Side, state: &VersionState) -> bool {
        !self.holds(side, state.effective_hash(), state.version.as_deref())
    }

    /// Whether `side` holding content `hash` at `version` is exactly this base: the same
    /// content, at the same version when both versions are known.
    pub fn holds(&self, side: Side, hash: &str, version: Option<&str>) -> bool {
        self.content_hash == hash
            && match (self.version_of(side), version) {
                (Some(at_base), Some(now)) => at_base == now,
                _ => true,
            }
    }
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
/// the parent's current state (the write target) and `incoming` this node's state. Equal
/// content on both sides is never a conflict; otherwise a side "changed" when its content or
/// its version moved since the base ([`SyncBase::changed`]).
pub fn decide(
    direction: Direction,
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
    let incoming_side = incoming_side(direction);
    let local_changed = base.changed(incoming_side.other(), local);
    let incoming_changed = base.changed(incoming_side, incoming);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(super) fn state(hash: &str, millis: Option<u64>) -> VersionState {
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
            child_version: None,
            left_scope: false,
        }
    }

    #[test]
    fn absent_local_applies_and_absent_delete_is_unchanged() {
        assert_eq!(
            decide(Direction::Pull, None, None, &state("a", None)),
            Decision::Apply
        );
        let mut tomb = state("a", None);
        tomb.deleted = true;
        assert_eq!(
            decide(Direction::Pull, None, None, &tomb),
            Decision::Unchanged
        );
    }

    #[test]
    fn only_other_side_changed_applies_only_local_changed_keeps() {
        let b = base("a");
        assert_eq!(
            decide(
                Direction::Pull,
                Some(&b),
                Some(&state("a", None)),
                &state("b", None)
            ),
            Decision::Apply
        );
        assert_eq!(
            decide(
                Direction::Pull,
                Some(&b),
                Some(&state("b", None)),
                &state("a", None)
            ),
            Decision::KeepLocal
        );
        assert_eq!(
            decide(
                Direction::Pull,
                Some(&b),
                Some(&state("b", None)),
                &state("c", None)
            ),
            Decision::Conflict
        );
        assert_eq!(
            decide(
                Direction::Pull,
                None,
                Some(&state("b", None)),
                &state("c", None)
            ),
            Decision::Conflict
        );
        assert_eq!(
            decide(
                Direction::Pull,
                None,
                Some(&state("c", None)),
                &state("c", None)
            ),
            Decision::Unchanged
        );
    }

    #[test]
    fn tombstones_compare_equal_whatever_their_hash() {
        let mut x = state("x", None);
        x.deleted = true;
        let mut y = state("y", None);
        y.deleted = true;
        assert_eq!(
            decide(Direction::Pull, None, Some(&x), &y),
            Decision::Unchanged
        );
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

    fn versioned(hash: &str, version: &str) -> VersionState {
        VersionState {
            version: Some(version.to_owned()),
            ..state(hash, None)
        }
    }

    #[test]
    fn an_undo_is_a_change_when_the_version_moved() {
        // Base: content a at parent version 1 and child version 5.
        let b = SyncBase {
            content_hash: "a".into(),
            parent_version: Some("1".into()),
            child_version: Some("5".into()),
            left_scope: false,
        };
        // Pull: the child edited and then undid (a at version 7); the parent edited (b at 2).
        assert_eq!(
            decide(
                Direction::Pull,
                Some(&b),
                Some(&versioned("a", "7")),
                &versioned("b", "2")
            ),
            Decision::Conflict
        );
        // The same, but the child never touched it: only the parent changed.
        assert_eq!(
            decide(
                Direction::Pull,
                Some(&b),
                Some(&versioned("a", "5")),
                &versioned("b", "2")
            ),
            Decision::Apply
        );
        // Push: the parent undid (a at 3) while the child edited (c at 6).
        assert_eq!(
            decide(
                Direction::Push,
                Some(&b),
                Some(&versioned("a", "3")),
                &versioned("c", "6")
            ),
            Decision::Conflict
        );
        // Push: the child undid (a at 6) while the parent edited (b at 2): the child's state
        // must not silently replace the parent's edit either.
        assert_eq!(
            decide(
                Direction::Push,
                Some(&b),
                Some(&versioned("b", "2")),
                &versioned("a", "6")
            ),
            Decision::Conflict
        );
        // Equal content is never a conflict, whatever the versions.
        assert_eq!(
            decide(
                Direction::Push,
                Some(&b),
                Some(&versioned("a", "9")),
                &versioned("a", "6")
            ),
            Decision::Unchanged
        );
    }

    #[test]
    fn unknown_versions_compare_by_content() {
        // No parent version was recorded: the parent's side is compared by content alone.
        let b = SyncBase {
            content_hash: "a".into(),
            parent_version: None,
            child_version: Some("5".into()),
            left_scope: false,
        };
        assert_eq!(
            decide(
                Direction::Push,
                Some(&b),
                Some(&versioned("a", "9")),
                &versioned("b", "6")
            ),
            Decision::Apply
        );
    }

    pub(super) fn arb_state() -> impl Strategy<Value = VersionState> {
        ("[abc]", proptest::option::of(0u64..5), any::<bool>()).prop_map(|(h, t, d)| {
            let mut s = state(&h, t);
            s.deleted = d;
            s
        })
    }

    proptest! {
        #[test]
        fn never_apply_when_hashes_equal(
            b in proptest::option::of("[abc]|deleted"),
            local in proptest::option::of(arb_state()),
            incoming in arb_state(),
        ) {
            let b = b.map(|h| base(&h));
            let d = decide(Direction::Pull, b.as_ref(), local.as_ref(), &incoming);
            if let Some(l) = &local {
                let equal = l.effective_hash() == incoming.effective_hash();
                prop_assert_eq!(equal, d == Decision::Unchanged);
                if let (Decision::Conflict, Some(b)) = (d, &b) {
                    prop_assert_ne!(l.effective_hash(), b.content_hash.as_str());
                    prop_assert_ne!(incoming.effective_hash(), b.content_hash.as_str());
                }
            }
        }
    }
}

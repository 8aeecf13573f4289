//! The vocabulary sync-host's crates share: which way a sync runs, what happened to a resource,
//! and why a resource could not be moved; and a histogram of durations the metrics read.
//!
//! The feed reader, the store, the plugin runtime and the engine all speak of these; each
//! concept is one type here, so no crate converts between copies of it.

pub mod durations;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which way a sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Copy the parent's changes into this node.
    Pull,
    /// Copy this node's changes up to its parent.
    Push,
}

impl Direction {
    /// The lower-case name used in the audit, the API and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Pull => "pull",
            Direction::Push => "push",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What happened to a resource: what a feed entry announces and what a store change did.
///
/// In a feed it is an upper-case category term (`CREATED`, as OpenMRS writes it), read
/// case-insensitively; in JSON, the audit and the plugin contract it is lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The resource was created (a first version, or a new one after a delete).
    Created,
    /// The resource changed.
    Updated,
    /// The resource was deleted (a tombstone follows).
    Deleted,
    /// The resource was voided (OpenMRS soft delete: its `voided` flag turned true).
    Voided,
    /// A voided resource was restored.
    Unvoided,
    /// A metadata resource was retired (its `retired` flag turned true).
    Retired,
    /// A retired resource was restored.
    Unretired,
    /// The resource was removed for good. OpenMRS publishes it; our store never does.
    Purged,
}

impl Action {
    /// Every action, in declaration order. Stored codes are positions in this list, so new
    /// actions go at the end.
    pub const ALL: [Action; 8] = [
        Action::Created,
        Action::Updated,
        Action::Deleted,
        Action::Voided,
        Action::Unvoided,
        Action::Retired,
        Action::Unretired,
        Action::Purged,
    ];

    /// The feed category term (`CREATED`, `UPDATED`, ...).
    pub fn term(self) -> &'static str {
        match self {
            Action::Created => "CREATED",
            Action::Updated => "UPDATED",
            Action::Deleted => "DELETED",
            Action::Voided => "VOIDED",
            Action::Unvoided => "UNVOIDED",
            Action::Retired => "RETIRED",
            Action::Unretired => "UNRETIRED",
            Action::Purged => "PURGED",
        }
    }

    /// The lower-case name (`created`, `updated`, ...) of the audit and the JSON forms.
    pub fn name(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
            Action::Voided => "voided",
            Action::Unvoided => "unvoided",
            Action::Retired => "retired",
            Action::Unretired => "unretired",
            Action::Purged => "purged",
        }
    }

    /// Reads a category term, ignoring ASCII case and surrounding white space; `None` when
    /// the term is not an action.
    pub fn from_term(term: &str) -> Option<Action> {
        let term = term.trim();
        Action::ALL
            .into_iter()
            .find(|action| action.term().eq_ignore_ascii_case(term))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.term())
    }
}

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(term: &str) -> Result<Self, Self::Err> {
        Action::from_term(term).ok_or_else(|| UnknownAction(term.to_owned()))
    }
}

/// A term that is not an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a feed action (expected CREATED, UPDATED, DELETED, VOIDED, UNVOIDED, RETIRED, UNRETIRED or PURGED)"
)]
pub struct UnknownAction(pub String);

/// Why one resource could not be fetched or stored: the cases of the plugin contract's
/// `failure`, plus the host's own for a plugin that failed to answer at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// 404 at the source or target.
    NotFound,
    /// 410: the resource existed and was deleted.
    Gone,
    /// 412 or 409: the target changed since the expected version.
    Conflict,
    /// 401 or 403: credentials refused.
    Unauthorized,
    /// Other 4xx or an unusable body: retrying cannot help.
    Invalid,
    /// 5xx, timeout, connection error.
    Transient,
    /// The plugin trapped, ran past its deadline or its memory cap.
    Plugin,
    /// Not a failure of the resource: a local edit of it is held back because it left this
    /// node's data scope, and goes up when a pull brings it back.
    LeftScope,
}

impl FailureKind {
    /// The kebab-case name (`not-found`, `transient`, ...), as the contract spells it.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::NotFound => "not-found",
            FailureKind::Gone => "gone",
            FailureKind::Conflict => "conflict",
            FailureKind::Unauthorized => "unauthorized",
            FailureKind::Invalid => "invalid",
            FailureKind::Transient => "transient",
            FailureKind::Plugin => "plugin",
            FailureKind::LeftScope => "left-scope",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_reads_back_from_its_term_in_any_case() {
        for action in Action::ALL {
            assert_eq!(Action::from_term(action.term()), Some(action));
            assert_eq!(
                Action::from_term(&action.term().to_lowercase()),
                Some(action)
            );
            assert_eq!(action.name(), action.term().to_lowercase());
        }
        assert_eq!(Action::from_term(" Voided\n"), Some(Action::Voided));
        assert_eq!(Action::from_term("patient"), None);
        assert!("patient".parse::<Action>().is_err());
    }

    #[test]
    fn json_names_are_the_lower_case_names() {
        for action in Action::ALL {
            let json = serde_json::to_string(&action).unwrap();
            assert_eq!(json, format!("\"{}\"", action.name()));
        }
        for kind in [FailureKind::NotFound, FailureKind::Plugin] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
        assert_eq!(serde_json::to_string(&Direction::Push).unwrap(), "\"push\"");
    }
}

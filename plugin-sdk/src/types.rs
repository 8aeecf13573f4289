//! The WIT types under their Rust names, with small conveniences for plugins.

use std::fmt;

pub use crate::bindings::base::sync::plugin::types::{
    Action, Direction, Endpoint, Event, Failure, FailureDetail, Link, PluginInfo, Resource, Role,
    Stored, Write, WriteOutcome,
};
#[cfg(feature = "event-filter")]
pub use crate::bindings::event_filter::exports::sync::plugin::filter::Verdict;

/// The `expected_version` of a write that must only create: the target must hold no live
/// copy (`If-None-Match: *`). No version id is empty, so the value cannot mean a version.
pub const CREATE_ONLY: &str = "";

/// The precondition a write carries, read from its `expected_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition<'a> {
    /// Write whatever the target holds.
    None,
    /// Write only if the target's current version is this (`If-Match`).
    Version(&'a str),
    /// Write only if the target holds no live copy (`If-None-Match: *`).
    Absent,
}

impl Write {
    /// What this write requires of the target.
    pub fn precondition(&self) -> Precondition<'_> {
        match self.expected_version.as_deref() {
            None => Precondition::None,
            Some(CREATE_ONLY) => Precondition::Absent,
            Some(version) => Precondition::Version(version),
        }
    }
}

impl Failure {
    /// Maps an HTTP status that is not a success to the failure the host
    /// understands: 404 not found, 410 gone, 409/412 conflict, 401/403
    /// unauthorized, other 4xx invalid, 3xx invalid (the host follows no
    /// redirects, so retrying cannot help), everything else transient.
    pub fn from_status(status: u16, message: impl Into<String>) -> Failure {
        let detail = FailureDetail {
            status: Some(status),
            message: message.into(),
        };
        match status {
            404 => Failure::NotFound(detail),
            410 => Failure::Gone(detail),
            409 | 412 => Failure::Conflict(detail),
            401 | 403 => Failure::Unauthorized(detail),
            300..=499 => Failure::Invalid(detail),
            _ => Failure::Transient(detail),
        }
    }

    /// A permanent failure with no HTTP status, such as an unparseable body.
    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure::Invalid(FailureDetail {
            status: None,
            message: message.into(),
        })
    }

    /// A failure that may go away on retry, with no HTTP status.
    pub fn transient(message: impl Into<String>) -> Failure {
        Failure::Transient(FailureDetail {
            status: None,
            message: message.into(),
        })
    }

    /// The detail every case carries.
    pub fn detail(&self) -> &FailureDetail {
        match self {
            Failure::NotFound(d)
            | Failure::Gone(d)
            | Failure::Conflict(d)
            | Failure::Unauthorized(d)
            | Failure::Invalid(d)
            | Failure::Transient(d) => d,
        }
    }

    /// The name of the case, as the WIT spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::NotFound(_) => "not-found",
            Failure::Gone(_) => "gone",
            Failure::Conflict(_) => "conflict",
            Failure::Unauthorized(_) => "unauthorized",
            Failure::Invalid(_) => "invalid",
            Failure::Transient(_) => "transient",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = self.detail();
        match detail.status {
            Some(status) => write!(f, "{} (HTTP {status}): {}", self.kind(), detail.message),
            None => write!(f, "{}: {}", self.kind(), detail.message),
        }
    }
}

impl Event {
    /// The `href` of the link for `client` (`fhir`, `rest`, ...), if the
    /// event carries one.
    pub fn link(&self, client: &str) -> Option<&str> {
        self.links
            .iter()
            .find(|link| link.client == client)
            .map(|link| link.href.as_str())
    }
}

impl PluginInfo {
    /// Builds the description of a plugin from its package metadata.
    pub fn new(name: &str, version: &str, description: &str) -> PluginInfo {
        PluginInfo {
            name: name.to_string(),
            version: version.to_string(),
            description: description.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_failure_the_host_retries_on() {
        assert!(matches!(
            Failure::from_status(404, ""),
            Failure::NotFound(_)
        ));
        assert!(matches!(Failure::from_status(410, ""), Failure::Gone(_)));
        assert!(matches!(
            Failure::from_status(412, ""),
            Failure::Conflict(_)
        ));
        assert!(matches!(
            Failure::from_status(409, ""),
            Failure::Conflict(_)
        ));
        assert!(matches!(
            Failure::from_status(403, ""),
            Failure::Unauthorized(_)
        ));
        assert!(matches!(Failure::from_status(422, ""), Failure::Invalid(_)));
        assert!(matches!(
            Failure::from_status(503, ""),
            Failure::Transient(_)
        ));
        assert!(matches!(Failure::from_status(302, ""), Failure::Invalid(_)));
    }

    #[test]
    fn display_names_kind_status_and_message() {
        let failure = Failure::from_status(412, "version 3 expected");
        assert_eq!(
            failure.to_string(),
            "conflict (HTTP 412): version 3 expected"
        );
    }
}

//! Pure decision logic of a write: given the current version and a request, decide what the new
//! version is (or that nothing happens). No I/O, so it is unit-tested directly.

use time::OffsetDateTime;
use time::macros::format_description;

use std::sync::Arc;

use super::types::{
    Action, Kind, Placement, Precondition, ResourceKey, StoreError, VersionRecord, WriteOutcome,
    WriteRequest,
};
use crate::scope::{Classification, Classify, DataScope};
use crate::{hash, json};

/// What the store must do for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing to write; answer with this outcome.
    Nothing(WriteOutcome),
    /// Make this record the current version and log it.
    NewVersion(VersionRecord),
}

/// Facts a decision needs that do not come from the request.
pub(crate) struct Context<'a> {
    /// Origin when the request names none.
    pub node_id: &'a str,
    /// Commit time, already truncated to milliseconds.
    pub now: OffsetDateTime,
    /// Sequence the change gets if one is logged.
    pub sequence: u64,
    /// Where a new body belongs: its classification with its owner's keys added.
    pub placement: Placement,
}

/// Truncates a time to the millisecond precision the store keeps.
pub fn truncate_to_millis(at: OffsetDateTime) -> OffsetDateTime {
    let millis = at.nanosecond() / 1_000_000 * 1_000_000;
    at.replace_nanosecond(millis).unwrap_or(at)
}

/// Formats an instant as FHIR `meta.lastUpdated` does: UTC, milliseconds, `Z`.
pub fn format_instant(at: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let utc = at.to_offset(time::UtcOffset::UTC);
    // Formatting a valid date with a fixed, valid description only fails on years > 9999.
    utc.format(format).unwrap_or_else(|_| utc.to_string())
}

/// A request checked and digested before it is queued: key validated, body parsed and hashed,
/// so the committer does no JSON work beyond filling in the server meta.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub key: ResourceKey,
    pub precondition: Precondition,
    pub origin: Option<String>,
    /// `None` deletes.
    pub body: Option<PreparedBody>,
    /// The data scope of the client writing, when it has one: both the current version and
    /// the one written must lie inside it.
    pub within: Option<Arc<DataScope>>,
}

/// A new body and what the decision needs to know about it.
#[derive(Debug, Clone)]
pub(crate) struct PreparedBody {
    text: String,
    content_hash: String,
    /// Where server meta goes (FHIR only).
    meta: Option<json::ServerMetaSplice>,
    voided: bool,
    retired: bool,
    /// `meta.lastUpdated` as the body carries it: the edit time at the origin for a FHIR
    /// version relayed from another node.
    stamped_at: Option<OffsetDateTime>,
    /// What the body itself says about where it belongs.
    pub classification: Classification,
    /// Keys its source supplied with it (see `hash_memo`); none for most writes.
    pub supplied: Vec<String>,
}

/// The `meta.lastUpdated` of a FHIR body, if it has a readable one.
fn stamped_at(text: &str) -> Option<OffsetDateTime> {
    let stamp = json::meta_last_updated(text).ok().flatten()?;
    OffsetDateTime::parse(&stamp, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(truncate_to_millis)
}

/// How requests are prepared: by whom, and with what the store knows already.
#[derive(Clone, Copy)]
pub(crate) struct Preparing<'a> {
    pub classifier: &'a dyn Classify,
    pub within: Option<&'a Arc<DataScope>>,
}

/// Checks and digests a request; errors name the resource.
#[cfg(test)]
pub(crate) fn prepare(request: WriteRequest) -> Result<Prepared, StoreError> {
    let classifier = crate::scope::Classifier::standard();
    let preparing = Preparing {
        classifier: &classifier,
        within: None,
    };
    prepare_with(request, None, preparing)
}

/// Checks and digests a request, with the body's content hash when it is already known (a
/// snapshot carries it, checked by the snapshot's checksum), so the body is not hashed
/// again.
pub(crate) fn prepare_with(
    request: WriteRequest,
    known_hash: Option<String>,
    preparing: Preparing<'_>,
) -> Result<Prepared, StoreError> {
    super::codec::validate_key(&request.key)?;
    let key = request.key;
    let body = match request.body {
        None => None,
        Some(text) => {
            let invalid = |error: json::JsonError| StoreError::invalid_json(&key, &error);
            // Every stored document is an object: FHIR resources and REST representations are.
            let fields = json::top_level_fields(&text).map_err(invalid)?;
            let flag = |name: &str| {
                fields
                    .iter()
                    .any(|(field, value)| field == name && value.get() == "true")
            };
            let (voided, retired) = (flag("voided"), flag("retired"));
            let classification = preparing.classifier.classify_fields(&key, &text, &fields);
            drop(fields);
            let content_hash = match known_hash {
                Some(hash) => hash,
                None => hash::content_hash(&text).map_err(invalid)?,
            };
            let meta = match key.kind {
                Kind::Fhir => Some(json::prepare_server_meta(&text).map_err(invalid)?),
                Kind::Rest => None,
            };
            let relayed_fhir = request.origin.is_some() && key.kind == Kind::Fhir;
            let stamped_at = if relayed_fhir {
                stamped_at(&text)
            } else {
                None
            };
            Some(PreparedBody {
                text,
                content_hash,
                meta,
                voided,
                retired,
                stamped_at,
                classification,
                supplied: Vec::new(),
            })
        }
    };
    Ok(Prepared {
        key,
        precondition: request.precondition,
        origin: request.origin,
        body,
        within: preparing.within.cloned(),
    })
}

/// Decides the effect of `request` on a resource whose current version is `current`.
pub(crate) fn decide(
    request: &Prepared,
    current: Option<&VersionRecord>,
    context: &Context<'_>,
) -> Result<Decision, StoreError> {
    check_scope(request, current, context)?;
    check_precondition(request, current)?;
    let live = current.filter(|record| !record.deleted);
    Ok(match &request.body {
        None => match live {
            None => Decision::Nothing(WriteOutcome::AlreadyGone),
            Some(old) => Decision::NewVersion(tombstone(request, old, context)),
        },
        Some(body) => decide_content(request, body, current, live, context),
    })
}

/// Refuses a scoped client's write to a resource whose current version, or whose new one,
/// lies outside its scope. Checked before the precondition, so a refused write says nothing
/// about the version an out-of-scope resource is at.
fn check_scope(
    request: &Prepared,
    current: Option<&VersionRecord>,
    context: &Context<'_>,
) -> Result<(), StoreError> {
    let Some(scope) = &request.within else {
        return Ok(());
    };
    let current_outside = current.is_some_and(|record| !scope.admits(&record.placement));
    let new_outside = request.body.is_some() && !scope.admits(&context.placement);
    if current_outside || new_outside {
        return Err(StoreError::OutOfScope(request.key.clone()));
    }
    Ok(())
}

/// Refuses the write when the current state is not what the request requires.
fn check_precondition(
    request: &Prepared,
    current: Option<&VersionRecord>,
) -> Result<(), StoreError> {
    match request.precondition {
        Precondition::Any => Ok(()),
        Precondition::Version(expected) => {
            let actual = current.map(|record| record.version_id);
            if actual == Some(expected) {
                Ok(())
            } else {
                Err(StoreError::VersionMismatch {
                    key: request.key.to_string(),
                    expected,
                    current: actual,
                })
            }
        }
        Precondition::Absent => match current.filter(|record| !record.deleted) {
            None => Ok(()),
            Some(live) => Err(StoreError::AlreadyExists {
                key: request.key.to_string(),
                current: live.version_id,
            }),
        },
    }
}

fn tombstone(request: &Prepared, old: &VersionRecord, context: &Context<'_>) -> VersionRecord {
    VersionRecord {
        key: request.key.clone(),
        version_id: old.version_id + 1,
        last_updated: context.now,
        deleted: true,
        body: None,
        content_hash: String::new(),
        origin: origin(request, context),
        sequence: context.sequence,
        action: Action::Deleted,
        // A delete belongs where the resource did, so it reaches the readers that saw it.
        placement: old.placement.clone(),
    }
}

fn origin(request: &Prepared, context: &Context<'_>) -> String {
    request
        .origin
        .clone()
        .unwrap_or_else(|| context.node_id.to_owned())
}

fn decide_content(
    request: &Prepared,
    body: &PreparedBody,
    current: Option<&VersionRecord>,
    live: Option<&VersionRecord>,
    context: &Context<'_>,
) -> Decision {
    if let Some(old) = live
        && old.content_hash == body.content_hash
    {
        return Decision::Nothing(WriteOutcome::Unchanged(old.clone()));
    }
    let version_id = current.map_or(1, |record| record.version_id + 1);
    let action = match (live, request.key.kind) {
        (None, _) => Action::Created,
        (Some(old), Kind::Rest) => flag_action(old.body.as_deref(), body),
        (Some(_), Kind::Fhir) => Action::Updated,
    };
    // A version relayed from another node keeps the time it was edited at its origin, so that
    // newest-wins compares edit times rather than the times the hops happened to store it.
    let relayed = request
        .origin
        .as_deref()
        .is_some_and(|origin| origin != context.node_id);
    let last_updated = body.stamped_at.filter(|_| relayed).unwrap_or(context.now);
    let stored = match &body.meta {
        Some(splice) => splice.apply(
            &body.text,
            &version_id.to_string(),
            &format_instant(last_updated),
        ),
        None => body.text.clone(),
    };
    Decision::NewVersion(VersionRecord {
        key: request.key.clone(),
        version_id,
        last_updated,
        deleted: false,
        body: Some(stored),
        content_hash: body.content_hash.clone(),
        origin: origin(request, context),
        sequence: context.sequence,
        action,
        placement: context.placement.clone(),
    })
}

/// The action of a REST update: a `voided` or `retired` flag that flips is what the feed must
/// say, so that un-voids propagate too. `voided` wins when both flip.
fn flag_action(old: Option<&str>, new: &PreparedBody) -> Action {
    // The old body was validated when it was written; an unreadable flag counts as unset.
    let was = |flag: &str| {
        old.and_then(|body| json::bool_field(body, flag).ok().flatten())
            .unwrap_or(false)
    };
    let flags = [
        (was("voided"), new.voided, Action::Voided, Action::Unvoided),
        (
            was("retired"),
            new.retired,
            Action::Retired,
            Action::Unretired,
        ),
    ];
    for (before, after, set, cleared) in flags {
        match (before, after) {
            (false, true) => return set,
            (true, false) => return cleared,
            _ => {}
        }
    }
    Action::Updated
}

/// The outcome reported for a new version.
pub(crate) fn outcome_of(record: &VersionRecord) -> WriteOutcome {
    match record.action {
        Action::Created => WriteOutcome::Created(record.clone()),
        Action::Deleted => WriteOutcome::Deleted(record.clone()),
        _ => WriteOutcome::Updated(record.clone()),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

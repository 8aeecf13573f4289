//! Turning feed entries into plugin events, and the per-event context every later stage needs:
//! the resource key, the audit template, the conversions between the contract's types and the
//! engine's own.

use sync_host_feed::{FeedEntryView, ParsedEntry};
use sync_host_runtime::{Event, Link};

use crate::audit::{AuditRecord, Outcome, Timestamp, excerpt};
use crate::state::{BaseKey, FailureKey};
use crate::sync::conflict::Direction;

/// A feed entry that cannot become an event, with the raw text kept for the audit.
#[derive(Debug, Clone)]
pub struct MalformedEntry {
    /// The entry id when one could be read.
    pub id: Option<String>,
    /// What is wrong with it.
    pub reason: String,
    /// The entry as it appeared in the feed.
    pub raw: String,
}

/// A feed page's entries sorted by what becomes of them, each list in feed order.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Changes to sync.
    pub events: Vec<Event>,
    /// Resources that left this node's data scope at the publisher.
    pub left_scope: Vec<Event>,
    /// Entries that cannot become events.
    pub malformed: Vec<MalformedEntry>,
}

/// Sorts parsed entries into events, resources that left the scope and malformed entries.
/// The raw text each keeps is bounded ([`excerpt::bounded`]): it ends up in the audit and the
/// retry queue.
pub fn decode_entries(entries: Vec<ParsedEntry>) -> Decoded {
    let mut events = Vec::with_capacity(entries.len());
    let mut left_scope = Vec::new();
    let mut malformed = Vec::new();
    for entry in entries {
        let raw = excerpt::bounded(&entry.raw);
        match entry.result {
            Ok(view) if view.entry.ext.left_scope => left_scope.push(event_from_view(view, raw)),
            Ok(view) => events.push(event_from_view(view, raw)),
            Err(e) => malformed.push(MalformedEntry {
                id: entry.id.map(|id| excerpt::bounded(&id)),
                reason: excerpt::bounded(&e.to_string()),
                raw,
            }),
        }
    }
    Decoded {
        events,
        left_scope,
        malformed,
    }
}

/// The plugin-contract event for one readable feed entry.
pub fn event_from_view(view: FeedEntryView, raw: String) -> Event {
    let entry = view.entry;
    Event {
        id: entry.id,
        sequence: entry.ext.sequence,
        category: entry.category.to_ascii_lowercase(),
        action: view.action,
        resource_type: view.resource_type,
        resource_id: view.resource_id,
        links: entry
            .links
            .into_iter()
            .map(|l| Link {
                client: l.client,
                href: l.href,
            })
            .collect(),
        tags: entry.tags,
        origin: entry.ext.origin,
        version: entry.ext.version,
        content_hash: entry.ext.content_hash,
        raw,
    }
}

/// The location paths of the event's OpenMRS feed-filter tags: keys its source placed it at,
/// which its body does not carry.
pub fn supplied_keys(event: &Event) -> Vec<String> {
    event
        .tags
        .iter()
        .filter_map(|tag| sync_host_store::scope::location_path(tag))
        .map(str::to_owned)
        .collect()
}

/// The key of the resource an event points to, for sync bases.
pub fn base_key(event: &Event) -> BaseKey {
    BaseKey {
        resource_type: event.resource_type.clone(),
        resource_id: event.resource_id.clone(),
    }
}

/// The key of the resource's pending failure in `direction`.
pub fn failure_key(direction: Direction, event: &Event) -> FailureKey {
    FailureKey {
        direction,
        resource_type: event.resource_type.clone(),
        resource_id: event.resource_id.clone(),
    }
}

/// An audit record for `event` with everything but the outcome filled in.
pub fn audit_template(node: &str, direction: Direction, event: &Event) -> AuditRecord {
    AuditRecord {
        time: Timestamp::now(),
        node: node.to_string(),
        direction,
        action: event.action.name().to_string(),
        category: event.category.clone(),
        resource_type: event.resource_type.clone(),
        resource_id: event.resource_id.clone(),
        event_id: Some(event.id.clone()),
        source_url: None,
        target_url: None,
        plugin: None,
        outcome: Outcome::Applied,
        duration_ms: 0,
    }
}

/// The event as it is shown to a client reading the *target's* copy of the resource. Feed
/// links address the publisher (the source), so they are dropped: with them a client would
/// read the source again (an absolute link) or a path that only exists there (an OpenMRS
/// context path such as `/openmrs/ws/rest/v1/...`), find nothing at the target, and overwrite
/// a local edit without seeing the conflict. Without links, the client reads the resource at
/// the target's own address for its type and id, where it also writes it.
pub fn for_target(event: &Event) -> Event {
    Event {
        links: Vec::new(),
        ..event.clone()
    }
}

/// Keeps only the last event per resource, in the order of those last events: the engine
/// fetches full state, so earlier events of the same resource in a page add nothing.
pub fn dedupe_by_resource(events: Vec<Event>) -> (Vec<Event>, Vec<Event>) {
    let mut last_index = std::collections::HashMap::new();
    for (i, event) in events.iter().enumerate() {
        last_index.insert((event.resource_type.clone(), event.resource_id.clone()), i);
    }
    let mut kept = Vec::with_capacity(last_index.len());
    let mut superseded = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        let key = (event.resource_type.clone(), event.resource_id.clone());
        if last_index.get(&key) == Some(&i) {
            kept.push(event);
        } else {
            superseded.push(event);
        }
    }
    (kept, superseded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_host_runtime::Action;

    fn event(id: &str, resource: &str) -> Event {
        Event {
            id: id.into(),
            sequence: None,
            category: "patient".into(),
            action: Action::Updated,
            resource_type: "Patient".into(),
            resource_id: resource.into(),
            links: vec![],
            tags: vec![],
            origin: None,
            version: None,
            content_hash: None,
            raw: String::new(),
        }
    }

    #[test]
    fn target_reads_do_not_follow_the_source_links() {
        let mut source_event = event("1", "a");
        source_event.links.push(Link {
            client: "rest".into(),
            href: "/openmrs/ws/rest/v1/patient/a?v=full".into(),
        });
        let at_target = for_target(&source_event);
        assert!(at_target.links.is_empty());
        assert_eq!(at_target.resource_id, "a");
        assert_eq!(at_target.id, source_event.id);
    }

    #[test]
    fn duplicates_in_a_page_are_handled_once_at_their_last_position() {
        let events = vec![event("1", "a"), event("2", "b"), event("3", "a")];
        let (kept, superseded) = dedupe_by_resource(events);
        let ids: Vec<_> = kept.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["2", "3"]);
        assert_eq!(superseded.len(), 1);
        assert_eq!(superseded[0].id, "1");
    }
}

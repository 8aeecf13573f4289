//! Source copies fetched ahead of their page: while one page is decided, stored and committed,
//! the next page's resources are already fetched from the source, so the two halves of the
//! work (the source answering, this node deciding and writing) overlap instead of taking
//! turns.
//!
//! A copy fetched ahead is the source's state at that moment, exactly what a fetch made then
//! would have returned; the page that uses it still decides everything (known content,
//! supersession, conflicts) against the state its predecessor committed. One thing a fetch in
//! turn would see and a copy fetched ahead may not: a write this node made to the source
//! meanwhile (the predecessor's write-back, the other direction's store, an operator's
//! resolution). Every such write changes the resource's sync base or write intents, so a
//! copy is used only while both are as they were when it was fetched; otherwise the page
//! fetches the resource again. Only plain answers are kept: a resource and a deletion. A
//! failed fetch is fetched again in its turn, so a failure is always the page's own attempt.

use std::collections::HashMap;

use sync_host_runtime::{Event, Failure, Resource};

use crate::state::{StateError, SyncState};
use crate::sync::conflict::{Direction, SyncBase};
use crate::sync::event::{base_key, failure_key};

/// One resource as a route's client fetches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CopyKey {
    client: String,
    resource_type: String,
    resource_id: String,
}

impl CopyKey {
    fn new(client: &str, event: &Event) -> Self {
        Self {
            client: client.to_string(),
            resource_type: event.resource_type.clone(),
            resource_id: event.resource_id.clone(),
        }
    }
}

/// What this node had recorded of a resource when its copy was fetched: its sync base and
/// the write intents of both directions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    base: Option<SyncBase>,
    intents: [Vec<String>; 2],
}

impl Stamp {
    /// The resource of `event` as `state` records it now. Read before the fetch it stamps.
    pub fn read(state: &SyncState, event: &Event) -> Result<Self, StateError> {
        Ok(Self {
            base: state.base(&base_key(event))?,
            intents: [
                state.intents(&failure_key(Direction::Pull, event))?,
                state.intents(&failure_key(Direction::Push, event))?,
            ],
        })
    }
}

/// What one fetch answered for one resource.
pub type Answer = Result<Resource, Failure>;

/// Copies fetched ahead for one page, by client and resource.
#[derive(Debug, Default)]
pub struct Prefetched {
    copies: HashMap<CopyKey, (Stamp, Answer)>,
}

impl Prefetched {
    /// Keeps the answers of one batched fetch by `client` for `events`, each with the stamp
    /// read before the fetch (both in the order of `events`). Failures other than a deletion
    /// are dropped: the page fetches those itself.
    pub fn keep(
        &mut self,
        client: &str,
        events: &[Event],
        stamps: Vec<Stamp>,
        answers: Vec<Answer>,
    ) {
        for ((event, stamp), answer) in events.iter().zip(stamps).zip(answers) {
            if matches!(answer, Ok(_) | Err(Failure::Gone(_))) {
                let key = CopyKey::new(client, event);
                self.copies.insert(key, (stamp, answer));
            }
        }
    }

    /// Takes the copies of `events` fetched ahead by `client` that `state` still stamps as it
    /// did then: one slot per event, `None` where the page must fetch for itself.
    pub fn take_for(
        &mut self,
        client: &str,
        events: &[Event],
        state: &SyncState,
    ) -> Result<Vec<Option<Answer>>, StateError> {
        let mut slots = Vec::with_capacity(events.len());
        for event in events {
            let copy = match self.copies.remove(&CopyKey::new(client, event)) {
                Some((stamp, answer)) if stamp == Stamp::read(state, event)? => Some(answer),
                _ => None,
            };
            slots.push(copy);
        }
        Ok(slots)
    }

    /// How many copies are held.
    pub fn len(&self) -> usize {
        self.copies.len()
    }

    /// Whether no copy is held.
    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_host_runtime::{Action, FailureDetail};

    fn event(id: &str) -> Event {
        Event {
            id: format!("urn:uuid:{id}"),
            sequence: None,
            category: "patient".into(),
            action: Action::Updated,
            resource_type: "Patient".into(),
            resource_id: id.into(),
            links: Vec::new(),
            tags: Vec::new(),
            origin: None,
            version: None,
            content_hash: None,
            raw: String::new(),
        }
    }

    fn detail() -> FailureDetail {
        FailureDetail {
            status: None,
            message: String::new(),
        }
    }

    fn resource(id: &str) -> Resource {
        Resource {
            resource_type: "Patient".into(),
            id: id.into(),
            version: Some("1".into()),
            body: "{}".into(),
            deleted: false,
        }
    }

    fn state() -> SyncState {
        let db = sled::Config::new().temporary(true).open().unwrap();
        SyncState::open(&db).unwrap()
    }

    fn stamps(state: &SyncState, events: &[Event]) -> Vec<Stamp> {
        events
            .iter()
            .map(|e| Stamp::read(state, e).unwrap())
            .collect()
    }

    #[test]
    fn keeps_resources_and_deletions_and_hands_each_out_once() {
        let state = state();
        let events = [event("a"), event("b"), event("c")];
        let mut ahead = Prefetched::default();
        let answers = vec![
            Ok(resource("a")),
            Err(Failure::Gone(detail())),
            Err(Failure::Transient(detail())),
        ];
        ahead.keep("fhir", &events, stamps(&state, &events), answers);
        assert_eq!(
            ahead.len(),
            2,
            "a transient failure is fetched again in its turn"
        );
        let slots = ahead.take_for("fhir", &events, &state).unwrap();
        assert_eq!(slots[0], Some(Ok(resource("a"))));
        assert!(matches!(slots[1], Some(Err(Failure::Gone(_)))));
        assert_eq!(slots[2], None);
        assert!(ahead.is_empty());
        assert_eq!(
            ahead.take_for("fhir", &events[..1], &state).unwrap(),
            vec![None]
        );
    }

    #[test]
    fn a_copy_belongs_to_the_client_that_fetched_it() {
        let state = state();
        let events = [event("a")];
        let mut ahead = Prefetched::default();
        ahead.keep(
            "fhir",
            &events,
            stamps(&state, &events),
            vec![Ok(resource("a"))],
        );
        assert_eq!(ahead.take_for("rest", &events, &state).unwrap(), vec![None]);
        assert_eq!(ahead.len(), 1);
    }

    #[tokio::test]
    async fn a_copy_is_dropped_once_this_node_meant_to_write_the_resource() {
        let state = state();
        let events = [event("a"), event("b")];
        let mut ahead = Prefetched::default();
        let answers = vec![Ok(resource("a")), Ok(resource("b"))];
        ahead.keep("fhir", &events, stamps(&state, &events), answers);
        // The other direction is about to write `a` to this page's source: the copy of `a`
        // may predate that write.
        let key = failure_key(Direction::Push, &events[0]);
        state
            .record_intents(&[(key, "h".into())], &[])
            .await
            .unwrap();
        let slots = ahead.take_for("fhir", &events, &state).unwrap();
        assert_eq!(slots, vec![None, Some(Ok(resource("b")))]);
    }
}

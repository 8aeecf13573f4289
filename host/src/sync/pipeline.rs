//! The sync pipeline for one batch of feed entries, as one straight line per direction:
//! decode, skip echoes and known content, drop superseded events, filter, group by route,
//! then per route fetch, check, decide conflicts and store; the caller commits the result
//! together with the marker.

use sync_host_feed::ParsedEntry;
use sync_host_runtime::{Action, Event, Failure, FailureDetail, PluginError, Verdict};

use crate::audit::SkipReason;
use crate::config::LeaveScope;
use crate::state::{BatchCommit, StateError};
use crate::sync::apply::run_group;
use crate::sync::conflict::{Direction, SyncBase, incoming_side};
use crate::sync::event::MalformedEntry;
use crate::sync::event::{base_key, decode_entries, dedupe_by_resource};
use crate::sync::link::Link;
use crate::sync::outcome::BatchBuilder;
use crate::sync::prefetch::{Prefetched, Stamp};
use crate::sync::retry::FailureKind;
use crate::sync::routes::group_by_route;

/// A feed page decoded once: its events in feed order, the resources that left this node's
/// data scope, and the entries that could not be read.
#[derive(Debug, Default)]
pub struct DecodedPage {
    pub events: Vec<Event>,
    pub left_scope: Vec<Event>,
    pub malformed: Vec<MalformedEntry>,
}

impl DecodedPage {
    /// Decodes `entries` (one feed page, oldest first).
    pub fn new(entries: Vec<ParsedEntry>) -> Self {
        let decoded = decode_entries(entries);
        let (events, left_scope) = before_leaving(decoded.events, decoded.left_scope);
        Self {
            events,
            left_scope,
            malformed: decoded.malformed,
        }
    }
}

/// Moves the changes of a resource that come before its leaving the scope, on the same page,
/// to the resources that left: they can no longer be fetched (the parent answers for the
/// resource as for one that does not exist), and they are audited with the leaving.
fn before_leaving(events: Vec<Event>, mut left: Vec<Event>) -> (Vec<Event>, Vec<Event>) {
    if left.is_empty() {
        return (events, left);
    }
    let left_at = |event: &Event| {
        left.iter()
            .filter(|leaving| base_key(leaving) == base_key(event))
            .filter_map(|leaving| leaving.sequence)
            .max()
    };
    let (earlier, events): (Vec<Event>, Vec<Event>) =
        events
            .into_iter()
            .partition(|event| match (left_at(event), event.sequence) {
                (Some(leaving), Some(at)) => at < leaving,
                _ => false,
            });
    left.extend(earlier);
    (events, left)
}

impl Link {
    /// Processes one decoded feed page and returns what must be committed; `ahead` holds the
    /// source copies fetched for it while its predecessor was processed.
    pub async fn process_page(
        &self,
        page: DecodedPage,
        ahead: Prefetched,
    ) -> Result<BatchCommit, StateError> {
        let mut out = BatchBuilder::new(&self.node_id, self.direction, &self.state, self.retry);
        for entry in &page.malformed {
            out.malformed(entry)?;
        }
        match self.leave_scope {
            // The copy stays as it is: nothing a clinician recorded is taken away, and the
            // parent sends no further changes of it.
            LeaveScope::Keep => {
                // One base update per resource: a second one would name a base the first
                // already replaced.
                let mut marked = std::collections::HashSet::new();
                for event in &page.left_scope {
                    let key = base_key(event);
                    let base = match marked.insert(key.clone()) {
                        true => self.state.base(&key)?,
                        false => None,
                    };
                    out.left_scope(event, base);
                }
            }
            LeaveScope::Remove => self.remove_left(page.left_scope, &mut out).await?,
        }
        self.process_events(page.events, ahead, &mut out).await?;
        out.release_held_edits()?;
        Ok(out.finish())
    }

    /// Fetches from the source, ahead of its turn, what `page` will most likely need: its
    /// events less echoes, content already known by the bases committed so far, superseded
    /// entries and events the filters reject. Nothing is recorded and nothing decided; a copy
    /// the page turns out not to need is dropped, and one it lacks is fetched in its turn.
    pub async fn fetch_ahead(&self, page: &DecodedPage) -> Prefetched {
        let mut events = Vec::with_capacity(page.events.len());
        for event in &page.events {
            let event = self.routes.for_client(event.clone());
            if !self.is_echo(&event) && !self.is_known(&event).unwrap_or(false) {
                events.push(event);
            }
        }
        let (events, _) = dedupe_by_resource(events);
        // None pass when a filter fails: the page meets the failure in its turn and records it.
        let events = self.filtered(events).await.accepted;
        let (groups, _) = group_by_route(&self.routes, events);
        let fetches = groups.into_iter().filter_map(|group| {
            // Read before the fetch: a write this node makes from here on moves the stamp.
            let stamps = group
                .events
                .iter()
                .map(|event| Stamp::read(&self.state, event))
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            Some(async move {
                let answers = group.route.client.fetch(&self.source, &group.events).await;
                (group, stamps, answers)
            })
        });
        let fetches: Vec<_> = fetches.collect();
        let mut ahead = Prefetched::default();
        for (group, stamps, answers) in futures::future::join_all(fetches).await {
            if let Ok(answers) = answers {
                ahead.keep(&group.route.client_name, &group.events, stamps, answers);
            }
        }
        ahead
    }

    /// Removes the copies of resources that left this node's scope, as deletes pulled from
    /// the parent: through the same line as every other change, so a copy edited here since
    /// the last sync meets the removal as a conflict instead of being lost.
    async fn remove_left(
        &self,
        left: Vec<Event>,
        out: &mut BatchBuilder<'_>,
    ) -> Result<(), StateError> {
        let removals: Vec<Event> = left
            .into_iter()
            .map(|mut event| {
                event.action = Action::Deleted;
                event.version = None;
                event.content_hash = None;
                event
            })
            .collect();
        let (removals, repeated) = dedupe_by_resource(removals);
        for event in &repeated {
            out.skipped(event, SkipReason::LeftScope);
        }
        // The parent answers for the resource as for one that does not exist: its state, for
        // this node, is gone.
        let mut gone = Prefetched::default();
        let routed: Vec<Event> = removals
            .iter()
            .cloned()
            .map(|event| self.routes.for_client(event))
            .collect();
        let (groups, _) = group_by_route(&self.routes, routed);
        for group in groups {
            let stamps = group
                .events
                .iter()
                .map(|event| Stamp::read(&self.state, event))
                .collect::<Result<Vec<_>, _>>()?;
            let answers = group
                .events
                .iter()
                .map(|_| {
                    Err(Failure::Gone(FailureDetail {
                        status: None,
                        message: "the resource left this node's data scope".into(),
                    }))
                })
                .collect();
            gone.keep(&group.route.client_name, &group.events, stamps, answers);
        }
        self.process_events(removals, gone, out).await
    }

    /// Runs already-decoded events (from a feed page or the retry queue) through the line.
    pub async fn process_events(
        &self,
        events: Vec<Event>,
        mut ahead: Prefetched,
        out: &mut BatchBuilder<'_>,
    ) -> Result<(), StateError> {
        let events = events
            .into_iter()
            .map(|e| self.routes.for_client(e))
            .collect();
        let events = self.skip_known(events, out)?;
        let (events, superseded) = dedupe_by_resource(events);
        for event in &superseded {
            out.skipped(event, SkipReason::AlreadyPresent);
        }
        let events = self.run_filters(events, out).await?;
        let (groups, unrouted) = group_by_route(&self.routes, events);
        for event in &unrouted {
            let message = format!(
                "no resource client is routed for type `{}` / category `{}`",
                event.resource_type, event.category
            );
            out.failed_with(
                event,
                &Default::default(),
                FailureKind::Invalid,
                None,
                &message,
            )?;
        }
        // Route groups are independent (different clients, different resources), so they run
        // concurrently: their store writes then share the target's group commits instead of
        // waiting for one flush per group.
        let runs: Vec<_> = groups
            .into_iter()
            .map(|group| {
                let copies = ahead.take_for(&group.route.client_name, &group.events, &self.state);
                async move {
                    let mut part =
                        BatchBuilder::new(&self.node_id, self.direction, &self.state, self.retry);
                    run_group(self, group, copies?, &mut part)
                        .await
                        .map(|()| part.finish())
                }
            })
            .collect();
        for part in futures::future::join_all(runs).await {
            out.absorb(part?);
        }
        Ok(())
    }

    /// A change that came from the node it would go to.
    fn is_echo(&self, event: &Event) -> bool {
        let echo_origin = match self.direction {
            Direction::Pull => &self.node_id,
            Direction::Push => &self.parent_node,
        };
        event.origin.as_deref() == Some(echo_origin.as_str())
    }

    /// Whether both sides held the event's content at the last sync.
    fn is_known(&self, event: &Event) -> Result<bool, StateError> {
        if event.content_hash.is_none() {
            return Ok(false);
        }
        let base = self.state.base(&base_key(event))?;
        Ok(self.holds(event, base.as_ref()))
    }

    /// Whether `base` already holds the state `event` announces.
    fn holds(&self, event: &Event, base: Option<&SyncBase>) -> bool {
        let Some(hash) = &event.content_hash else {
            return false;
        };
        let side = incoming_side(self.direction);
        base.is_some_and(|b| b.holds(side, hash, event.version.as_deref()))
    }

    /// Echoes (changes that came from the node they would go to) and events whose content
    /// hash equals what both sides agreed on at the last sync need no fetch at all.
    fn skip_known(
        &self,
        events: Vec<Event>,
        out: &mut BatchBuilder<'_>,
    ) -> Result<Vec<Event>, StateError> {
        let mut kept = Vec::with_capacity(events.len());
        // One base update per resource: a second would name a base the first replaced.
        let mut unmarked = std::collections::HashSet::new();
        for event in events {
            if self.is_echo(&event) {
                out.skipped(&event, SkipReason::Echo);
                continue;
            }
            // Read only when it can decide something: an event without a hash is never known.
            let base = match event.content_hash.is_some() || self.direction == Direction::Push {
                true => self.state.base(&base_key(&event))?,
                false => None,
            };
            let held_back = base.as_ref().is_some_and(|base| base.left_scope);
            if held_back && self.direction == Direction::Push {
                out.held_back(&event)?;
            } else if self.holds(&event, base.as_ref()) {
                // Both sides hold this content: an earlier failure of the resource (a
                // replayed retry of this very event, say) has nothing left to do. A resource
                // back in this node's scope may be pushed again.
                out.known(&event);
                if let Some(base) = base.filter(|_| held_back)
                    && unmarked.insert(base_key(&event))
                {
                    out.back_in_scope(&event, base);
                }
            } else {
                kept.push(event);
            }
        }
        Ok(kept)
    }

    /// Runs every filter in order; an event rejected by one is not shown to the next.
    async fn run_filters(
        &self,
        events: Vec<Event>,
        out: &mut BatchBuilder<'_>,
    ) -> Result<Vec<Event>, StateError> {
        let outcome = self.filtered(events).await;
        for (event, by, reason) in &outcome.rejected {
            out.filtered(event, by, reason);
        }
        if let Some((shown, e)) = outcome.failed {
            let message = format!("event filter failed: {e}");
            for event in &shown {
                let no_context = &Default::default();
                out.failed_with(event, no_context, FailureKind::Plugin, None, &message)?;
            }
        }
        Ok(outcome.accepted)
    }

    /// Shows `events` to every filter in order; an event rejected by one is not shown to the
    /// next, and a filter that fails stops the line with the events it was shown (and none
    /// accepted).
    async fn filtered(&self, mut events: Vec<Event>) -> Filtered {
        let mut rejected = Vec::new();
        for filter in &self.filters {
            if events.is_empty() {
                break;
            }
            let verdicts = match filter.accept(self.direction, &events).await {
                Ok(verdicts) => verdicts,
                Err(e) => {
                    return Filtered {
                        accepted: Vec::new(),
                        rejected,
                        failed: Some((events, e)),
                    };
                }
            };
            let name = &filter.info().name;
            let mut kept = Vec::with_capacity(events.len());
            for (event, verdict) in events.into_iter().zip(verdicts) {
                match verdict {
                    Verdict::Accept => kept.push(event),
                    Verdict::Reject(reason) => rejected.push((event, name.clone(), reason)),
                }
            }
            events = kept;
        }
        Filtered {
            accepted: events,
            rejected,
            failed: None,
        }
    }
}

/// What the event filters made of a batch of events.
struct Filtered {
    accepted: Vec<Event>,
    /// Each rejected event with the filter's name and its reason.
    rejected: Vec<(Event, String, String)>,
    /// A filter that failed, with the events it was shown.
    failed: Option<(Vec<Event>, PluginError)>,
}

//! Collects what a batch did, event by event, into the one [`BatchCommit`] that makes it
//! durable: audit records, new sync bases, retry-queue changes, conflicts and settlements.

use sync_host_runtime::{Event, Failure, FailureDetail, PluginInfo};

use crate::audit::{Outcome, PluginRef, SkipReason, Timestamp};
use crate::state::{
    BaseUpdate, BatchCommit, ConflictRecord, LastFailure, RetryEntry, RetryUpdate, StateError,
    SyncState,
};
use crate::sync::conflict::{Direction, SyncBase};
use crate::sync::event::{MalformedEntry, audit_template, base_key, failure_key};
use crate::sync::retry::{FailureKind, RetryDecision, RetryPolicy};

#[path = "outcome_held.rs"]
mod held;

/// The base a settled conflict leaves for its resource.
#[derive(Debug, Clone)]
pub enum NewBase {
    /// The winner was written where it was missing: both sides hold it.
    Agreed(SyncBase),
    /// The winner stays on one side only (a pull-only node, a refused write-back, an operator
    /// on a node that does not push); the base makes the next sync see only that side changed.
    OneSided(SyncBase),
}

/// The accumulating result of one batch.
pub struct BatchBuilder<'a> {
    node: &'a str,
    direction: Direction,
    state: &'a SyncState,
    retry: RetryPolicy,
    started: std::time::Instant,
    commit: BatchCommit,
}

/// Where the resource came from and went to, for the audit.
#[derive(Debug, Clone, Default)]
pub struct AuditContext {
    pub source_url: Option<String>,
    pub target_url: Option<String>,
    pub plugin: Option<PluginRef>,
}

impl AuditContext {
    /// Names `plugin` in the audit.
    pub fn with_plugin(mut self, info: &PluginInfo) -> Self {
        self.plugin = Some(PluginRef {
            name: info.name.clone(),
            version: info.version.clone(),
        });
        self
    }
}

impl<'a> BatchBuilder<'a> {
    /// Starts a batch for `direction` on node `node`.
    pub fn new(
        node: &'a str,
        direction: Direction,
        state: &'a SyncState,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            node,
            direction,
            state,
            retry,
            started: std::time::Instant::now(),
            commit: BatchCommit::default(),
        }
    }

    fn record(&mut self, event: &Event, ctx: &AuditContext, outcome: Outcome) {
        let mut record = audit_template(self.node, self.direction, event);
        record.source_url = ctx.source_url.clone();
        record.target_url = ctx.target_url.clone();
        record.plugin = ctx.plugin.clone();
        record.outcome = outcome;
        record.duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.commit.audit.push(record);
    }

    /// The event was skipped on purpose (echo, or the target already has it).
    pub fn skipped(&mut self, event: &Event, reason: SkipReason) {
        self.record(event, &AuditContext::default(), Outcome::Skipped { reason });
    }

    /// A filter rejected the event.
    pub fn filtered(&mut self, event: &Event, by: &str, reason: &str) {
        let outcome = Outcome::Filtered {
            by: by.to_string(),
            reason: reason.to_string(),
        };
        self.record(event, &AuditContext::default(), outcome);
    }

    /// The resource was written (or found identical); both sides now agree on `base`, which
    /// replaces the base `replaces` the decision was made against.
    pub fn synced(
        &mut self,
        event: &Event,
        ctx: &AuditContext,
        replaces: Option<SyncBase>,
        base: SyncBase,
        changed: bool,
    ) {
        let outcome = if changed {
            Outcome::Applied
        } else {
            Outcome::Unchanged
        };
        self.record(event, ctx, outcome);
        self.set_base(event, replaces, base, true);
    }

    /// The event announced the content both sides agreed on at the last sync: skipped, and
    /// earlier failures of the resource are settled.
    pub fn known(&mut self, event: &Event) {
        self.skipped(event, SkipReason::AlreadyPresent);
        self.settle(self.direction, event);
    }

    /// Settles earlier failures of `event`'s resource in `direction` too (an operator's
    /// resolution settles the resource in both directions).
    pub fn settle_also(&mut self, direction: Direction, event: &Event) {
        self.settle(direction, event);
    }

    fn settle(&mut self, direction: Direction, event: &Event) {
        self.commit.settled.push(failure_key(direction, event));
    }

    /// The event deleted something the target never held: nothing changed and no base is
    /// recorded; earlier failures of the resource are settled.
    pub fn never_held(&mut self, event: &Event, ctx: &AuditContext) {
        self.record(event, ctx, Outcome::Unchanged);
        self.settle(self.direction, event);
    }

    /// The event announced a state the source no longer holds: the fetched state is newer, and
    /// a later entry of the feed announces it, with its own origin. Nothing was written; the
    /// resource's earlier failures are settled here, since that later entry (or its own failure)
    /// now stands for the resource.
    pub fn superseded(&mut self, event: &Event) {
        self.skipped(event, SkipReason::Superseded);
        self.settle(self.direction, event);
    }

    fn set_base(
        &mut self,
        event: &Event,
        replaces: Option<SyncBase>,
        base: SyncBase,
        agreed: bool,
    ) {
        self.commit.bases.push(BaseUpdate {
            key: base_key(event),
            replaces,
            base,
            agreed,
        });
        self.settle(self.direction, event);
    }

    /// The resource left this node's data scope and its copy stays as it is. Its base, if it
    /// has one, is marked so that a push holds local edits of it back; a pull that brings the
    /// resource into the scope again writes a new base without the mark.
    pub fn left_scope(&mut self, event: &Event, base: Option<SyncBase>) {
        self.skipped(event, SkipReason::LeftScope);
        if let Some(base) = base.filter(|base| !base.left_scope) {
            let marked = SyncBase {
                left_scope: true,
                ..base.clone()
            };
            self.set_base(event, Some(base), marked, false);
        }
    }

    /// The resource is back in this node's scope with the content both sides last agreed on:
    /// its base loses the mark that held pushes of it back.
    pub fn back_in_scope(&mut self, event: &Event, base: SyncBase) {
        let unmarked = SyncBase {
            left_scope: false,
            ..base.clone()
        };
        self.set_base(event, Some(base), unmarked, false);
    }

    /// The target was left alone because its side is the newer one.
    pub fn kept_local(&mut self, event: &Event, ctx: &AuditContext) {
        self.record(event, ctx, Outcome::Unchanged);
    }

    /// A conflict was found; `base` is set when a policy or an operator settled it,
    /// replacing `replaces`.
    pub fn conflict(
        &mut self,
        event: &Event,
        ctx: &AuditContext,
        record: ConflictRecord,
        replaces: Option<SyncBase>,
        base: Option<NewBase>,
    ) {
        let outcome = Outcome::Conflict {
            conflict_id: record.id,
            policy: record.policy,
            winner: record.resolution.as_ref().map(|r| r.winner),
        };
        self.record(event, ctx, outcome);
        match base {
            Some(NewBase::Agreed(base)) => self.set_base(event, replaces, base, true),
            Some(NewBase::OneSided(base)) => self.set_base(event, replaces, base, false),
            None => {}
        }
        self.commit.conflicts.push(record);
    }

    /// The event failed; it goes to the retry queue or the dead letters.
    pub fn failed(
        &mut self,
        event: &Event,
        ctx: &AuditContext,
        failure: &Failure,
    ) -> Result<(), StateError> {
        let detail = failure.detail();
        self.failed_with(event, ctx, failure.kind(), detail.status, &detail.message)
    }

    /// A write the other side refused for now (it changed again, or refused a winner): retried
    /// later as a transient failure; `doing` says what this node was doing, `detail` what the
    /// other side answered.
    pub fn retry_later(
        &mut self,
        event: &Event,
        ctx: &AuditContext,
        doing: &str,
        detail: &FailureDetail,
    ) -> Result<(), StateError> {
        let message = format!("{doing}: {}", detail.message);
        self.failed_with(event, ctx, FailureKind::Transient, detail.status, &message)
    }

    /// Like [`Self::failed`] for failures that did not come from a plugin's result.
    pub fn failed_with(
        &mut self,
        event: &Event,
        ctx: &AuditContext,
        kind: FailureKind,
        status: Option<u16>,
        message: &str,
    ) -> Result<(), StateError> {
        // Messages quote what a parent or a plugin answered; keep a bounded excerpt.
        let message = &crate::audit::excerpt::bounded(message);
        let key = failure_key(self.direction, event);
        let previous = self.state.retry_entry(&key)?;
        let attempt = previous.as_ref().map_or(1, |p| p.attempt + 1);
        let now = Timestamp::now();
        let decision = self
            .retry
            .decide(kind, self.direction, attempt, now, &mut rand::rng());
        let last_failure = LastFailure {
            kind,
            status,
            message: message.to_string(),
            at: now,
        };
        let mut entry = self.queue_entry(event, key, previous.as_ref(), attempt, last_failure)?;
        let update = match decision {
            RetryDecision::RetryAt { next_at, .. } => {
                entry.next_at = next_at;
                RetryUpdate::Schedule(entry)
            }
            RetryDecision::DeadLetter { reason } => {
                entry.dead_reason = Some(reason);
                RetryUpdate::DeadLetter(entry)
            }
            RetryDecision::Conflict => {
                entry.dead_reason = Some("conflict reported by the target".into());
                RetryUpdate::DeadLetter(entry)
            }
        };
        self.commit.retries.push(update);
        let outcome = Outcome::Failed {
            failure: kind,
            status,
            message: message.to_string(),
            attempt,
        };
        self.record(event, ctx, outcome);
        Ok(())
    }

    /// A feed entry that could not be read at all: audited with its raw text and parked.
    pub fn malformed(&mut self, entry: &MalformedEntry) -> Result<(), StateError> {
        let id = entry
            .id
            .clone()
            .unwrap_or_else(|| format!("unreadable-{}", short_hash(&entry.raw)));
        let event = Event {
            id: id.clone(),
            sequence: None,
            category: "unreadable".into(),
            action: sync_host_runtime::Action::Updated,
            resource_type: "feed-entry".into(),
            resource_id: id,
            links: Vec::new(),
            tags: Vec::new(),
            origin: None,
            version: None,
            content_hash: None,
            raw: entry.raw.clone(),
        };
        let message = format!(
            "malformed feed entry: {}; raw entry: {}",
            entry.reason, entry.raw
        );
        self.failed_with(
            &event,
            &AuditContext::default(),
            FailureKind::Invalid,
            None,
            &message,
        )
    }

    /// The retry-queue entry of `event` under `key`, keeping the id and first failure time of
    /// the entry it replaces; due at its last failure until the caller says otherwise.
    fn queue_entry(
        &self,
        event: &Event,
        key: crate::state::FailureKey,
        previous: Option<&RetryEntry>,
        attempt: u32,
        last_failure: LastFailure,
    ) -> Result<RetryEntry, StateError> {
        Ok(RetryEntry {
            id: match previous {
                Some(p) => p.id,
                None => self.state.new_id()?,
            },
            key,
            event_id: event.id.clone(),
            event: serde_json::to_value(event).unwrap_or(serde_json::Value::Null),
            attempt,
            next_at: last_failure.at,
            first_failed_at: previous.map_or(last_failure.at, |p| p.first_failed_at),
            last_failure,
            dead_reason: None,
        })
    }

    /// Adds what another builder of the same batch recorded.
    pub fn absorb(&mut self, part: BatchCommit) {
        self.commit.audit.extend(part.audit);
        self.commit.bases.extend(part.bases);
        self.commit.retries.extend(part.retries);
        self.commit.conflicts.extend(part.conflicts);
        self.commit.settled.extend(part.settled);
    }

    /// Number of audit records so far.
    pub fn len(&self) -> usize {
        self.commit.audit.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.commit.audit.is_empty()
    }

    /// The finished batch, ready for [`SyncState::commit_batch`].
    pub fn finish(self) -> BatchCommit {
        self.commit
    }
}

fn short_hash(text: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

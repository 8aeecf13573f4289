//! Edits held back while their resource is outside this node's data scope: a push parks them
//! in the retry queue, due never, and the pull that brings the resource back makes them due.

use sync_host_runtime::Event;

use super::BatchBuilder;
use crate::audit::{SkipReason, Timestamp};
use crate::state::{FailureKey, LastFailure, RetryUpdate, StateError};
use crate::sync::conflict::Direction;
use crate::sync::event::failure_key;
use crate::sync::retry::FailureKind;

/// When a held-back push is due: never, until a pull releases it.
const HELD_UNTIL_RELEASED: Timestamp = Timestamp::FAR_FUTURE;

impl BatchBuilder<'_> {
    /// A push of a resource that left this node's data scope: the parent would refuse it, so
    /// the event waits in the retry queue, due only when a pull brings the resource back
    /// ([`BatchBuilder::release_held_edits`]); then the edit goes up like any other.
    pub fn held_back(&mut self, event: &Event) -> Result<(), StateError> {
        self.skipped(event, SkipReason::LeftScope);
        let key = failure_key(self.direction, event);
        let previous = self.state.retry_entry(&key)?;
        let now = Timestamp::now();
        let last_failure = LastFailure {
            kind: FailureKind::LeftScope,
            status: None,
            message: "held back: the resource left this node's data scope; it goes up when \
                      a pull brings it back"
                .into(),
            at: now,
        };
        let attempt = previous.as_ref().map_or(0, |p| p.attempt);
        let mut entry = self.queue_entry(event, key, previous.as_ref(), attempt, last_failure)?;
        entry.next_at = HELD_UNTIL_RELEASED;
        self.commit.retries.push(RetryUpdate::Schedule(entry));
        Ok(())
    }

    /// Makes the held-back pushes of the resources this pull brought back into scope due now
    /// (a base that loses its left-scope mark): a local edit made while a resource was out of
    /// scope is not left behind when the parent's copy did not change meanwhile.
    pub fn release_held_edits(&mut self) -> Result<(), StateError> {
        if self.direction != Direction::Pull {
            return Ok(());
        }
        let back: Vec<_> = self
            .commit
            .bases
            .iter()
            .filter(|update| {
                update.replaces.as_ref().is_some_and(|base| base.left_scope)
                    && !update.base.left_scope
            })
            .map(|update| update.key.clone())
            .collect();
        let now = Timestamp::now();
        for key in back {
            let push_key = FailureKey {
                direction: Direction::Push,
                resource_type: key.resource_type.clone(),
                resource_id: key.resource_id.clone(),
            };
            if let Some(mut entry) = self.state.retry_entry(&push_key)?
                && entry.last_failure.kind == FailureKind::LeftScope
            {
                entry.next_at = now;
                self.commit.retries.push(RetryUpdate::Schedule(entry));
            }
        }
        Ok(())
    }
}

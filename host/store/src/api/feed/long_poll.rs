//! One `recent?wait=` long-poll: admitted within the bounds, woken by a commit, then held a
//! little longer so that one answer carries a burst of writes, and so that a child answered a
//! moment ago is not answered again for every write of a steady stream.
//!
//! Waking is what a write costs a parent with a fleet of children: every answer is a page sent
//! and a new request parsed. A quiet window coalesces a burst; a least interval between two
//! answers to the same client bounds the answers per second a steady stream of writes causes,
//! whatever the write rate. Both apply only while many long-polls are held: a small tree has
//! little to save, and its changes travel at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::waiters::{Bounds, Waiting};
use crate::api::ApiState;
use crate::auth::AuthenticatedClient;

/// How many quiet windows a burst may extend a woken long-poll's wait by.
const SETTLE_ROUNDS: u32 = 10;

/// A long-poll admitted and waiting.
pub struct LongPoll {
    place: Waiting,
    admitted: std::time::Instant,
    deadline: Instant,
    changes: watch::Receiver<u64>,
    closing: Option<watch::Receiver<bool>>,
    quiet: Duration,
    least_interval: Duration,
    pace_from: usize,
}

impl LongPoll {
    /// A long-poll of `client` for at most `wait`, or `None` (logged) when the node's or the
    /// client's bound is reached and the request is answered at once. Subscribes before the
    /// caller counts, so a change committed in between still wakes the wait.
    pub fn admit(
        state: &ApiState,
        client: Option<&Arc<AuthenticatedClient>>,
        wait: Duration,
        closing: Option<watch::Receiver<bool>>,
    ) -> Option<LongPoll> {
        let name = client.map_or("", |client| client.name.as_str());
        let bounds = Bounds {
            node: state.config.long_poll_max_waiters,
            per_client: state.config.long_poll_max_per_client,
        };
        let Some(place) = state.long_polls.enter(name, bounds) else {
            tracing::debug!(
                client = name,
                held = state.long_polls.held(),
                node_bound = bounds.node,
                client_bound = bounds.per_client,
                "long-poll bound reached; answering at once"
            );
            return None;
        };
        Some(LongPoll {
            place,
            admitted: std::time::Instant::now(),
            deadline: Instant::now() + wait,
            changes: state.store.subscribe(),
            closing,
            quiet: state.config.long_poll_coalesce,
            least_interval: state.config.long_poll_least_interval,
            pace_from: state.config.long_poll_pace_from,
        })
    }

    /// Waits for a commit and, while the node holds many long-polls, for the store to settle
    /// and for the client's least interval to pass; false when the deadline passed or the
    /// server is shutting down first.
    pub async fn next_change(&mut self) -> bool {
        if !self.until(self.deadline, true).await {
            return false;
        }
        // A small tree has little to save: its children are answered at once.
        if self.place.held_now() < self.pace_from {
            return true;
        }
        self.settle().await;
        // Only an answer before this long-poll was asked for paces it: another long-poll of
        // the same client answered while this one waited is no reason to hold this one.
        let paced = self
            .place
            .last_answered()
            .filter(|last| *last <= self.admitted)
            .map(|last| last + self.least_interval)
            .filter(|not_before| *not_before > Instant::now().into_std());
        if let Some(not_before) = paced {
            let not_before = Instant::from_std(not_before).min(self.deadline);
            // A shutdown meanwhile answers at once with the changes there are.
            let _ = self.until(not_before, false).await;
        }
        true
    }

    /// Notes that the client got a page now.
    pub fn answered(&self) {
        self.place.answered();
    }

    /// Waits until `deadline`, or until a change (when `on_change`) or a shutdown ends the
    /// wait first; true only when a change ended it.
    async fn until(&mut self, deadline: Instant, on_change: bool) -> bool {
        let shutdown = async {
            match self.closing.as_mut() {
                // Ending the wait on shutdown keeps graceful shutdown from waiting it out.
                Some(closing) => {
                    let _ = closing.wait_for(|closing| *closing).await;
                }
                None => std::future::pending().await,
            }
        };
        let change = async {
            if on_change {
                matches!(self.changes.changed().await, Ok(()))
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            changed = tokio::time::timeout_at(deadline, change) => changed.unwrap_or(false),
            () = shutdown => false,
        }
    }

    /// Waits until the store has been quiet for the quiet window (at most [`SETTLE_ROUNDS`]
    /// of them, never past the deadline), so a burst of writes wakes each waiter once with
    /// all of them, and every waiter asks for the same page: one render serves them all.
    async fn settle(&mut self) {
        if self.quiet.is_zero() {
            return;
        }
        let until = (Instant::now() + self.quiet * SETTLE_ROUNDS).min(self.deadline);
        while Instant::now() < until {
            let next_quiet = (Instant::now() + self.quiet).min(until);
            match tokio::time::timeout_at(next_quiet, self.changes.changed()).await {
                Ok(Ok(())) => continue,
                // Quiet for the whole window, or the store is gone: answer with what is there.
                Ok(Err(_)) | Err(_) => return,
            }
        }
    }
}

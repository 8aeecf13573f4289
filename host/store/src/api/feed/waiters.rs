//! The long-polls a node holds open at once, bounded for the node and for each client: a
//! `recent?wait=` beyond either bound is answered at once instead of waiting, so a fleet of
//! children can never tie up every connection and descriptor (`/healthz`, writes and plain
//! reads keep working), and a single client cannot take the node's whole allowance. It also
//! remembers when each client was last answered, to pace its next answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Counts of the long-polls being held.
#[derive(Debug, Default)]
pub struct LongPolls {
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    per_client: HashMap<String, usize>,
    /// When each client that long-polls was last given a page by one. Keyed by
    /// authenticated client names, so it holds at most one entry per configured client.
    last_answered: HashMap<String, Instant>,
}

/// The bounds a long-poll is admitted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Long-polls the node holds at once.
    pub node: usize,
    /// Long-polls one client holds at once.
    pub per_client: usize,
}

impl LongPolls {
    /// Admits one more long-poll of `client` within `bounds`; `None` when either is reached,
    /// and the caller answers at once. The returned value holds the place until dropped.
    pub fn enter(self: &Arc<Self>, client: &str, bounds: Bounds) -> Option<Waiting> {
        let mut held = self.lock();
        let of_client = held.per_client.get(client).copied().unwrap_or(0);
        if held.total >= bounds.node || of_client >= bounds.per_client {
            return None;
        }
        held.total += 1;
        held.per_client.insert(client.to_owned(), of_client + 1);
        Some(Waiting {
            polls: Arc::clone(self),
            client: client.to_owned(),
        })
    }

    /// Long-polls held now.
    pub fn held(&self) -> usize {
        self.lock().total
    }

    fn leave(&self, client: &str) {
        let mut held = self.lock();
        held.total = held.total.saturating_sub(1);
        if let Some(count) = held.per_client.get_mut(client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.per_client.remove(client);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // Counts are updated whole under the lock; a panic elsewhere cannot leave them torn.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A long-poll's place, given back when the wait ends however it ends.
#[derive(Debug)]
pub struct Waiting {
    polls: Arc<LongPolls>,
    client: String,
}

impl Waiting {
    /// Long-polls the node holds now, this one among them.
    pub fn held_now(&self) -> usize {
        self.polls.held()
    }

    /// When a long-poll of this client was last given a page.
    pub fn last_answered(&self) -> Option<Instant> {
        self.polls.lock().last_answered.get(&self.client).copied()
    }

    /// Notes that this long-poll is given a page now.
    pub fn answered(&self) {
        let mut held = self.polls.lock();
        match held.last_answered.get_mut(&self.client) {
            Some(at) => *at = Instant::now(),
            None => {
                held.last_answered
                    .insert(self.client.clone(), Instant::now());
            }
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.polls.leave(&self.client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_per_node_and_per_client_and_given_back() {
        let polls = Arc::new(LongPolls::default());
        let bounds = Bounds {
            node: 3,
            per_client: 2,
        };
        let a1 = polls.enter("a", bounds).unwrap();
        let _a2 = polls.enter("a", bounds).unwrap();
        assert!(polls.enter("a", bounds).is_none(), "client a at its bound");
        let _b1 = polls.enter("b", bounds).unwrap();
        assert!(polls.enter("c", bounds).is_none(), "node at its bound");
        assert_eq!(polls.held(), 3);
        drop(a1);
        assert_eq!(polls.held(), 2);
        assert!(polls.enter("a", bounds).is_some());
    }

    #[test]
    fn the_last_answer_is_remembered_per_client() {
        let polls = Arc::new(LongPolls::default());
        let bounds = Bounds {
            node: 4,
            per_client: 2,
        };
        let a = polls.enter("a", bounds).unwrap();
        assert_eq!(a.last_answered(), None);
        a.answered();
        drop(a);
        let again = polls.enter("a", bounds).unwrap();
        assert!(
            again.last_answered().is_some(),
            "kept after the place is given back"
        );
        assert_eq!(polls.enter("b", bounds).unwrap().last_answered(), None);
    }
}

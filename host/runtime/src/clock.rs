//! The time budget of one plugin call.
//!
//! The engine's epoch advances with wall-clock time, so a plain epoch deadline
//! would also count the time a plugin spends waiting for the host's HTTP. The
//! runtime instead runs guests in short epoch slices: at the end of each slice
//! the store's callback asks this clock whether the guest's own time (wall time
//! minus time inside host calls) is used up, and otherwise yields to the async
//! executor and grants another slice. Yielding also keeps a spinning plugin
//! from holding a tokio worker thread for its whole deadline.

use std::time::{Duration, Instant};

/// Epoch ticks per slice between budget checks.
pub(crate) const SLICE_TICKS: u64 = 1;

/// Guest-time accounting for the call in progress.
#[derive(Debug, Clone)]
pub(crate) struct CallClock {
    limit: Duration,
    started: Instant,
    in_host: Duration,
}

impl CallClock {
    /// A clock for calls limited to `limit` of guest time.
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            limit,
            started: Instant::now(),
            in_host: Duration::ZERO,
        }
    }

    /// Starts the budget of a new call.
    pub(crate) fn restart(&mut self) {
        self.started = Instant::now();
        self.in_host = Duration::ZERO;
    }

    /// Records time spent inside a host call (HTTP), which the guest is not charged for.
    pub(crate) fn add_host_time(&mut self, spent: Duration) {
        self.in_host += spent;
    }

    /// Whether the guest has used up its budget.
    pub(crate) fn exhausted(&self) -> bool {
        self.exhausted_at(Instant::now())
    }

    fn exhausted_at(&self, now: Instant) -> bool {
        let wall = now.saturating_duration_since(self.started);
        wall.saturating_sub(self.in_host) >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_time_excludes_host_time() {
        let mut clock = CallClock::new(Duration::from_secs(1));
        let start = clock.started;
        assert!(!clock.exhausted_at(start + Duration::from_millis(900)));
        assert!(clock.exhausted_at(start + Duration::from_millis(1000)));
        clock.add_host_time(Duration::from_millis(700));
        assert!(!clock.exhausted_at(start + Duration::from_millis(1600)));
        assert!(clock.exhausted_at(start + Duration::from_millis(1700)));
    }

    #[test]
    fn restarting_clears_host_time() {
        let mut clock = CallClock::new(Duration::from_millis(50));
        clock.add_host_time(Duration::from_secs(60));
        clock.restart();
        assert!(clock.exhausted_at(clock.started + Duration::from_millis(50)));
    }
}

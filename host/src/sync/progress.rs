//! Progress of long catch-ups: entries done out of the total when the feed tells, the rate,
//! and an ETA, logged at most every few seconds and readable by `status`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The latest progress of one feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedProgress {
    pub feed: String,
    pub done: usize,
    /// Entries still to read, when the feed's numbering tells.
    pub remaining: Option<u64>,
    pub per_second: f64,
    pub eta: Option<Duration>,
}

/// Shared progress reporter of one direction.
#[derive(Clone, Default)]
pub struct Progress {
    direction: &'static str,
    inner: Arc<Mutex<ProgressInner>>,
}

#[derive(Default)]
struct ProgressInner {
    latest: Option<FeedProgress>,
    last_log: Option<Instant>,
}

const LOG_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// A reporter for `direction` (`pull` or `push`).
    pub fn new(direction: &'static str) -> Self {
        Self {
            direction,
            inner: Arc::default(),
        }
    }

    /// Records that `done` entries of `feed` were processed in `elapsed`.
    pub fn report(&self, feed: &str, done: usize, remaining: Option<u64>, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(1e-3);
        let per_second = done as f64 / secs;
        let eta = remaining
            .filter(|_| per_second > 0.0)
            .map(|r| Duration::from_secs_f64(r as f64 / per_second));
        let progress = FeedProgress {
            feed: feed.to_string(),
            done,
            remaining,
            per_second,
            eta,
        };
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let due = inner.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY);
        if due && remaining.is_some_and(|r| r > 0) {
            tracing::info!(
                direction = self.direction,
                feed,
                done,
                remaining = remaining.unwrap_or(0),
                rate = format!("{per_second:.0}/s"),
                eta_secs = eta.map(|e| e.as_secs()).unwrap_or(0),
                "catching up"
            );
            inner.last_log = Some(Instant::now());
        }
        inner.latest = Some(progress);
    }

    /// The latest progress, if any run reported.
    pub fn latest(&self) -> Option<FeedProgress> {
        self.inner.lock().ok().and_then(|i| i.latest.clone())
    }
}

//! A histogram of durations with fixed buckets, cheap to record into from any task: how long
//! sync runs and plugin calls take, read by the metrics endpoint at scrape time.

use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the buckets, in seconds; a last bucket takes everything longer.
pub const BUCKETS_SECS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0,
];

/// What a histogram holds at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DurationSnapshot {
    /// Observations per bucket of [`BUCKETS_SECS`], then the overflow bucket (not cumulative).
    pub counts: [u64; BUCKETS_SECS.len() + 1],
    /// Sum of all observations, in seconds.
    pub sum_secs: f64,
    /// Number of observations.
    pub count: u64,
}

/// Durations recorded so far.
#[derive(Debug, Default)]
pub struct Durations {
    inner: Mutex<DurationSnapshot>,
}

impl Durations {
    /// Records one duration.
    pub fn record(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let bucket = BUCKETS_SECS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BUCKETS_SECS.len());
        // A poisoned lock still holds counts that are each consistent; keep recording.
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.counts[bucket] += 1;
        inner.sum_secs += secs;
        inner.count += 1;
    }

    /// The counts now.
    pub fn snapshot(&self) -> DurationSnapshot {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_duration_lands_in_its_bucket() {
        let durations = Durations::default();
        durations.record(Duration::from_micros(500));
        durations.record(Duration::from_millis(70));
        durations.record(Duration::from_secs(1000));
        let snapshot = durations.snapshot();
        assert_eq!(snapshot.count, 3);
        assert_eq!(snapshot.counts[0], 1);
        assert_eq!(snapshot.counts[4], 1, "70 ms is at most 100 ms");
        assert_eq!(snapshot.counts[BUCKETS_SECS.len()], 1);
        assert!((snapshot.sum_secs - 1000.0705).abs() < 1e-9);
    }
}

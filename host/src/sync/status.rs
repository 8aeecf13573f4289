//! The live status of each direction, for `sync-host status`: last success, last failure,
//! what the last run did, and catch-up progress.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sync_host_types::durations::{DurationSnapshot, Durations};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::audit::Timestamp;
use crate::sync::progress::Progress;
use crate::sync::service::RunReport;

/// A snapshot of one direction.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DirectionSnapshot {
    pub enabled: bool,
    pub last_success: Option<Timestamp>,
    pub last_failure: Option<(Timestamp, String)>,
    pub runs: u64,
    pub pages: u64,
    pub events: u64,
    /// Whether a run is in progress.
    pub running: bool,
    /// What the last finished run did.
    pub last_run: Option<LastRun>,
    pub progress: Option<ProgressSnapshot>,
}

/// The outcome of one finished run, as `sync-now --wait` reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LastRun {
    pub finished: Timestamp,
    /// The run's number (`runs` once it finished).
    pub run: u64,
    pub pages: usize,
    pub events: usize,
    /// Resources written to the target.
    pub applied: usize,
    /// Events that failed (retried later or dead-lettered).
    pub failed: usize,
    pub retried: usize,
    /// Why the run stopped early, when it did.
    pub error: Option<String>,
}

/// Catch-up progress in a snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProgressSnapshot {
    pub feed: String,
    pub done: usize,
    pub remaining: Option<u64>,
    pub per_second: f64,
    pub eta_secs: Option<u64>,
}

/// Shared, updatable status of one direction.
#[derive(Clone)]
pub struct DirectionStatus {
    inner: Arc<Mutex<DirectionSnapshot>>,
    progress: Progress,
    /// The number of finished runs, for callers waiting on one.
    finished: Arc<watch::Sender<u64>>,
    /// How long runs take, for the metrics.
    timing: Arc<RunTiming>,
}

/// Run durations and results, kept for `/metrics`.
#[derive(Debug, Default)]
struct RunTiming {
    started: Mutex<Option<Instant>>,
    durations: Durations,
    succeeded: AtomicU64,
    failed: AtomicU64,
}

impl Default for DirectionStatus {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            progress: Progress::default(),
            finished: Arc::new(watch::Sender::new(0)),
            timing: Arc::default(),
        }
    }
}

impl DirectionStatus {
    /// Status for an enabled direction reporting through `progress`.
    pub fn new(progress: Progress) -> Self {
        let status = Self {
            progress,
            ..Self::default()
        };
        if let Ok(mut s) = status.inner.lock() {
            s.enabled = true;
        }
        status
    }

    /// Records that a run starts.
    pub fn started(&self) {
        if let Ok(mut s) = self.inner.lock() {
            s.running = true;
        }
        if let Ok(mut started) = self.timing.started.lock() {
            *started = Some(Instant::now());
        }
    }

    /// How long finished runs took.
    pub fn run_durations(&self) -> DurationSnapshot {
        self.timing.durations.snapshot()
    }

    /// Runs that finished without error.
    pub fn successes(&self) -> u64 {
        self.timing.succeeded.load(Ordering::Relaxed)
    }

    /// Runs that stopped with an error.
    pub fn failures(&self) -> u64 {
        self.timing.failed.load(Ordering::Relaxed)
    }

    fn time_run(&self, succeeded: bool) {
        let started = self.timing.started.lock().ok().and_then(|mut s| s.take());
        if let Some(started) = started {
            self.timing.durations.record(started.elapsed());
        }
        let count = if succeeded {
            &self.timing.succeeded
        } else {
            &self.timing.failed
        };
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a successful run.
    pub fn succeeded(&self, at: Timestamp, report: &RunReport) {
        self.time_run(true);
        self.finish(|s| {
            s.last_success = Some(at);
            s.pages += report.pages as u64;
            s.events += report.events as u64;
            LastRun {
                finished: at,
                run: s.runs,
                pages: report.pages,
                events: report.events,
                applied: report.applied,
                failed: report.failed,
                retried: report.retried,
                error: None,
            }
        });
    }

    /// Records a failed run.
    pub fn failed(&self, at: Timestamp, message: String) {
        self.time_run(false);
        self.finish(|s| {
            s.last_failure = Some((at, message.clone()));
            LastRun {
                finished: at,
                run: s.runs,
                error: Some(message),
                ..LastRun::default()
            }
        });
    }

    fn finish(&self, record: impl FnOnce(&mut DirectionSnapshot) -> LastRun) {
        let runs = match self.inner.lock() {
            Ok(mut s) => {
                s.runs += 1;
                s.running = false;
                let last = record(&mut s);
                s.last_run = Some(last);
                s.runs
            }
            Err(_) => return,
        };
        self.finished.send_replace(runs);
    }

    /// The run number that will cover everything present now: the next run, or the one
    /// after it when a run is already under way (it may have read its feed already).
    pub fn next_complete_run(&self) -> u64 {
        self.inner
            .lock()
            .map(|s| s.runs + 1 + u64::from(s.running))
            .unwrap_or(u64::MAX)
    }

    /// Waits until run `run` has finished, for at most `limit`; returns its outcome, or
    /// `None` on time-out.
    pub async fn wait_for_run(&self, run: u64, limit: Duration) -> Option<LastRun> {
        let mut finished = self.finished.subscribe();
        let reached = tokio::time::timeout(limit, finished.wait_for(|done| *done >= run)).await;
        match reached {
            Ok(Ok(_)) => self.inner.lock().ok().and_then(|s| s.last_run.clone()),
            _ => None,
        }
    }

    /// Changes each time a run finishes.
    pub fn runs_finished(&self) -> watch::Receiver<u64> {
        self.finished.subscribe()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> DirectionSnapshot {
        let mut snapshot = self.inner.lock().map(|s| s.clone()).unwrap_or_default();
        snapshot.progress = self.progress.latest().map(|p| ProgressSnapshot {
            feed: p.feed,
            done: p.done,
            remaining: p.remaining,
            per_second: p.per_second,
            eta_secs: p.eta.map(|e| e.as_secs()),
        });
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_gets_the_run_that_started_after_it_asked() {
        let status = DirectionStatus::new(Progress::default());
        assert_eq!(status.next_complete_run(), 1);
        // A run already under way may have read its feed before the request: wait for the
        // one after it.
        status.started();
        let wanted = status.next_complete_run();
        assert_eq!(wanted, 2);
        let report = RunReport {
            applied: 1,
            ..RunReport::default()
        };
        status.succeeded(Timestamp::now(), &report);
        let limit = Duration::from_millis(20);
        assert_eq!(status.wait_for_run(wanted, limit).await, None);
        status.started();
        status.failed(Timestamp::now(), "feed unreadable".into());
        let last = status.wait_for_run(wanted, limit).await;
        assert_eq!(last.as_ref().map(|r| r.run), Some(2));
        assert_eq!(
            last.and_then(|r| r.error).as_deref(),
            Some("feed unreadable")
        );
        assert!(!status.snapshot().running);
    }
}

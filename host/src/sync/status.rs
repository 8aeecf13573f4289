//! The live status of each direction, for `sync-host status`: last success, last failure,
//! what the last run did, and catch-up progress.

use std::sync::{Arc, Mutex};

use serde::Serialize;

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
    pub progress: Option<ProgressSnapshot>,
}

/// Catch-up progress in a snapshot.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ProgressSnapshot {
    pub feed: String,
    pub done: usize,
    pub remaining: Option<u64>,
    pub per_second: f64,
    pub eta_secs: Option<u64>,
}

/// Shared, updatable status of one direction.
#[derive(Clone, Default)]
pub struct DirectionStatus {
    inner: Arc<Mutex<DirectionSnapshot>>,
    progress: Progress,
}

impl DirectionStatus {
    /// Status for an enabled direction reporting through `progress`.
    pub fn new(progress: Progress) -> Self {
        let status = Self {
            inner: Arc::default(),
            progress,
        };
        if let Ok(mut s) = status.inner.lock() {
            s.enabled = true;
        }
        status
    }

    /// Records a successful run.
    pub fn succeeded(&self, at: Timestamp, report: &RunReport) {
        if let Ok(mut s) = self.inner.lock() {
            s.last_success = Some(at);
            s.runs += 1;
            s.pages += report.pages as u64;
            s.events += report.events as u64;
        }
    }

    /// Records a failed run.
    pub fn failed(&self, at: Timestamp, message: String) {
        if let Ok(mut s) = self.inner.lock() {
            s.last_failure = Some((at, message));
            s.runs += 1;
        }
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

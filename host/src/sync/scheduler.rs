//! Runs a direction's sync on an interval with jitter, at once when an operator asks, and
//! right after a long-poll says the parent changed; backs off after failures instead of
//! spinning, and stops cleanly when the node shuts down.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::audit::Timestamp;
use crate::sync::service::{RunReport, SyncError, SyncService};
use crate::sync::status::DirectionStatus;

/// When a direction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Time between runs when nothing else triggers one; `None` runs only when triggered.
    pub interval: Option<Duration>,
    /// Up to this much random delay is added to every interval, so many clinics that
    /// reconnect together do not hit their parent together.
    pub jitter: Duration,
    /// Follow the parent by long-poll between runs (pull only).
    pub follow: bool,
    /// The longest pause after repeated failures.
    pub max_backoff: Duration,
}

/// Wakes a direction's scheduler for an immediate run (`sync-host sync-now`).
#[derive(Clone, Default)]
pub struct Trigger(Arc<Notify>);

impl Trigger {
    /// Asks for a run now.
    pub fn fire(&self) {
        self.0.notify_one();
    }
}

/// How long a run in progress may go on after cancellation to finish its batch. After that it
/// is dropped: its uncommitted page is read again after the restart, as after a crash.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Runs `service` once; on cancellation, waits at most [`SHUTDOWN_GRACE`] for the batch in
/// flight. `None` when the run was abandoned.
async fn run_until_cancelled(
    service: &SyncService,
    cancel: &CancellationToken,
) -> Option<Result<RunReport, SyncError>> {
    let run = service.run_once(cancel);
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => Some(result),
        () = cancel.cancelled() => tokio::time::timeout(SHUTDOWN_GRACE, run).await.ok(),
    }
}

/// Runs `service` until `cancel` fires. A run in progress finishes its current batch first,
/// within `SHUTDOWN_GRACE`.
pub async fn run_scheduled(
    service: SyncService,
    schedule: Schedule,
    trigger: Trigger,
    status: DirectionStatus,
    cancel: CancellationToken,
) {
    let mut failures = 0u32;
    if schedule.interval.is_none() {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = trigger.0.notified() => {}
        }
    }
    loop {
        if cancel.is_cancelled() {
            return;
        }
        status.started();
        let Some(result) = run_until_cancelled(&service, &cancel).await else {
            tracing::warn!("sync run abandoned at shutdown; its page is read again on restart");
            return;
        };
        match result {
            Ok(report) => {
                failures = 0;
                status.succeeded(Timestamp::now(), &report);
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let message = crate::error_chain::chain(&e);
                tracing::warn!(error = %message, failures, "sync run failed; backing off");
                status.failed(Timestamp::now(), message);
            }
        }
        let wait = async {
            match (schedule.interval, pause_after(schedule, failures)) {
                (Some(interval), _) if schedule.follow && failures == 0 => {
                    service.wait_for_change(interval).await;
                }
                (_, Some(pause)) => tokio::time::sleep(pause).await,
                (_, None) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = trigger.0.notified() => {}
            () = wait => {}
        }
    }
}

/// A uniformly random delay in `[0, max]`.
fn jitter(max: Duration) -> Duration {
    use rand::Rng;
    let millis = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

/// The pause before the next run: the interval with jitter, or exponential backoff (with
/// the same jitter) after `failures` consecutive failures. `None` for a manual schedule
/// that has not failed: it waits for the next trigger.
pub fn pause_after(schedule: Schedule, failures: u32) -> Option<Duration> {
    let step = schedule.interval.unwrap_or(Duration::from_secs(1));
    let base = if failures == 0 {
        schedule.interval?
    } else {
        let factor = 2u32.saturating_pow(failures.min(16) - 1);
        step.checked_mul(factor)
            .unwrap_or(schedule.max_backoff)
            .min(schedule.max_backoff)
    };
    Some(base + jitter(schedule.jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps() {
        let s = Schedule {
            interval: Some(Duration::from_secs(10)),
            jitter: Duration::ZERO,
            follow: false,
            max_backoff: Duration::from_secs(60),
        };
        assert_eq!(pause_after(s, 0), Some(Duration::from_secs(10)));
        assert_eq!(pause_after(s, 1), Some(Duration::from_secs(10)));
        assert_eq!(pause_after(s, 2), Some(Duration::from_secs(20)));
        assert_eq!(pause_after(s, 3), Some(Duration::from_secs(40)));
        assert_eq!(pause_after(s, 9), Some(Duration::from_secs(60)));
        let manual = Schedule {
            interval: None,
            ..s
        };
        assert_eq!(pause_after(manual, 0), None);
        assert_eq!(pause_after(manual, 1), Some(Duration::from_secs(1)));
    }
}

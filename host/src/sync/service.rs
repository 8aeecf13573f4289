//! One direction of sync for one node: read each feed from its marker, run every page through
//! the pipeline, commit the page's effects with the advanced marker, then replay due retries.

use std::sync::Arc;
use std::time::Instant;

use sync_host_runtime::Event;
use tokio_util::sync::CancellationToken;

use crate::audit::Timestamp;
use crate::state::{BatchCommit, FailureKey, Marker, MarkerKey, StateError};
use crate::sync::link::Link;
use crate::sync::outcome::BatchBuilder;
use crate::sync::prefetch::Prefetched;
use crate::sync::progress::Progress;
use crate::sync::read_ahead::{Ahead, PageAhead, ReadAhead};
use crate::sync::reader::{FeedReader, ReadError};
use crate::sync::walk::{MAX_PAGES_PER_RUN, PageWalk};

/// Why a sync run stopped early. Failed events never stop it; only an unreadable feed or
/// the node's own storage do.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Feed(#[from] ReadError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Feed pages read.
    pub pages: usize,
    /// Audit records written (one per processed event).
    pub events: usize,
    /// Resources written to the target (applied, or a conflict winner written).
    pub applied: usize,
    /// Retries replayed.
    pub retried: usize,
    /// Events that failed (queued for retry or dead-lettered), replayed retries included.
    pub failed: usize,
}

/// A direction's feeds and pipeline.
#[derive(Clone)]
pub struct SyncService {
    /// Shared with the task that reads and fetches the page ahead.
    pipeline: Arc<Link>,
    /// The identity markers are kept under: the parent's node id on pull, `local` on push.
    marker_owner: String,
    feeds: Vec<Arc<FeedReader>>,
    progress: Progress,
}

/// How many due retries one run replays at most, so a long dead period cannot starve the feed.
const RETRIES_PER_RUN: usize = 500;

impl SyncService {
    /// A service reading `feeds` in order.
    pub fn new(
        pipeline: Link,
        marker_owner: String,
        feeds: Vec<Arc<FeedReader>>,
        progress: Progress,
    ) -> Self {
        Self {
            pipeline: Arc::new(pipeline),
            marker_owner,
            feeds,
            progress,
        }
    }

    /// The pipeline this service runs.
    pub fn pipeline(&self) -> &Link {
        &self.pipeline
    }

    /// The progress reporter of this service's catch-ups.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The feeds this service reads.
    pub fn feeds(&self) -> &[Arc<FeedReader>] {
        &self.feeds
    }

    /// Reads every feed up to its newest entry, then replays due retries.
    pub async fn run_once(&self, cancel: &CancellationToken) -> Result<RunReport, SyncError> {
        let mut report = RunReport::default();
        for feed in &self.feeds {
            self.catch_up(feed, cancel, &mut report).await?;
            if cancel.is_cancelled() {
                return Ok(report);
            }
        }
        let (retried, failed) = self.replay_due_retries().await?;
        report.retried = retried;
        report.failed += failed;
        Ok(report)
    }

    fn marker_key(&self, feed: &FeedReader) -> MarkerKey {
        MarkerKey {
            parent_node: self.marker_owner.clone(),
            feed: feed.name().to_string(),
        }
    }

    /// Reads `feed` from its marker to its newest page. Each page is decided and committed in
    /// feed order; meanwhile the pages after it are read and their source copies fetched, a
    /// bounded number ahead ([`ReadAhead`]), so the source's answers and this node's work
    /// overlap and a slow link always has a request in flight. Work ahead changes nothing
    /// durable: a crash or a cancel anywhere leaves the marker at the last committed page.
    async fn catch_up(
        &self,
        feed: &Arc<FeedReader>,
        cancel: &CancellationToken,
        report: &mut RunReport,
    ) -> Result<(), SyncError> {
        let key = self.marker_key(feed);
        let mut marker = self.pipeline.state.marker(&key)?;
        let mut walk = PageWalk::default();
        let started = Instant::now();
        let mut done_here = 0usize;
        // Reading a page changes nothing, so a read (a slow parent, a walk to the oldest
        // page) is dropped at once on cancel.
        let first = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(()),
            step = feed.read_step(marker.as_ref(), None, &mut walk) => step?,
        };
        let mut current = PageAhead::decoded(first);
        let mut ahead = current
            .step
            .next
            .clone()
            .map(|next| ReadAhead::start(feed.clone(), self.pipeline.clone(), next, walk));
        loop {
            let entries = current.page.events.len() + current.page.malformed.len();
            let remaining = current.step.remaining_hint;
            // The page in hand finishes or is never started.
            marker = self
                .commit_page(feed, &key, marker, current, report)
                .await?;
            done_here += entries;
            self.progress
                .report(feed.name(), done_here, remaining, started.elapsed());
            let Some(reading) = ahead.as_mut() else {
                return Ok(());
            };
            let next = tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(()),
                next = reading.next() => next,
            };
            let fetching = match next {
                None => return Ok(()),
                Some(Ahead::Page(fetching)) => fetching,
                Some(Ahead::Failed(e)) => return Err(e.into()),
                Some(Ahead::LimitReached) => {
                    tracing::warn!(
                        feed = feed.name(),
                        pages = MAX_PAGES_PER_RUN,
                        "page limit of one run reached; the next run goes on from the marker"
                    );
                    return Ok(());
                }
            };
            current = tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(()),
                done = fetching => match done {
                    Ok(page) => page,
                    // Invariant: the handle is only aborted by dropping it, so a join error
                    // is a panic of the task, passed on as if it had happened here.
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                },
            };
        }
    }

    /// Decides the page and commits its effects with the advanced marker; returns the marker.
    async fn commit_page(
        &self,
        feed: &FeedReader,
        key: &MarkerKey,
        marker: Option<Marker>,
        page: PageAhead,
        report: &mut RunReport,
    ) -> Result<Option<Marker>, SyncError> {
        let timer = Instant::now();
        let PageAhead { step, page, copies } = page;
        let (entries, prefetched) = (page.events.len(), copies.len());
        // Pull and push of this node decide and commit one batch at a time, so they
        // never settle the same resource against the same base at once.
        let deciding = self.pipeline.state.deciding().await;
        let mut commit = self.pipeline.process_page(page, copies).await?;
        let process_ms = timer.elapsed().as_millis();
        let new_marker = match step.last_entry {
            Some((entry_id, sequence)) => Some(Marker {
                entry_id,
                sequence,
                page: Some(step.page_url.clone()),
                updated_at: Timestamp::now(),
            }),
            None => marker.clone(),
        };
        if new_marker != marker {
            commit.marker = new_marker.clone().map(|m| (key.clone(), m));
        }
        report.events += commit.audit.len();
        report.applied += count_writes(&commit);
        let failures = failed_records(&commit);
        self.commit(commit).await?;
        report.failed += log_failures(&failures);
        drop(deciding);
        report.pages += 1;
        tracing::debug!(feed = feed.name(), page = %step.page_url, entries, prefetched, process_ms,
            commit_ms = timer.elapsed().as_millis() - process_ms, "page committed");
        Ok(new_marker)
    }

    /// Runs due retries through the same pipeline; their commit carries no marker.
    /// Returns the retries replayed and how many of them failed again.
    async fn replay_due_retries(&self) -> Result<(usize, usize), SyncError> {
        let due = self
            .pipeline
            .state
            .due_retries(Timestamp::now(), RETRIES_PER_RUN)?;
        let events: Vec<Event> = due
            .iter()
            .filter(|entry| entry.key.direction == self.pipeline.direction)
            .filter_map(|entry| serde_json::from_value(entry.event.clone()).ok())
            .collect();
        if events.is_empty() {
            return Ok((0, 0));
        }
        let count = events.len();
        let _deciding = self.pipeline.state.deciding().await;
        let mut out = BatchBuilder::new(
            &self.pipeline.node_id,
            self.pipeline.direction,
            &self.pipeline.state,
            self.pipeline.retry,
        );
        self.pipeline
            .process_events(events, Prefetched::default(), &mut out)
            .await?;
        out.release_held_edits()?;
        let commit = out.finish();
        let written = count_writes(&commit);
        let failures = failed_records(&commit);
        self.commit(commit).await?;
        if written > 0 {
            tracing::info!(written, "retries succeeded");
        }
        Ok((count, log_failures(&failures)))
    }

    /// Commits a batch, then forgets the write intents of the resources it gave a new sync
    /// base: the base now says what the target holds. Only those: a resource settled without
    /// a base (a superseded entry, say) may still hold a write of this node's the base does not
    /// know of.
    async fn commit(&self, commit: BatchCommit) -> Result<(), StateError> {
        let direction = self.pipeline.direction;
        let based: Vec<FailureKey> = commit
            .bases
            .iter()
            .map(|update| FailureKey {
                direction,
                resource_type: update.key.resource_type.clone(),
                resource_id: update.key.resource_id.clone(),
            })
            .collect();
        self.pipeline.state.commit_batch(commit).await?;
        self.pipeline.state.clear_intents(&based)
    }

    /// Waits until any feed of this service may have something new (long-poll where the
    /// publisher offers it), or `max_wait` passes.
    pub async fn wait_for_change(&self, max_wait: std::time::Duration) -> bool {
        match self.feeds.first() {
            Some(feed) => feed.wait_for_change(max_wait).await,
            None => false,
        }
    }
}

/// The failed records of a batch, taken before it is committed.
fn failed_records(commit: &BatchCommit) -> Vec<crate::audit::AuditRecord> {
    commit
        .audit
        .iter()
        .filter(|r| matches!(r.outcome, crate::audit::Outcome::Failed { .. }))
        .cloned()
        .collect()
}

/// Logs each committed failure at `warn`, so an operator watching the log sees it without
/// querying the audit; returns how many there were.
fn log_failures(records: &[crate::audit::AuditRecord]) -> usize {
    for record in records {
        if let crate::audit::Outcome::Failed {
            failure,
            status,
            message,
            attempt,
        } = &record.outcome
        {
            tracing::warn!(
                resource_type = %record.resource_type,
                resource_id = %record.resource_id,
                kind = ?failure,
                status,
                attempt,
                error = %message,
                "event failed"
            );
        }
    }
    records.len()
}

/// Records of a batch that wrote something to the target.
fn count_writes(commit: &BatchCommit) -> usize {
    use crate::audit::Outcome;
    commit
        .audit
        .iter()
        .filter(|r| match &r.outcome {
            Outcome::Applied => true,
            Outcome::Conflict { winner, .. } => winner.is_some(),
            _ => false,
        })
        .count()
}

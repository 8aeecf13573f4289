//! Group commit: writers queue their units; one committer thread applies everything queued in
//! one transaction, flushes once for the whole group, and only then answers every writer. N
//! concurrent writers therefore share one fsync, and an acknowledged write is a durable one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};

use super::apply::{self, ApplySettings, Counters, Trees, Unit, UnitResult};
use super::gather::Gather;
use super::plan::truncate_to_millis;
use super::types::StoreError;
use super::{follow, reclassify};
use crate::scope::Classify;

/// Most units applied in one group; bounds transaction size and reply latency.
const MAX_GROUP: usize = 1024;

/// A unit waiting to be committed, with the channel its writer waits on.
pub(crate) struct Job {
    unit: Unit,
    reply: oneshot::Sender<UnitResult>,
}

/// Handle to the committer thread. Dropping it closes the queue; the thread finishes what is
/// queued and exits, and the drop waits for that so the database is closed afterwards.
pub(crate) struct Committer {
    /// Each message is one writer's job, or the jobs of a batch served together (`gather`).
    queue: Option<mpsc::UnboundedSender<Vec<Job>>>,
    thread: Option<JoinHandle<()>>,
    /// Groups committed since the store opened (each one transaction and one flush).
    groups: Arc<AtomicU64>,
}

impl Committer {
    /// Starts the committer thread for `trees`; committed sequences are published on `changes`.
    pub fn start(
        trees: Trees,
        node_id: String,
        history_retention: usize,
        classifier: Arc<dyn Classify>,
        changes: watch::Sender<u64>,
    ) -> Result<Committer, StoreError> {
        let (queue, jobs) = mpsc::unbounded_channel();
        let groups = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&groups);
        let thread = std::thread::Builder::new()
            .name("store-committer".into())
            .spawn(move || {
                let settings = ApplySettings {
                    node_id: &node_id,
                    history_retention,
                    classifier: classifier.as_ref(),
                };
                run(trees, &settings, jobs, changes, &counted);
            })
            .map_err(|error| StoreError::Storage(format!("cannot start the committer: {error}")))?;
        Ok(Committer {
            queue: Some(queue),
            thread: Some(thread),
            groups,
        })
    }

    /// How many groups have been committed so far.
    pub fn groups(&self) -> u64 {
        self.groups.load(Ordering::Relaxed)
    }

    /// Queues `unit` and waits until it is applied and flushed. Inside a batch served
    /// together, the unit waits for the batch's other writes and is committed with them.
    pub async fn commit(&self, unit: Unit) -> UnitResult {
        let (reply, answer) = oneshot::channel();
        let queue = self.queue.as_ref().ok_or(StoreError::Closed)?;
        if let Some(job) = Gather::hold(queue, Job { unit, reply }) {
            queue.send(vec![job]).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the store committer thread panicked");
        }
    }
}

/// The committer loop: runs on its own thread because sled calls block.
fn run(
    trees: Trees,
    settings: &ApplySettings<'_>,
    mut jobs: mpsc::UnboundedReceiver<Vec<Job>>,
    changes: watch::Sender<u64>,
    groups: &AtomicU64,
) {
    let mut counters = match Counters::load(&trees) {
        Ok(counters) => counters,
        Err(error) => {
            // Answer every writer with the reason instead of leaving them waiting.
            tracing::error!(%error, "store counters unreadable; refusing writes");
            while let Some(batch) = jobs.blocking_recv() {
                for job in batch {
                    let _ = job.reply.send(Err(error.clone()));
                }
            }
            return;
        }
    };
    if let Err(error) = reclassify::start_if_needed(&trees, settings.classifier) {
        tracing::error!(%error, "cannot tell whether the store must be classified again");
    }
    let mut following = background_pending(&trees);
    let mut progress = reclassify::Progress::default();
    loop {
        // Writers come first; compartments follow their patients while no writer waits.
        let next = if following {
            match jobs.try_recv() {
                Ok(batch) => Some(batch),
                Err(mpsc::error::TryRecvError::Empty) => None,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        } else {
            match jobs.blocking_recv() {
                Some(batch) => Some(batch),
                None => break,
            }
        };
        if let Some(mut group) = next {
            // A batch served together is one group even when it is larger than `MAX_GROUP`.
            while group.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(batch) => group.extend(batch),
                    Err(_) => break,
                }
            }
            commit_group(&trees, settings, group, &mut counters, &changes, groups);
        }
        following = background_step(&trees, settings, &mut counters, &mut progress, &changes);
    }
    // Work left queued is durable and done when the store opens again.
    tracing::debug!(node = %settings.node_id, "store committer stopped");
}

/// Whether placement work waits: a store being classified again, or a compartment following
/// its patient.
fn background_pending(trees: &Trees) -> bool {
    reclassify::pending(trees) || follow::pending(trees)
}

/// One step of placement work, the pass over the whole store first; returns whether work
/// remains. A failure is logged and retried after the next write, so it cannot spin.
fn background_step(
    trees: &Trees,
    settings: &ApplySettings<'_>,
    counters: &mut Counters,
    progress: &mut reclassify::Progress,
    changes: &watch::Sender<u64>,
) -> bool {
    let done = if reclassify::pending(trees) {
        reclassify::step(trees, settings, counters, progress)
    } else if follow::pending(trees) {
        follow::step(trees, settings, counters).map(|_| ())
    } else {
        return false;
    };
    match done {
        Ok(()) => {
            publish(changes, counters.sequence);
            background_pending(trees)
        }
        Err(error) => {
            tracing::error!(%error, "placing resources again failed; retrying after the next write");
            false
        }
    }
}

/// Tells readers (long-polls) that changes up to `last_sequence` are committed.
fn publish(changes: &watch::Sender<u64>, last_sequence: u64) {
    changes.send_if_modified(|seen| {
        let advanced = last_sequence > *seen;
        *seen = (*seen).max(last_sequence);
        advanced
    });
}

fn commit_group(
    trees: &Trees,
    settings: &ApplySettings<'_>,
    group: Vec<Job>,
    counters: &mut Counters,
    changes: &watch::Sender<u64>,
    groups: &AtomicU64,
) {
    let now = truncate_to_millis(OffsetDateTime::now_utc());
    let units: Vec<&Unit> = group.iter().map(|job| &job.unit).collect();
    let (results, advanced) = match apply::apply_group(trees, &units, settings, now, counters) {
        Ok(applied) => applied,
        Err(error) => return fail_group(group, &error),
    };
    // The transaction is applied: whatever the flush does, later groups must continue from
    // these counters or they would reuse sequence numbers.
    *counters = advanced;
    if let Err(error) = trees.db.flush() {
        return fail_group(group, &StoreError::from(error));
    }
    // Counted before any writer hears back, so a writer that reads the count sees its group.
    groups.fetch_add(1, Ordering::Relaxed);
    let last_sequence = counters.sequence;
    tracing::trace!(units = group.len(), last_sequence, "store group committed");
    for (job, result) in group.into_iter().zip(results) {
        // A writer that gave up waiting is not an error for anyone else.
        let _ = job.reply.send(result);
    }
    // Writers hear back first: a write wakes every long-polling reader, and its answer must
    // not queue behind theirs.
    publish(changes, last_sequence);
}

/// Answers every writer of a group with `error`: none of their writes is acknowledged (after a
/// failed flush they may still reach the disk later, exactly as after a crash).
fn fail_group(group: Vec<Job>, error: &StoreError) {
    tracing::error!(%error, units = group.len(), "store group commit failed");
    for job in group {
        let _ = job.reply.send(Err(error.clone()));
    }
}

//! Writes of many requests served together, committed as one group: one transaction and one
//! flush for a whole batch of in-process requests instead of one per request.
//!
//! [`serve_together`] polls every request future of a batch in one task, round by round. A
//! write made inside it is not queued for the committer at once: it waits in the batch's
//! [`Gather`] until the end of the round, when every request that could reach its write has
//! done so, and then all of them go to the committer as one message. Each writer still gets its
//! own result (its own precondition check, its own outcome), exactly as if it had been alone.
//! Because the waiting writes are released at the end of every round, a request that waits on
//! anything else never holds the others back.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::sync::mpsc::UnboundedSender;

use super::committer::Job;

tokio::task_local! {
    /// The batch the current task's requests belong to, inside [`serve_together`].
    static GATHER: Arc<Gather>;
}

/// Writes waiting for the end of the current round, with the committer queue each goes to.
#[derive(Default)]
pub(crate) struct Gather {
    waiting: Mutex<Vec<(UnboundedSender<Vec<Job>>, Job)>>,
}

impl Gather {
    /// Holds `job` for the end of the round when the current task serves a batch; otherwise
    /// hands it back.
    pub(crate) fn hold(queue: &UnboundedSender<Vec<Job>>, job: Job) -> Option<Job> {
        let Ok(gather) = GATHER.try_with(Arc::clone) else {
            return Some(job);
        };
        gather
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((queue.clone(), job));
        None
    }

    /// Sends everything held to its committer, one message per committer and run of jobs.
    fn release(&self) {
        let held =
            std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        let mut runs: Vec<(UnboundedSender<Vec<Job>>, Vec<Job>)> = Vec::new();
        for (queue, job) in held {
            match runs.last_mut() {
                Some((last, jobs)) if last.same_channel(&queue) => jobs.push(job),
                _ => runs.push((queue, vec![job])),
            }
        }
        for (queue, jobs) in runs {
            // A closed queue drops the jobs, and with them their reply channels: each writer
            // then gets `StoreError::Closed`, as a direct send would have given it.
            let _ = queue.send(jobs);
        }
    }
}

/// Runs `requests` concurrently in the current task and returns their outputs in order; the
/// store writes they make in the same round are committed together.
pub async fn serve_together<F>(requests: Vec<F>) -> Vec<F::Output>
where
    F: Future,
{
    let gather = Arc::new(Gather::default());
    let mut pending: Vec<Pin<Box<F>>> = requests.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    let round = std::future::poll_fn(|cx: &mut Context<'_>| {
        let done = poll_round(&mut pending, &mut outputs, cx);
        gather.release();
        if done { Poll::Ready(()) } else { Poll::Pending }
    });
    GATHER.scope(Arc::clone(&gather), round).await;
    outputs.into_iter().flatten().collect()
}

/// Polls every request that has not finished; true when all have.
fn poll_round<F: Future>(
    pending: &mut [Pin<Box<F>>],
    outputs: &mut [Option<F::Output>],
    cx: &mut Context<'_>,
) -> bool {
    let mut done = true;
    for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
        if output.is_some() {
            continue;
        }
        match future.as_mut().poll(cx) {
            Poll::Ready(value) => *output = Some(value),
            Poll::Pending => done = false,
        }
    }
    done
}

//! Stops a run between two durable steps of its node: a [`StepHook`] that, the n-th time the
//! run reaches a chosen point, tells the simulation and then never returns, so dropping the
//! run leaves the node exactly as a crash at that point would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sync_host::state::{DurablePoint, StepHook};
use tokio::sync::oneshot;

/// Holds a run at the `nth` time it reaches `point`.
pub struct CrashGate {
    point: DurablePoint,
    nth: usize,
    seen: AtomicUsize,
    reached: Mutex<Option<oneshot::Sender<()>>>,
}

impl CrashGate {
    /// A gate, and the signal that fires once a run is held in it.
    pub fn new(point: DurablePoint, nth: usize) -> (Arc<Self>, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let gate = Self {
            point,
            nth,
            seen: AtomicUsize::new(0),
            reached: Mutex::new(Some(tx)),
        };
        (Arc::new(gate), rx)
    }
}

#[async_trait::async_trait]
impl StepHook for CrashGate {
    async fn reached(&self, point: DurablePoint) {
        if point != self.point || self.seen.fetch_add(1, Ordering::SeqCst) + 1 != self.nth {
            return;
        }
        let signal = self.reached.lock().expect("gate lock").take();
        if let Some(signal) = signal {
            let _ = signal.send(());
        }
        std::future::pending::<()>().await;
    }
}

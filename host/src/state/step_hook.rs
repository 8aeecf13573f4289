//! A seam for fault injection between durable steps. The state calls an installed hook on
//! both sides of each of its durable writes (write intents, batch commits), so a test can stop
//! a node at exactly that point, with every earlier step on disk and no later one begun, and
//! check that a restart from the data directory loses nothing. No hook is installed in normal
//! operation, and then a call costs one uncontended lock.

use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;

/// Where a sync run stands between two durable steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurablePoint {
    /// Write intents (and the conflict records their writes settle) are about to be recorded.
    BeforeIntents,
    /// Write intents are durable; the writes they announce have not been sent.
    AfterIntents,
    /// A batch's writes are done; its commit (audit, bases, marker) is about to begin.
    BeforeCommit,
    /// A batch commit is durable.
    AfterCommit,
}

/// Called at every [`DurablePoint`] of one node's state. A hook that never returns stops the
/// run there; dropping the run's future then leaves the node as a crash at that point would.
#[async_trait]
pub trait StepHook: Send + Sync {
    /// The run reached `point`.
    async fn reached(&self, point: DurablePoint);
}

/// The installed hook, shared by every clone of one state.
#[derive(Clone, Default)]
pub(crate) struct HookSlot {
    hook: Arc<RwLock<Option<Arc<dyn StepHook>>>>,
}

impl std::fmt::Debug for HookSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookSlot")
    }
}

impl HookSlot {
    pub(crate) fn set(&self, hook: Option<Arc<dyn StepHook>>) {
        // The slot only ever holds a whole value, so a poisoned lock still holds a valid one.
        *self.hook.write().unwrap_or_else(PoisonError::into_inner) = hook;
    }

    pub(crate) async fn reached(&self, point: DurablePoint) {
        let hook = self
            .hook
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(hook) = hook {
            hook.reached(point).await;
        }
    }
}

//! One direction of one link of the tree, as the engine's stages see it: who is on each side,
//! where resources are read and written, which clients and filters run, by which policies,
//! over which durable state. Built once when a node starts and shared by every page.

use std::sync::Arc;

use sync_host_runtime::{Endpoint, EventFilter};
use sync_host_store::scope::DataScope;
use sync_host_store::store::Store;

use crate::config::LeaveScope;
use crate::state::SyncState;
use crate::sync::conflict::{Direction, PolicySet, Side};
use crate::sync::retry::RetryPolicy;
use crate::sync::routes::Routes;

/// Everything one direction of sync needs, built once at start and shared by every batch.
#[derive(Clone)]
pub struct Link {
    /// This node's id.
    pub node_id: String,
    /// The parent's node id.
    pub parent_node: String,
    /// Pull or push.
    pub direction: Direction,
    /// Where resources are read: the parent on pull, this node on push.
    pub source: Endpoint,
    /// Where they are written: this node on pull, the parent on push.
    pub target: Endpoint,
    /// Which resource client handles which event.
    pub routes: Routes,
    /// Event filters for this direction, in configured order.
    pub filters: Vec<Arc<dyn EventFilter>>,
    /// Conflict policies.
    pub policies: PolicySet,
    /// Backoff for failed events.
    pub retry: RetryPolicy,
    /// The durable sync state.
    pub state: SyncState,
    /// Whether a conflict won by the target's state is also written to the source (see
    /// `write_back`); off for the pull of a node that never writes to its parent.
    pub write_back: bool,
    /// The embedded store when it is the target (the pull of a node without `[local]`): a
    /// resource it holds no record of needs no read before its write.
    pub target_store: Option<Store>,
    /// What a pull does with the copy of a resource that left this node's data scope.
    pub leave_scope: LeaveScope,
    /// This node's own data scope for the direction (`[sync.pull]`/`[sync.push]`
    /// `data_scope`), with the embedded store that places resources for it.
    pub own_scope: Option<(Arc<DataScope>, Store)>,
}

impl Link {
    /// The origin a conflict winner from `side` of this link is written under: the parent's
    /// node id or this node's. Never the origin of whoever first wrote that content: that node
    /// may have moved on since, and would skip the winner as an echo of its own write and keep
    /// its newer copy for good.
    pub fn origin_of(&self, side: Side) -> &str {
        match side {
            Side::Parent => &self.parent_node,
            Side::Child => &self.node_id,
        }
    }
}

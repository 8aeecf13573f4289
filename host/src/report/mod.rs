//! Status reports that travel up the tree: each child tells its parent how it is doing, and a
//! parent relays what it heard from below with its own report, so the root sees every node.
//! Children still initiate everything; a parent never dials a child.
//!
//! `model` is what a report says, `decisions` the conflict decisions that travel down the
//! same path in the answers, `network` the pure rules (what a parent accepts, what it
//! relays, the operator's view), `book` where a parent keeps the latest report of each node,
//! and `kept`, the JSON tree both books are kept in.
//! Building a node's own report and sending it live in `node::reporting`.

pub mod book;
pub mod decisions;
pub mod kept;
pub mod model;
pub mod network;

pub use book::ReportBook;
pub use decisions::{Decision, DecisionBook, DecisionOutcome};
pub use kept::KeptError;
pub use model::{NodeReport, RelayedNode, ReportAnswer, ReportUpload};
pub use network::{Health, KeptReport, NetworkRow, Position, Refusal};

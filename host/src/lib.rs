//! sync-host: the agent that keeps health records in sync across a tree of sites.
//!
//! The crate is organised as the pipeline it runs: feeds are read, events are filtered,
//! resources are fetched and stored through plugins, conflicts are decided, the audit is
//! written and the marker advances. See ARCHITECTURE.md at the repository root.

pub mod audit;
pub mod config;
pub mod default_plugins;
pub mod error_chain;
pub mod network;
pub mod node;
pub mod plugins;
pub mod report;
pub mod state;
pub mod sync;
pub mod ui;

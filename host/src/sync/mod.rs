//! The sync engine. Pure decisions (`conflict`, `retry`, `navigation`, `version`, `routes`)
//! are kept apart from I/O (`reader`, `transport`, `service`, `scheduler`); `pipeline`,
//! `apply`, `apply_conflict`, `write` and `write_back` are the straight line a page of feed
//! entries runs through, configured by `link` and passing `candidate` values down the line.

pub mod apply;
pub mod apply_conflict;
pub mod candidate;
pub mod conflict;
pub mod event;
pub mod link;
pub mod navigation;
pub mod outcome;
pub mod own_scope;
pub mod pipeline;
pub mod prefetch;
pub mod progress;
pub mod read_ahead;
pub mod reader;
pub mod retry;
pub mod routes;
pub mod scheduler;
pub mod service;
pub mod status;
pub mod transport;
pub mod version;
pub mod walk;
pub mod write;
pub mod write_back;

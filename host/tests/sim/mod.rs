//! A deterministic simulation of a small sync tree (root; two districts; a clinic under one of
//! them) run on the real engine: seeded schedules of edits, interleaved and paused sync runs,
//! crashes and link failures, followed by quiescence and the convergence checks.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

pub mod checks;
pub mod crash_gate;
pub mod exec;
pub mod hook_proxy;
pub mod ledger;
pub mod runner;
pub mod schedule;
pub mod world;

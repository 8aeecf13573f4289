//! Shared parts of the sync end-to-end tests: an OpenMRS-shaped parent built from the fixtures,
//! a fault-injecting reverse proxy, and helpers to start, restart and inspect nodes.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

pub mod hostile;
pub mod nodes;
pub mod openmrs;
pub mod pages;
pub mod process;
pub mod proxy;
pub mod tree;

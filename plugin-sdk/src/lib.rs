//! Write sync-host plugins: resource clients and event filters compiled to
//! WebAssembly components (`wasm32-wasip2`).
//!
//! Enable the cargo feature of the world your plugin implements:
//! `resource-client` ([`ResourceClient`], [`export_resource_client!`]) or
//! `event-filter` ([`EventFilter`], [`export_event_filter!`]). Only that
//! world is embedded in your component. The WIT types are re-exported under
//! their Rust names ([`Event`], [`Resource`], [`Failure`], ...); the host's
//! HTTP and log imports are wrapped in [`http`] and [`log`].
//!
//! See the crate's README for the way from `cargo new --lib` to a `.wasm`
//! the host accepts.
#![warn(missing_docs)]

pub mod bindings;
#[cfg(feature = "resource-client")]
mod client;
#[cfg(feature = "event-filter")]
pub mod filter;
pub mod http;
pub mod links;
pub mod log;
pub mod types;

#[cfg(feature = "resource-client")]
pub use client::ResourceClient;
#[cfg(feature = "event-filter")]
pub use filter::{EventFilter, NoConfig};
pub use types::*;

/// The version of the `sync:plugin` WIT package this SDK implements.
pub const WIT_VERSION: &str = "0.1.0";

//! Write sync-host plugins: resource clients, event filters and classifiers
//! compiled to WebAssembly components (`wasm32-wasip2`).
//!
//! Enable the cargo feature of the world your plugin implements:
//! `resource-client` ([`ResourceClient`], [`export_resource_client!`]),
//! `event-filter` ([`EventFilter`], [`export_event_filter!`]) or
//! `classifier` ([`Classifier`], [`export_classifier!`]). Only that
//! world is embedded in your component. The WIT types are re-exported under
//! their Rust names ([`Event`], [`Resource`], [`Failure`], ...); the host's
//! HTTP and log imports are wrapped in [`http`] and [`log`].
//!
//! See the crate's README for the way from `cargo new --lib` to a `.wasm`
//! the host accepts.
#![warn(missing_docs)]

pub mod bindings;
#[cfg(feature = "classifier")]
pub mod classify;
#[cfg(feature = "resource-client")]
mod client;
mod config;
#[cfg(feature = "event-filter")]
pub mod filter;
pub mod http;
pub mod links;
pub mod log;
pub mod types;

#[cfg(feature = "classifier")]
pub use bindings::resource_classifier::exports::sync::plugin::classifier::{
    Document, Family, Placement,
};
#[cfg(feature = "classifier")]
pub use classify::Classifier;
#[cfg(feature = "resource-client")]
pub use client::ResourceClient;
pub use config::{NoConfig, parse_config};
#[cfg(feature = "event-filter")]
pub use filter::EventFilter;
pub use types::*;

/// The version of the `sync:plugin` WIT package this SDK implements.
pub const WIT_VERSION: &str = "0.1.1";

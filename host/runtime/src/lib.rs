//! The WebAssembly plugin runtime of sync-host: loads `sync:plugin` components,
//! runs them sandboxed (deadline, memory cap, no ambient authority) and offers
//! them to the rest of the host as [`ResourceClient`]s and [`EventFilter`]s.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use sync_host_runtime::{HttpAccess, PluginRuntime, ResourceClient, RuntimeConfig};
//!
//! let runtime = PluginRuntime::new(RuntimeConfig::default())?;
//! let plugin = runtime.load_file("plugins/fhir.wasm".as_ref()).await?;
//! let client = plugin.resource_client(HttpAccess::default())?;
//! println!("loaded {}", client.info().label());
//! # Ok(()) }
//! ```

mod access;
mod bindings;
mod cache;
mod client;
mod clock;
mod engine;
mod error;
mod filter;
mod http_import;
mod inspect;
mod instance;
mod loader;
mod sandbox;
mod stderr;
pub mod types;

pub use access::{AllowedEndpoint, Credentials, HttpAccess, LocalService, UrlRefusal, check_url};
pub use cache::cache_key;
pub use client::{ResourceClient, WasmResourceClient};
pub use engine::{HttpLimits, PluginRuntime, RuntimeConfig};
pub use error::{InspectError, PluginError, RuntimeError};
pub use filter::{EventFilter, WasmEventFilter};
pub use inspect::{
    ComponentInfo, HOST_WIT_VERSION, World, classify, inspect, is_compatible, require_world,
};
pub use loader::LoadedPlugin;
pub use types::{
    Action, Direction, Endpoint, Event, Failure, FailureDetail, Link, PluginInfo, Resource, Role,
    Stored, Verdict, Write, WriteOutcome,
};

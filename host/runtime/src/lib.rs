//! The WebAssembly plugin runtime of sync-host: loads `sync:plugin` components,
//! runs them sandboxed and offers them to the rest of the host as
//! [`ResourceClient`]s, [`EventFilter`]s and [`Classifier`]s.
//!
//! What a plugin gets, and what it does not:
//!
//! * **No ambient authority.** WASI is linked with an empty context: no
//!   preopened directories, no environment, no arguments, no sockets. A
//!   component importing `wasi:filesystem`, `wasi:sockets` or `wasi:http` is
//!   refused at load ([`inspect`] explains why).
//! * **HTTP only through the host** (`sync:plugin/http`), only to the endpoints
//!   in its [`HttpAccess`], with credentials the host adds and the plugin never
//!   sees, no redirects followed, a timeout and a response size cap.
//! * **Limits per call.** Each call gets [`RuntimeConfig::call_timeout`] of the
//!   plugin's own time (time waiting on host HTTP is not charged), runs in
//!   short slices that yield to the async executor, and is bounded in wall
//!   time by `call_timeout + request_timeout`. Linear memory is capped at
//!   [`RuntimeConfig::memory_limit_bytes`] per instance.
//! * **Failure is contained.** A trap, deadline or out-of-memory fails that call
//!   only, with a [`PluginError`] naming the plugin; the broken instance is
//!   dropped and the next call gets a fresh one (an event filter is configured
//!   again with the same JSON).
//!
//! Components are compiled once per load, optionally cached on disk
//! ([`RuntimeConfig::cache_dir`]), and pre-instantiated so that a fresh
//! instance is cheap.
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

#![warn(missing_docs)]

mod access;
mod bindings;
mod cache;
mod classifier;
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
pub use classifier::{Classifier, WasmClassifier};
pub use client::{ResourceClient, WasmResourceClient};
pub use engine::{HttpLimits, PluginRuntime, RuntimeConfig};
pub use error::{InspectError, PluginError, RuntimeError};
pub use filter::{EventFilter, WasmEventFilter};
pub use inspect::{
    ComponentInfo, HOST_WIT_VERSION, World, classify, inspect, is_compatible, require_world,
};
pub use loader::LoadedPlugin;
pub use types::{
    Action, CREATE_ONLY, Direction, Document, Endpoint, Event, Failure, FailureDetail, FailureKind,
    Family, Link, Placed, PluginInfo, Resource, Role, Stored, Verdict, Write, WriteOutcome,
};

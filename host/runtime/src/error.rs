//! Error types of the plugin runtime. Every message names what went wrong and,
//! where a plugin is involved, the plugin as `"<name> <version>"`.

use std::path::PathBuf;
use std::time::Duration;

use crate::inspect::World;

/// Why a file or byte string is not a plugin this host can run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly file (it does not start with the \\0asm header)")]
    NotWasm,
    /// A core module rather than a component.
    #[error(
        "a core WebAssembly module, not a component: build the plugin for the wasm32-wasip2 \
         target (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// The component does not validate or compile.
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    /// It exports no world's interface.
    #[error(
        "implements no sync:plugin world: it exports neither `sync:plugin/client` \
         (resource-client) nor `sync:plugin/filter` (event-filter) nor \
         `sync:plugin/classifier` (resource-classifier); its exports are [{}]",
        .exports.join(", ")
    )]
    NoWorld {
        /// What it does export.
        exports: Vec<String>,
    },
    /// It exports the interfaces of more than one world.
    #[error(
        "exports the interfaces of more than one world (`sync:plugin/client`, \
         `sync:plugin/filter`, `sync:plugin/classifier`); a plugin implements exactly one"
    )]
    BothWorlds,
    /// A world's interface is there but another required export is missing.
    #[error("implements part of the {world} world but does not export `{name}`")]
    MissingExport {
        /// The world it appears to implement.
        world: World,
        /// The missing export.
        name: String,
    },
    /// Built against an incompatible version of the contract.
    #[error("built for sync:plugin@{found}, this host speaks sync:plugin@{host}")]
    IncompatibleVersion {
        /// The version in the component's interface names.
        found: String,
        /// The host's version.
        host: String,
    },
    /// Imports filesystem, sockets or wasi:http.
    #[error(
        "imports `{import}`, which plugins may not use: plugins get no filesystem, sockets \
         or wasi:http; reach endpoints through the host's `sync:plugin/http` interface instead"
    )]
    ForbiddenImport {
        /// The refused import.
        import: String,
    },
    /// Imports something the host does not provide at all.
    #[error("imports `{import}`, which this host does not provide")]
    UnknownImport {
        /// The unknown import.
        import: String,
    },
    /// Implements another world than the one required.
    #[error("implements the {found} world, but a {expected} is required here")]
    WrongWorld {
        /// The world required by the caller.
        expected: World,
        /// The world the component implements.
        found: World,
    },
}

/// Errors loading or calling a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file could not be read.
    #[error("cannot read plugin file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not a plugin this host can run.
    #[error("{source_name} is not a usable plugin")]
    Inspect {
        /// The file name or label the bytes came from.
        source_name: String,
        /// Why.
        #[source]
        error: InspectError,
    },
    /// Compiling or linking failed.
    #[error("cannot load plugin {plugin}: {message}")]
    Load {
        /// The plugin (or its file name before `describe` ran).
        plugin: String,
        /// Why.
        message: String,
    },
    /// A fresh instance could not be created.
    #[error("cannot instantiate plugin {plugin}: {message}")]
    Instantiate {
        /// The plugin.
        plugin: String,
        /// Why.
        message: String,
    },
    /// The plugin trapped (panicked, hit `unreachable`, ...).
    #[error("plugin {plugin} trapped in {function}: {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// The export being called.
        function: &'static str,
        /// The trap and what the plugin printed before it.
        message: String,
    },
    /// The call ran past its deadline.
    #[error("plugin {plugin} exceeded its {after:?} deadline in {function}")]
    DeadlineExceeded {
        /// The plugin.
        plugin: String,
        /// The export being called.
        function: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// The plugin tried to grow its memory past the cap.
    #[error("plugin {plugin} ran out of memory in {function} (limit {limit} bytes)")]
    OutOfMemory {
        /// The plugin.
        plugin: String,
        /// The export being called.
        function: &'static str,
        /// The cap, in bytes.
        limit: usize,
    },
    /// The plugin returned a different number of results than inputs.
    #[error("plugin {plugin} returned {got} results from {function} for {expected} inputs")]
    BadResultCount {
        /// The plugin.
        plugin: String,
        /// The export being called.
        function: &'static str,
        /// Results returned.
        got: usize,
        /// Inputs given.
        expected: usize,
    },
    /// An event filter refused its configuration.
    #[error("event filter {plugin} refused its configuration: {reason}")]
    Configure {
        /// The plugin.
        plugin: String,
        /// The filter's own explanation.
        reason: String,
    },
    /// The plugin implements another world than the one asked for.
    #[error("plugin {plugin} implements the {found} world, not the {expected} world")]
    WrongWorld {
        /// The plugin.
        plugin: String,
        /// The world asked for.
        expected: World,
        /// The world the plugin implements.
        found: World,
    },
}

impl PluginError {
    /// A short machine-readable name of the case, for audit records and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Read { .. } => "read",
            PluginError::Inspect { .. } => "inspect",
            PluginError::Load { .. } => "load",
            PluginError::Instantiate { .. } => "instantiate",
            PluginError::Trap { .. } => "trap",
            PluginError::DeadlineExceeded { .. } => "deadline",
            PluginError::OutOfMemory { .. } => "out-of-memory",
            PluginError::BadResultCount { .. } => "bad-result-count",
            PluginError::Configure { .. } => "configure",
            PluginError::WrongWorld { .. } => "wrong-world",
        }
    }
}

/// Errors creating the runtime itself.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The wasmtime engine could not be created with this configuration.
    #[error("cannot create the WebAssembly engine: {0}")]
    Engine(String),
    /// The compiled-artifact cache directory is unusable.
    #[error("cannot use plugin cache directory {path}")]
    CacheDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The outbound HTTP client could not be built.
    #[error("cannot build the plugin HTTP client: {0}")]
    HttpClient(String),
    /// A limit in the configuration is unusable.
    #[error("invalid runtime configuration: {0}")]
    Config(String),
}

//! The default plugins (FHIR and REST clients, category, catchment and origin
//! filters, the path classifier), compiled to wasm by the build script and
//! embedded in the binary.

include!(concat!(env!("OUT_DIR"), "/default_plugins.rs"));

/// Every default plugin as (name the configuration uses, component bytes).
pub fn default_plugins() -> &'static [(&'static str, &'static [u8])] {
    DEFAULT_PLUGINS
}

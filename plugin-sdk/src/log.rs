//! Logging into the host's log; each line is tagged with the plugin's name.
//!
//! ```no_run
//! sync_plugin_sdk::log::info("fetched 12 resources");
//! sync_plugin_sdk::log::warn(format!("skipping {}: no link", "evt-1"));
//! ```

use crate::bindings::base::sync::plugin::log::{Level, log};

/// Logs at trace level.
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message.as_ref());
}

/// Logs at debug level.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message.as_ref());
}

/// Logs at info level.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message.as_ref());
}

/// Logs at warn level.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message.as_ref());
}

/// Logs at error level.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message.as_ref());
}

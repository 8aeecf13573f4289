//! A plugin's configuration: the JSON object from the node's config, parsed into the
//! plugin's own type.

use serde::de::DeserializeOwned;

/// The configuration of a plugin that takes none: only `{}` is accepted.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// Parses a plugin configuration, naming what was wrong on failure.
pub fn parse_config<C: DeserializeOwned>(json: &str) -> Result<C, String> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|e| format!("invalid configuration: {e}"))
}

//! Event filter that keeps a catchment area, by the tags of feed events and by the content of
//! fetched resources, on pull and on push alike.
//!
//! Configuration (every field optional, but at least one of `patterns` and `keys`):
//!
//! ```json
//! {"patterns": ["Kenya%Nairobi%*%*%*"], "untagged": "accept",
//!  "keys": ["Organization/district-a", "Location/district-a-*"], "unplaced": "accept",
//!  "classify": {"fhir": {"Patient": ["managingOrganization"]}}}
//! ```
//!
//! - `patterns` match OpenMRS location paths: `%`-separated tags, bare or inside a
//!   `<feedFilter>...<filter>Kenya%Nairobi%null%Kibera%null</filter>` tag. In a pattern `*`
//!   matches any one segment; other segments compare ignoring ASCII case, and the number of
//!   segments must be equal.
//! - `keys` is a data scope like a node's `data_scope`: exact keys or patterns with `*`. An
//!   event whose tags are scope keys (a sync-host feed publishes them) is decided on them
//!   before anything is fetched; every fetched resource is then placed by its content with
//!   the node's own classification rules (`classify`, the `[classify]` table of the node's
//!   config, by default the node's default rules). A resource of a Patient's compartment
//!   inherits the keys of its Patient when the Patient is in the same batch; `unplaced` says
//!   what happens when it is not and the resource names no key in the scope itself.
//! - `untagged` is what happens to an event with neither a location tag nor a scope key
//!   when no `keys` are configured (with `keys`, the content decides).
//!
//! Location paths are matched by `patterns` only, never by `keys`: a fetched body does not
//! carry the feed-filter tag it was filed under, so `check` could not confirm them.

mod content;
mod locations;

pub use content::{ContentScope, key_of};
pub use locations::{is_location, location_of, matches};

use sync_host_scope::{Classifier, ClassifyConfig, DataScope};
use sync_plugin_sdk::{Direction, Event, EventFilter, Resource, Verdict};

/// What to do when the filter cannot tell.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Let it through (metadata such as concepts is rarely tagged).
    #[default]
    Accept,
    /// Skip it.
    Reject,
}

/// The filter's configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Location patterns; an event passes when any location tag matches any pattern.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// What to do with events without a tag, when there are no `keys`.
    #[serde(default)]
    pub untagged: Fallback,
    /// The data scope resources are placed in by content.
    #[serde(default)]
    pub keys: Vec<String>,
    /// The classification rules; the node's defaults when absent.
    #[serde(default)]
    pub classify: Option<ClassifyConfig>,
    /// What to do with a compartment resource whose Patient is not in the batch.
    #[serde(default)]
    pub unplaced: Fallback,
}

/// The configured catchment.
#[derive(Debug)]
pub struct CatchmentFilter {
    patterns: Vec<Vec<String>>,
    untagged: Fallback,
    content: Option<ContentScope>,
}

impl CatchmentFilter {
    /// Decides on an event's tags.
    pub fn decide(&self, tags: &[String]) -> Verdict {
        let (location_tags, key_tags): (Vec<&String>, Vec<&String>) =
            tags.iter().partition(|tag| is_location(tag));
        let locations: Vec<&str> = location_tags
            .iter()
            .map(|tag| location_of(tag))
            .filter(|location| !location.is_empty())
            .collect();
        if !self.patterns.is_empty() && !locations.is_empty() {
            return self.decide_locations(&locations);
        }
        if let Some(content) = &self.content {
            let keys = key_tags
                .iter()
                .map(|tag| tag.trim())
                .filter(|k| !k.is_empty());
            return content.decide_tags(keys).unwrap_or(Verdict::Accept);
        }
        match self.untagged {
            Fallback::Accept => Verdict::Accept,
            Fallback::Reject => {
                Verdict::Reject("the event has no location tag and untagged is \"reject\"".into())
            }
        }
    }

    fn decide_locations(&self, locations: &[&str]) -> Verdict {
        let hit = locations
            .iter()
            .any(|location| self.patterns.iter().any(|p| matches(p, location)));
        if hit {
            Verdict::Accept
        } else {
            Verdict::Reject(format!(
                "location {} matches no catchment pattern",
                locations.join(", ")
            ))
        }
    }
}

fn content_scope(config: &Config) -> Result<Option<ContentScope>, String> {
    if config.keys.is_empty() {
        if config.classify.is_some() {
            return Err("classify is set but keys is empty: list the scope keys to keep".into());
        }
        return Ok(None);
    }
    let scope = DataScope::new(&config.keys).map_err(|error| format!("keys: {error}"))?;
    let classifier = match &config.classify {
        Some(rules) => Classifier::new(rules).map_err(|error| format!("classify.{error}"))?,
        None => Classifier::standard(),
    };
    Ok(Some(ContentScope {
        scope,
        classifier,
        unplaced: config.unplaced,
    }))
}

impl EventFilter for CatchmentFilter {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.patterns.is_empty() && config.keys.is_empty() {
            return Err(
                "patterns and keys are both empty: list location patterns, scope keys, or both"
                    .to_string(),
            );
        }
        Ok(CatchmentFilter {
            patterns: locations::split_patterns(&config.patterns),
            untagged: config.untagged,
            content: content_scope(&config)?,
        })
    }

    fn accept(&self, _direction: Direction, event: &Event) -> Verdict {
        self.decide(&event.tags)
    }

    fn check(&self, direction: Direction, resource: &Resource) -> Verdict {
        let mut verdicts = self.check_all(direction, std::slice::from_ref(resource));
        verdicts.pop().unwrap_or(Verdict::Accept)
    }

    fn check_all(&self, _direction: Direction, resources: &[Resource]) -> Vec<Verdict> {
        match &self.content {
            Some(content) => content.decide_batch(resources),
            None => vec![Verdict::Accept; resources.len()],
        }
    }
}

sync_plugin_sdk::export_event_filter!(CatchmentFilter);

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;

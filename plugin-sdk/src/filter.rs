//! Writing an event filter: the [`EventFilter`] trait and its export macro.

use std::sync::RwLock;

use serde::de::DeserializeOwned;

use crate::types::{Direction, Event, Resource, Verdict};

/// A plugin that decides which events and resources a node syncs.
///
/// The host configures a filter once, from the JSON object in the node's
/// configuration (`{}` when there is none), before any other call.
///
/// ```no_run
/// use sync_plugin_sdk::{Direction, Event, EventFilter, Verdict};
///
/// #[derive(serde::Deserialize)]
/// struct Config { category: String }
///
/// struct OnlyOne(Config);
///
/// impl EventFilter for OnlyOne {
///     type Config = Config;
///     fn new(config: Config) -> Result<Self, String> { Ok(OnlyOne(config)) }
///     fn accept(&self, _direction: Direction, event: &Event) -> Verdict {
///         if event.category == self.0.category {
///             Verdict::Accept
///         } else {
///             Verdict::Reject(format!("category {} is not {}", event.category, self.0.category))
///         }
///     }
/// }
///
/// sync_plugin_sdk::export_event_filter!(OnlyOne);
/// ```
pub trait EventFilter: Sized + Send + Sync + 'static {
    /// The configuration, deserialised from the node's JSON. Use
    /// [`NoConfig`] for a filter that takes none.
    type Config: DeserializeOwned;

    /// Builds the filter; an error stops the node and is shown to the operator.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// Decides on one event before anything is fetched.
    fn accept(&self, direction: Direction, event: &Event) -> Verdict;

    /// Decides on one fetched resource before it is stored. Accepts by default.
    fn check(&self, direction: Direction, resource: &Resource) -> Verdict {
        let _ = (direction, resource);
        Verdict::Accept
    }

    /// Decides on a batch of events, one verdict per event.
    fn accept_all(&self, direction: Direction, events: &[Event]) -> Vec<Verdict> {
        events.iter().map(|e| self.accept(direction, e)).collect()
    }

    /// Decides on a batch of resources, one verdict per resource.
    fn check_all(&self, direction: Direction, resources: &[Resource]) -> Vec<Verdict> {
        resources.iter().map(|r| self.check(direction, r)).collect()
    }
}

pub use crate::config::{NoConfig, parse_config};

/// Holds the configured filter of a component instance. Used by
/// [`export_event_filter!`](crate::export_event_filter); not public API.
#[doc(hidden)]
pub struct FilterSlot<T>(RwLock<Option<T>>);

impl<T: EventFilter> FilterSlot<T> {
    /// An empty slot, filled by `configure`.
    pub const fn new() -> Self {
        FilterSlot(RwLock::new(None))
    }

    /// Parses `json` and replaces the filter.
    pub fn configure(&self, json: &str) -> Result<(), String> {
        let filter = T::new(parse_config(json)?)?;
        // A poisoned lock means an earlier call panicked; wasm aborts on panic,
        // so the value inside is still the last complete write.
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(filter);
        Ok(())
    }

    /// Runs `decide` with the configured filter, or rejects every input when
    /// the host skipped `configure`.
    pub fn with(&self, count: usize, decide: impl FnOnce(&T) -> Vec<Verdict>) -> Vec<Verdict> {
        let guard = self.0.read().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(filter) => decide(filter),
            None => (0..count)
                .map(|_| Verdict::Reject("filter called before configure".to_string()))
                .collect(),
        }
    }
}

impl<T: EventFilter> Default for FilterSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Exports an [`EventFilter`] implementation as the plugin's component.
///
/// `describe` answers with the name, version and description from the
/// plugin crate's `Cargo.toml`. Use it once, in the plugin's `lib.rs`.
#[macro_export]
macro_rules! export_event_filter {
    ($ty:ty) => {
        const _: () = {
            static SLOT: $crate::filter::FilterSlot<$ty> = $crate::filter::FilterSlot::new();

            struct SyncPluginExport;

            impl $crate::bindings::event_filter::Guest for SyncPluginExport {
                fn describe() -> $crate::PluginInfo {
                    $crate::PluginInfo::new(
                        env!("CARGO_PKG_NAME"),
                        env!("CARGO_PKG_VERSION"),
                        env!("CARGO_PKG_DESCRIPTION"),
                    )
                }
            }

            impl $crate::bindings::event_filter::exports::sync::plugin::filter::Guest
                for SyncPluginExport
            {
                fn configure(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    SLOT.configure(&config)
                }

                fn accept(
                    direction: $crate::Direction,
                    events: ::std::vec::Vec<$crate::Event>,
                ) -> ::std::vec::Vec<$crate::Verdict> {
                    SLOT.with(events.len(), |f: &$ty| {
                        <$ty as $crate::EventFilter>::accept_all(f, direction, &events)
                    })
                }

                fn check(
                    direction: $crate::Direction,
                    resources: ::std::vec::Vec<$crate::Resource>,
                ) -> ::std::vec::Vec<$crate::Verdict> {
                    SLOT.with(resources.len(), |f: &$ty| {
                        <$ty as $crate::EventFilter>::check_all(f, direction, &resources)
                    })
                }
            }

            // Native builds (unit tests of a plugin crate) only type-check the
            // exports: the component ABI symbols exist only on wasm.
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::event_filter::export_raw!(
                SyncPluginExport with_types_in $crate::bindings::event_filter
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Limit {
        max: usize,
    }

    #[test]
    fn empty_configuration_means_an_empty_object() {
        assert!(parse_config::<NoConfig>("").is_ok());
        assert!(parse_config::<NoConfig>("{}").is_ok());
    }

    #[test]
    fn configuration_errors_name_the_field() {
        let error = parse_config::<Limit>(r#"{"maxx": 3}"#)
            .err()
            .unwrap_or_default();
        assert!(error.contains("max"), "{error}");
        assert!(parse_config::<NoConfig>(r#"{"x":1}"#).is_err());
        assert_eq!(parse_config::<Limit>(r#"{"max": 3}"#).map(|l| l.max), Ok(3));
    }
}

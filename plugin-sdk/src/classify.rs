//! Writing a classifier: the [`Classifier`] trait and its export macro.

use std::sync::RwLock;

use serde::de::DeserializeOwned;

use crate::bindings::resource_classifier::exports::sync::plugin::classifier::{
    Document, Family, Placement,
};
use crate::config::parse_config;

/// A plugin that says where each resource a node writes belongs: the scope keys it names
/// and the Patient whose compartment it is in. The node stores the answer with the version
/// and shows a client confined to a data scope only what its scope admits.
///
/// The host configures a classifier once, from the JSON object of the node's `[classify]`
/// table (`{}` when there is none), before any other call.
///
/// ```no_run
/// use sync_plugin_sdk::{Classifier, Document, NoConfig, Placement};
///
/// struct ByIdPrefix;
///
/// impl Classifier for ByIdPrefix {
///     type Config = NoConfig;
///     fn new(_config: NoConfig) -> Result<Self, String> { Ok(ByIdPrefix) }
///     fn classify(&self, document: &Document) -> Placement {
///         let site = document.resource.id.split('-').next().unwrap_or_default();
///         Placement { scoped: true, keys: vec![format!("Location/{site}")], owner: None }
///     }
/// }
///
/// sync_plugin_sdk::export_classifier!(ByIdPrefix);
/// ```
pub trait Classifier: Sized + Send + Sync + 'static {
    /// The configuration, deserialised from the node's JSON. Use [`crate::NoConfig`] for a
    /// classifier that takes none.
    type Config: DeserializeOwned;

    /// Builds the classifier from its configuration; an error stops the node from starting.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// Where one document belongs.
    fn classify(&self, document: &Document) -> Placement;

    /// Where each document of a batch belongs, one placement per document.
    fn classify_all(&self, documents: &[Document]) -> Vec<Placement> {
        documents.iter().map(|d| self.classify(d)).collect()
    }
}

/// What a classifier that was never configured answers: scoped with no keys, so no scoped
/// client sees the resource.
fn unplaced() -> Placement {
    Placement {
        scoped: true,
        keys: Vec::new(),
        owner: None,
    }
}

/// Holds the configured classifier of a component instance. Used by
/// [`export_classifier!`](crate::export_classifier); not public API.
#[doc(hidden)]
pub struct ClassifierSlot<T>(RwLock<Option<T>>);

impl<T: Classifier> ClassifierSlot<T> {
    /// An empty slot, filled by `configure`.
    pub const fn new() -> Self {
        ClassifierSlot(RwLock::new(None))
    }

    /// Parses `json` and replaces the classifier.
    pub fn configure(&self, json: &str) -> Result<(), String> {
        let classifier = T::new(parse_config(json)?)?;
        // A poisoned lock means an earlier call panicked; wasm aborts on panic, so the value
        // inside is still the last complete write.
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(classifier);
        Ok(())
    }

    /// Classifies `documents` with the configured classifier; unconfigured, places each as
    /// [`unplaced`].
    pub fn classify(&self, documents: &[Document]) -> Vec<Placement> {
        let guard = self.0.read().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(classifier) => classifier.classify_all(documents),
            None => documents.iter().map(|_| unplaced()).collect(),
        }
    }
}

impl<T: Classifier> Default for ClassifierSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl Family {
    /// `"fhir"` or `"rest"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Fhir => "fhir",
            Family::Rest => "rest",
        }
    }
}

/// Exports a [`Classifier`] implementation as the plugin's component.
///
/// `describe` answers with the name, version and description from the plugin crate's
/// `Cargo.toml`. Use it once, in the plugin's `lib.rs`.
#[macro_export]
macro_rules! export_classifier {
    ($ty:ty) => {
        const _: () = {
            static SLOT: $crate::classify::ClassifierSlot<$ty> =
                $crate::classify::ClassifierSlot::new();

            struct SyncPluginExport;

            impl $crate::bindings::resource_classifier::Guest for SyncPluginExport {
                fn describe() -> $crate::PluginInfo {
                    $crate::PluginInfo::new(
                        env!("CARGO_PKG_NAME"),
                        env!("CARGO_PKG_VERSION"),
                        env!("CARGO_PKG_DESCRIPTION"),
                    )
                }
            }

            impl $crate::bindings::resource_classifier::exports::sync::plugin::classifier::Guest
                for SyncPluginExport
            {
                fn configure(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    SLOT.configure(&config)
                }

                fn classify(
                    documents: ::std::vec::Vec<$crate::Document>,
                ) -> ::std::vec::Vec<$crate::Placement> {
                    SLOT.classify(&documents)
                }
            }

            // Native builds (unit tests of a plugin crate) only type-check the exports: the
            // component ABI symbols exist only on wasm.
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::resource_classifier::export_raw!(
                SyncPluginExport with_types_in $crate::bindings::resource_classifier
            );
        };
    };
}

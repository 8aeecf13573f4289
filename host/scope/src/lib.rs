//! Data scopes without I/O: where a resource belongs (its scope keys and the Patient whose
//! compartment it is in) and which keys a scope admits.
//!
//! The node's store classifies every version it writes with these rules and enforces a
//! client's scope with them; a filter plugin compiled to WebAssembly places fetched resources
//! with the very same code, so both ends of a sync agree on where a resource belongs.

mod classify;
mod data_scope;
mod key;

pub use classify::{
    Classification, Classifier, Classify, ClassifyConfig, MAX_PATH_STEPS, PathError,
};
pub use data_scope::{DataScope, MAX_PATTERNS, ScopeError, matches};
pub use key::{Kind, MAX_PLACEMENT_KEYS, Placement, ResourceKey, location_path};

/// Whether resources of this type own a compartment: a FHIR `Patient` or a REST `patient`.
/// Resources of the compartment inherit its keys.
pub fn is_compartment_owner(resource_type: &str) -> bool {
    resource_type == "Patient" || resource_type == "patient"
}

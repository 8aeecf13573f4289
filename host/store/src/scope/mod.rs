//! Data scopes: which places each stored version belongs to (classification at write time)
//! and which of them a scoped client may see. A parent enforces a child's scope on every
//! endpoint: versions outside it are answered as if they did not exist.

mod classify;
mod data_scope;

pub use classify::{Classification, Classifier, ClassifyConfig, MAX_PATH_STEPS, PathError};
pub use data_scope::{DataScope, MAX_PATTERNS, ScopeError, matches};

/// Whether resources of this type own a compartment: a FHIR `Patient` or a REST `patient`.
/// Resources of the compartment inherit its keys.
pub fn is_compartment_owner(resource_type: &str) -> bool {
    resource_type == "Patient" || resource_type == "patient"
}

//! Data scopes: which places each stored version belongs to (classification at write time)
//! and which of them a scoped client may see. A parent enforces a child's scope on every
//! endpoint: versions outside it are answered as if they did not exist. The rules themselves
//! live in `sync-host-scope`, shared with the filter plugins.

pub use sync_host_scope::{
    Classification, Classifier, Classify, ClassifyConfig, DataScope, MAX_PATH_STEPS, MAX_PATTERNS,
    PathError, ScopeError, is_compartment_owner, location_path, matches,
};

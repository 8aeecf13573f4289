//! The embedded node store of sync-host: FHIR R4 resources and REST documents in sled, each write
//! logged to a change log that is published as an Atom feed over HTTP.

pub mod api;
pub mod auth;
pub mod config;
#[doc(hidden)]
pub mod fuzz_checks;
pub mod hash;
pub mod json;
pub mod scope;
pub mod snapshot;
pub mod store;

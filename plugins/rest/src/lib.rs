//! The OpenMRS REST resource client, a default sync-host plugin, for
//! resource types without a FHIR representation.
//!
//! `fetch` reads `ws/rest/v1/{resource}/{uuid}?v=full` documents
//! concurrently and returns their bodies byte for byte. `store` updates,
//! creates on 404 (keeping the uuid) and deletes. The resource type is the
//! REST resource name (`patient`, `location`, ...).

mod errors;
mod fetch;
mod location;
mod store;

use sync_plugin_sdk::{Endpoint, Event, Failure, Resource, ResourceClient, Stored, Write};

/// The REST client.
pub struct RestClient;

impl ResourceClient for RestClient {
    fn fetch(source: &Endpoint, events: &[Event]) -> Vec<Result<Resource, Failure>> {
        fetch::fetch(source, events)
    }

    fn store(target: &Endpoint, writes: &[Write]) -> Vec<Result<Stored, Failure>> {
        store::store(target, writes)
    }
}

sync_plugin_sdk::export_resource_client!(RestClient);

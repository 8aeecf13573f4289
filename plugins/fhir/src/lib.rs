//! The FHIR R4 resource client, a default sync-host plugin.
//!
//! `fetch` turns a batch of events into one `_id` search per resource type
//! (plus individual reads only for ids the search did not return, to tell
//! 404 from 410) and returns every body byte for byte as the server sent it.
//! `store` sends conditional `PUT`s and `DELETE`s concurrently. Statuses map
//! to failures as the host expects; OperationOutcome text becomes the message.

mod fetch;
mod location;
mod outcome;
mod search;
mod store;

use sync_plugin_sdk::{Endpoint, Event, Failure, Resource, ResourceClient, Stored, Write};

/// The FHIR client.
pub struct FhirClient;

impl ResourceClient for FhirClient {
    fn fetch(source: &Endpoint, events: &[Event]) -> Vec<Result<Resource, Failure>> {
        fetch::fetch(source, events)
    }

    fn store(target: &Endpoint, writes: &[Write]) -> Vec<Result<Stored, Failure>> {
        store::store(target, writes)
    }
}

sync_plugin_sdk::export_resource_client!(FhirClient);

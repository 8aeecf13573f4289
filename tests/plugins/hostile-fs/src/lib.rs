//! A resource client that reads `/etc/passwd`: its component imports
//! `wasi:filesystem`, which the host must refuse at load time.

use sync_plugin_sdk::{Endpoint, Event, Failure, Resource, ResourceClient};

/// Reads a host file on every fetch.
pub struct ReadsFiles;

impl ResourceClient for ReadsFiles {
    fn fetch_one(_source: &Endpoint, event: &Event) -> Result<Resource, Failure> {
        let body =
            std::fs::read_to_string("/etc/passwd").map_err(|e| Failure::invalid(e.to_string()))?;
        Ok(Resource {
            resource_type: event.resource_type.clone(),
            id: event.resource_id.clone(),
            version: None,
            body,
            deleted: false,
        })
    }
}

sync_plugin_sdk::export_resource_client!(ReadsFiles);

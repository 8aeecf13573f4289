//! Writing a resource client: the [`ResourceClient`] trait and its export macro.

use crate::types::{Endpoint, Event, Failure, Resource, Stored, Write};

/// A plugin that fetches resources from, and stores them to, an endpoint.
///
/// Implement the batch methods to turn a feed page into few HTTP requests,
/// or only the per-item ones and let the defaults loop. Every method returns
/// one result per input, in input order.
///
/// ```no_run
/// use sync_plugin_sdk::{Endpoint, Event, Failure, Resource, ResourceClient, http};
///
/// struct Echo;
///
/// impl ResourceClient for Echo {
///     fn fetch_one(source: &Endpoint, event: &Event) -> Result<Resource, Failure> {
///         let url = format!("{}/docs/{}", source.base_url, event.resource_id);
///         let response = http::get(&url, &[])?;
///         if !response.is_success() {
///             return Err(Failure::from_status(response.status, response.text()));
///         }
///         Ok(Resource {
///             resource_type: event.resource_type.clone(),
///             id: event.resource_id.clone(),
///             version: response.header("etag").map(str::to_string),
///             body: response.text(),
///             deleted: false,
///         })
///     }
/// }
///
/// sync_plugin_sdk::export_resource_client!(Echo);
/// ```
pub trait ResourceClient {
    /// Fetches the resource one event points to. The default refuses, for
    /// clients that implement [`ResourceClient::fetch`] directly.
    fn fetch_one(source: &Endpoint, event: &Event) -> Result<Resource, Failure> {
        let _ = source;
        Err(Failure::invalid(format!(
            "this client cannot fetch {} {}",
            event.resource_type, event.resource_id
        )))
    }

    /// Fetches the resources a batch of events points to, one result per event.
    fn fetch(source: &Endpoint, events: &[Event]) -> Vec<Result<Resource, Failure>> {
        events
            .iter()
            .map(|event| Self::fetch_one(source, event))
            .collect()
    }

    /// Writes one resource. The default refuses: a read-only client.
    fn store_one(target: &Endpoint, write: &Write) -> Result<Stored, Failure> {
        let _ = target;
        Err(Failure::invalid(format!(
            "this client cannot store {} {}",
            write.resource.resource_type, write.resource.id
        )))
    }

    /// Writes a batch of resources, one result per write.
    fn store(target: &Endpoint, writes: &[Write]) -> Vec<Result<Stored, Failure>> {
        writes
            .iter()
            .map(|write| Self::store_one(target, write))
            .collect()
    }
}

/// Exports a [`ResourceClient`] implementation as the plugin's component.
///
/// `describe` answers with the name, version and description from the
/// plugin crate's `Cargo.toml`. Use it once, in the plugin's `lib.rs`.
#[macro_export]
macro_rules! export_resource_client {
    ($ty:ty) => {
        const _: () = {
            struct SyncPluginExport;

            impl $crate::bindings::resource_client::Guest for SyncPluginExport {
                fn describe() -> $crate::PluginInfo {
                    $crate::PluginInfo::new(
                        env!("CARGO_PKG_NAME"),
                        env!("CARGO_PKG_VERSION"),
                        env!("CARGO_PKG_DESCRIPTION"),
                    )
                }
            }

            impl $crate::bindings::resource_client::exports::sync::plugin::client::Guest
                for SyncPluginExport
            {
                fn fetch(
                    source: $crate::Endpoint,
                    events: ::std::vec::Vec<$crate::Event>,
                ) -> ::std::vec::Vec<::std::result::Result<$crate::Resource, $crate::Failure>>
                {
                    <$ty as $crate::ResourceClient>::fetch(&source, &events)
                }

                fn store(
                    target: $crate::Endpoint,
                    writes: ::std::vec::Vec<$crate::Write>,
                ) -> ::std::vec::Vec<::std::result::Result<$crate::Stored, $crate::Failure>>
                {
                    <$ty as $crate::ResourceClient>::store(&target, &writes)
                }
            }

            // Native builds (unit tests of a plugin crate) only type-check the
            // exports: the component ABI symbols exist only on wasm.
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::resource_client::export_raw!(
                SyncPluginExport with_types_in $crate::bindings::resource_client
            );
        };
    };
}

//! Generated bindings for the `sync:plugin` WIT package.
//!
//! The shared interfaces (`types`, `http`, `log`) are generated once, from a
//! small world that only imports them. Each plugin world is generated behind
//! its own cargo feature and reuses those interfaces through `with`, so a
//! plugin only embeds the world it implements: a component whose module does
//! not export every function of every embedded world would fail to build.
//!
//! `wit/` in this crate is a link to the repository's `wit/`, so the
//! packaged crate carries the contract it was built against.
// Generated code: its unsafe glue and lints are the generator's, not ours.
#![allow(missing_docs, unsafe_code, clippy::all, clippy::mem_forget)]

/// The interfaces every plugin world shares.
pub mod base {
    wit_bindgen::generate!({
        path: "wit",
        inline: r#"
            package sync:plugin-sdk;
            world base {
                import sync:plugin/types@0.1.1;
                import sync:plugin/http@0.1.1;
                import sync:plugin/log@0.1.1;
            }
        "#,
        world: "sync:plugin-sdk/base",
        generate_all,
        generate_unused_types: true,
        additional_derives: [PartialEq, Eq],
    });
}

/// The `resource-client` world: exports `describe` and `client`.
#[cfg(feature = "resource-client")]
pub mod resource_client {
    wit_bindgen::generate!({
        path: "wit",
        world: "sync:plugin/resource-client@0.1.1",
        with: {
            "sync:plugin/types@0.1.1": crate::bindings::base::sync::plugin::types,
            "sync:plugin/http@0.1.1": crate::bindings::base::sync::plugin::http,
            "sync:plugin/log@0.1.1": crate::bindings::base::sync::plugin::log,
            "sync:plugin/client@0.1.1": generate,
        },
        pub_export_macro: true,
        export_macro_name: "export_raw",
        default_bindings_module: "::sync_plugin_sdk::bindings::resource_client",
    });
}

/// The `event-filter` world: exports `describe` and `filter`.
#[cfg(feature = "event-filter")]
pub mod event_filter {
    wit_bindgen::generate!({
        path: "wit",
        world: "sync:plugin/event-filter@0.1.1",
        with: {
            "sync:plugin/types@0.1.1": crate::bindings::base::sync::plugin::types,
            "sync:plugin/log@0.1.1": crate::bindings::base::sync::plugin::log,
            "sync:plugin/filter@0.1.1": generate,
        },
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        export_macro_name: "export_raw",
        default_bindings_module: "::sync_plugin_sdk::bindings::event_filter",
    });
}

/// The `resource-classifier` world: exports `describe` and `classifier`.
#[cfg(feature = "classifier")]
pub mod resource_classifier {
    wit_bindgen::generate!({
        path: "wit",
        world: "sync:plugin/resource-classifier@0.1.1",
        with: {
            "sync:plugin/types@0.1.1": crate::bindings::base::sync::plugin::types,
            "sync:plugin/log@0.1.1": crate::bindings::base::sync::plugin::log,
            "sync:plugin/classifier@0.1.1": generate,
        },
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        export_macro_name: "export_raw",
        default_bindings_module: "::sync_plugin_sdk::bindings::resource_classifier",
    });
}

//! An event filter exactly as a plugin author built it against `sync:plugin@0.1.0`: it
//! rejects the events and resources whose id starts with `reject-`, and says so.
// Generated code: its unsafe glue and lints are the generator's, not ours.
#![allow(unsafe_code, clippy::all, clippy::mem_forget)]

wit_bindgen::generate!({
    path: "wit",
    world: "sync:plugin/event-filter@0.1.0",
});

use exports::sync::plugin::filter::{Guest as Filter, Verdict};
use sync::plugin::types::{Direction, Event, Resource};

struct Legacy;

fn decide(id: &str) -> Verdict {
    if id.starts_with("reject-") {
        Verdict::Reject(format!("{id} is rejected by the 0.1.0 filter"))
    } else {
        Verdict::Accept
    }
}

impl Guest for Legacy {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
        }
    }
}

impl Filter for Legacy {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn accept(_direction: Direction, events: Vec<Event>) -> Vec<Verdict> {
        events.iter().map(|e| decide(&e.resource_id)).collect()
    }

    fn check(_direction: Direction, resources: Vec<Resource>) -> Vec<Verdict> {
        resources.iter().map(|r| decide(&r.id)).collect()
    }
}

#[cfg(target_arch = "wasm32")]
export!(Legacy);

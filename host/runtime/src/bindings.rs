//! Generated bindings for the `sync:plugin` worlds, and the one place where they
//! are converted to and from the plain [`crate::types`].
//!
//! Nothing generated here leaves the crate: callers see only `crate::types`.

use crate::types as plain;

mod client_world {
    wasmtime::component::bindgen!({
        world: "resource-client",
        path: "../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

mod filter_world {
    wasmtime::component::bindgen!({
        world: "event-filter",
        path: "../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "sync:plugin/types": super::client_world::sync::plugin::types,
            "sync:plugin/log": super::client_world::sync::plugin::log,
        },
    });
}

mod classifier_world {
    wasmtime::component::bindgen!({
        world: "resource-classifier",
        path: "../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "sync:plugin/types": super::client_world::sync::plugin::types,
            "sync:plugin/log": super::client_world::sync::plugin::log,
        },
    });
}

pub(crate) use classifier_world::ResourceClassifier as ClassifierBindings;
pub(crate) use classifier_world::ResourceClassifierPre as ClassifierPre;
use classifier_world::exports::sync::plugin::classifier as wit_classifier;
pub(crate) use client_world::ResourceClient as ClientBindings;
pub(crate) use client_world::ResourceClientPre as ClientPre;
pub(crate) use client_world::sync::plugin::http;
pub(crate) use client_world::sync::plugin::log;
pub(crate) use client_world::sync::plugin::types as wit;
pub(crate) use filter_world::EventFilter as FilterBindings;
pub(crate) use filter_world::EventFilterPre as FilterPre;

/// Adds the host's `sync:plugin` imports (`http`, `log`, `types`) to a linker.
pub(crate) fn add_plugin_imports<T>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()>
where
    T: http::Host + log::Host + wit::Host + Send + 'static,
{
    client_world::ResourceClient::add_to_linker::<T, wasmtime::component::HasSelf<T>>(
        linker,
        |state| state,
    )
}

impl From<plain::Direction> for filter_world::sync::plugin::types::Direction {
    fn from(direction: plain::Direction) -> Self {
        match direction {
            plain::Direction::Pull => Self::Pull,
            plain::Direction::Push => Self::Push,
        }
    }
}

impl From<&plain::Endpoint> for wit::Endpoint {
    fn from(endpoint: &plain::Endpoint) -> Self {
        Self {
            role: match endpoint.role {
                plain::Role::Parent => wit::Role::Parent,
                plain::Role::Local => wit::Role::Local,
            },
            base_url: endpoint.base_url.clone(),
        }
    }
}

fn action_to_wit(action: plain::Action) -> wit::Action {
    match action {
        plain::Action::Created => wit::Action::Created,
        plain::Action::Updated => wit::Action::Updated,
        plain::Action::Deleted => wit::Action::Deleted,
        plain::Action::Voided => wit::Action::Voided,
        plain::Action::Unvoided => wit::Action::Unvoided,
        plain::Action::Retired => wit::Action::Retired,
        plain::Action::Unretired => wit::Action::Unretired,
        plain::Action::Purged => wit::Action::Purged,
    }
}

impl From<&plain::Event> for wit::Event {
    fn from(event: &plain::Event) -> Self {
        Self {
            id: event.id.clone(),
            sequence: event.sequence,
            category: event.category.clone(),
            action: action_to_wit(event.action),
            resource_type: event.resource_type.clone(),
            resource_id: event.resource_id.clone(),
            links: event
                .links
                .iter()
                .map(|link| wit::Link {
                    client: link.client.clone(),
                    href: link.href.clone(),
                })
                .collect(),
            tags: event.tags.clone(),
            origin: event.origin.clone(),
            version: event.version.clone(),
            content_hash: event.content_hash.clone(),
            raw: event.raw.clone(),
        }
    }
}

impl From<&plain::Resource> for wit::Resource {
    fn from(resource: &plain::Resource) -> Self {
        Self {
            resource_type: resource.resource_type.clone(),
            id: resource.id.clone(),
            version: resource.version.clone(),
            body: resource.body.clone(),
            deleted: resource.deleted,
        }
    }
}

impl From<wit::Resource> for plain::Resource {
    fn from(resource: wit::Resource) -> Self {
        Self {
            resource_type: resource.resource_type,
            id: resource.id,
            version: resource.version,
            body: resource.body,
            deleted: resource.deleted,
        }
    }
}

impl From<&plain::Write> for wit::Write {
    fn from(write: &plain::Write) -> Self {
        Self {
            resource: (&write.resource).into(),
            expected_version: write.expected_version.clone(),
            origin: write.origin.clone(),
        }
    }
}

impl From<wit::Stored> for plain::Stored {
    fn from(stored: wit::Stored) -> Self {
        Self {
            resource_type: stored.resource_type,
            id: stored.id,
            version: stored.version,
            outcome: match stored.outcome {
                wit::WriteOutcome::Created => plain::WriteOutcome::Created,
                wit::WriteOutcome::Updated => plain::WriteOutcome::Updated,
                wit::WriteOutcome::Unchanged => plain::WriteOutcome::Unchanged,
                wit::WriteOutcome::Deleted => plain::WriteOutcome::Deleted,
            },
        }
    }
}

fn detail(detail: wit::FailureDetail) -> plain::FailureDetail {
    plain::FailureDetail {
        status: detail.status,
        message: detail.message,
    }
}

impl From<wit::Failure> for plain::Failure {
    fn from(failure: wit::Failure) -> Self {
        match failure {
            wit::Failure::NotFound(d) => Self::NotFound(detail(d)),
            wit::Failure::Gone(d) => Self::Gone(detail(d)),
            wit::Failure::Conflict(d) => Self::Conflict(detail(d)),
            wit::Failure::Unauthorized(d) => Self::Unauthorized(detail(d)),
            wit::Failure::Invalid(d) => Self::Invalid(detail(d)),
            wit::Failure::Transient(d) => Self::Transient(detail(d)),
        }
    }
}

impl From<filter_world::exports::sync::plugin::filter::Verdict> for plain::Verdict {
    fn from(verdict: filter_world::exports::sync::plugin::filter::Verdict) -> Self {
        use filter_world::exports::sync::plugin::filter::Verdict as WitVerdict;
        match verdict {
            WitVerdict::Accept => Self::Accept,
            WitVerdict::Reject(reason) => Self::Reject(reason),
        }
    }
}

impl From<wit::PluginInfo> for plain::PluginInfo {
    fn from(info: wit::PluginInfo) -> Self {
        Self {
            name: info.name,
            version: info.version,
            description: info.description,
        }
    }
}

impl From<&plain::Document> for wit_classifier::Document {
    fn from(document: &plain::Document) -> Self {
        Self {
            family: match document.family {
                plain::Family::Fhir => wit_classifier::Family::Fhir,
                plain::Family::Rest => wit_classifier::Family::Rest,
            },
            resource: (&document.resource).into(),
        }
    }
}

impl From<wit_classifier::Placement> for plain::Placed {
    fn from(placement: wit_classifier::Placement) -> Self {
        Self {
            scoped: placement.scoped,
            keys: placement.keys,
            owner: placement.owner,
        }
    }
}

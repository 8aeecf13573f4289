//! This node's own data scope for a direction (`[sync.pull]`/`[sync.push]` `data_scope`): the
//! check stage's first step, placing each fetched resource by this node's own rules.

use std::collections::HashMap;

use sync_host_runtime::Resource;
use sync_host_store::scope::is_compartment_owner;
use sync_host_store::store::{Placement, ResourceKey, Store, StoreError};

use crate::state::StateError;
use crate::sync::candidate::Fetched;
use crate::sync::link::Link;
use crate::sync::outcome::{AuditContext, BatchBuilder};
use crate::sync::retry::FailureKind;

/// The resources this node's own data scope for the direction admits, placed by its own rules
/// (and, for a compartment, by its Patient as this node holds it). Deletes pass: the other
/// side decides about a resource it holds. A resource that cannot be placed fails alone.
pub fn within(
    p: &Link,
    fetched: Vec<Fetched>,
    ctx: &AuditContext,
    out: &mut BatchBuilder<'_>,
) -> Result<Vec<Fetched>, StateError> {
    let Some((scope, store)) = &p.own_scope else {
        return Ok(fetched);
    };
    // A Patient fetched in the same batch places its compartment as it will once stored.
    let batch_owners: HashMap<ResourceKey, Vec<String>> = fetched
        .iter()
        .filter(|f| !f.resource.deleted && is_compartment_owner(&f.resource.resource_type))
        .map(|f| {
            let key = resource_key(&f.resource);
            let keys = store.classify(&key, &f.resource.body).keys;
            (key, keys.into_iter().collect())
        })
        .collect();
    let mut kept = Vec::with_capacity(fetched.len());
    for f in fetched {
        if f.resource.deleted {
            kept.push(f);
            continue;
        }
        let key = resource_key(&f.resource);
        let supplied = crate::sync::event::supplied_keys(&f.event);
        match own_placement(store, &key, &f.resource.body, &supplied, &batch_owners) {
            Ok(placement) if scope.admits(&placement) => kept.push(f),
            Ok(_) => {
                let reason = format!("outside [sync.{}] data_scope", p.direction.name());
                out.filtered(&f.event, OWN_SCOPE, &reason);
            }
            Err(e) => {
                let message = format!("cannot place the resource for the data scope: {e}");
                out.failed_with(&f.event, ctx, FailureKind::Transient, None, &message)?;
            }
        }
    }
    Ok(kept)
}

/// Where `body` will be placed here: this node's classification and the keys its event
/// `supplied` (feed-filter tags), with the keys of its Patient as fetched in the same batch
/// or as this node holds it.
fn own_placement(
    store: &Store,
    key: &ResourceKey,
    body: &str,
    supplied: &[String],
    batch_owners: &HashMap<ResourceKey, Vec<String>>,
) -> Result<Placement, StoreError> {
    let own = store.classify(key, body);
    let owner_keys = match &own.owner {
        Some(owner) => match batch_owners.get(owner) {
            Some(keys) => Some(keys.clone()),
            None => store.placement_keys(owner)?,
        },
        None => None,
    };
    Ok(Placement::of(
        &own,
        supplied,
        owner_keys.unwrap_or_default(),
    ))
}

/// The name an own-scope rejection is audited under.
const OWN_SCOPE: &str = "data-scope";

/// The store key of a resource a plugin returned: FHIR types are capitalised, OpenMRS REST
/// resource names are not.
fn resource_key(resource: &Resource) -> ResourceKey {
    if resource
        .resource_type
        .starts_with(|c: char| c.is_ascii_uppercase())
    {
        ResourceKey::fhir(&resource.resource_type, &resource.id)
    } else {
        ResourceKey::rest(&resource.resource_type, &resource.id)
    }
}

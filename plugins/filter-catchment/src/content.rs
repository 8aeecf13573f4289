//! Placing resources by their content with the node's own classification rules
//! (`sync-host-scope`): the scope keys a resource names, or those of the Patient whose
//! compartment it is in, against the configured scope.

use std::collections::{BTreeSet, HashMap};

use sync_host_scope::{Classification, Classifier, DataScope, Kind, ResourceKey};
use sync_plugin_sdk::{Resource, Verdict};

use crate::Fallback;

/// The scope and the rules that place resources in it.
#[derive(Debug)]
pub struct ContentScope {
    pub scope: DataScope,
    pub classifier: Classifier,
    /// What to do with a compartment resource whose own keys miss the scope and whose Patient
    /// is not in the same batch, so its inherited keys are unknown here.
    pub unplaced: Fallback,
}

/// FHIR types are written in PascalCase (`Patient`), OpenMRS REST resources in lower case
/// (`patient`): the filter sees no other sign of the family.
pub fn key_of(resource: &Resource) -> ResourceKey {
    let kind = if resource
        .resource_type
        .starts_with(|c: char| c.is_ascii_uppercase())
    {
        Kind::Fhir
    } else {
        Kind::Rest
    };
    ResourceKey {
        kind,
        resource_type: resource.resource_type.clone(),
        id: resource.id.clone(),
    }
}

impl ContentScope {
    /// Decides on an event's scope-key tags (a sync-host feed publishes each change's keys);
    /// `None` when the event carries none, so only its content can tell.
    pub fn decide_tags<'t>(&self, keys: impl Iterator<Item = &'t str>) -> Option<Verdict> {
        let keys: Vec<&str> = keys.collect();
        if keys.is_empty() {
            return None;
        }
        if keys.iter().any(|key| self.scope.contains(key)) {
            return Some(Verdict::Accept);
        }
        Some(Verdict::Reject(format!(
            "scope keys {} lie outside the catchment",
            keys.join(", ")
        )))
    }

    /// One verdict per resource. Patients in the batch lend their keys to the resources of
    /// their compartment in the same batch.
    pub fn decide_batch(&self, resources: &[Resource]) -> Vec<Verdict> {
        let classified: Vec<(ResourceKey, Classification)> = resources
            .iter()
            .map(|resource| {
                let key = key_of(resource);
                let classification = self.classifier.classify(&key, &resource.body);
                (key, classification)
            })
            .collect();
        let owners: HashMap<&ResourceKey, &BTreeSet<String>> = classified
            .iter()
            .filter(|(key, _)| sync_host_scope::is_compartment_owner(&key.resource_type))
            .map(|(key, classification)| (key, &classification.keys))
            .collect();
        resources
            .iter()
            .zip(&classified)
            .map(|(resource, (_, classification))| self.decide(resource, classification, &owners))
            .collect()
    }

    fn decide(
        &self,
        resource: &Resource,
        classification: &Classification,
        owners: &HashMap<&ResourceKey, &BTreeSet<String>>,
    ) -> Verdict {
        // A tombstone names no place; deleting what the other side may hold is never a leak.
        if resource.deleted || !classification.scoped {
            return Verdict::Accept;
        }
        let inherited = classification
            .owner
            .as_ref()
            .and_then(|owner| owners.get(owner).copied());
        let mut keys = classification
            .keys
            .iter()
            .chain(inherited.into_iter().flatten());
        if keys.any(|key| self.scope.contains(key)) {
            return Verdict::Accept;
        }
        match (&classification.owner, inherited) {
            (Some(owner), None) => match self.unplaced {
                Fallback::Accept => Verdict::Accept,
                Fallback::Reject => Verdict::Reject(format!(
                    "{}/{} is in the compartment of {}/{}, which is not in this batch, and \
                     unplaced is \"reject\"",
                    resource.resource_type, resource.id, owner.resource_type, owner.id
                )),
            },
            _ => Verdict::Reject(self.outside(resource, classification, inherited)),
        }
    }

    fn outside(
        &self,
        resource: &Resource,
        classification: &Classification,
        inherited: Option<&BTreeSet<String>>,
    ) -> String {
        let keys: BTreeSet<&str> = classification
            .keys
            .iter()
            .chain(inherited.into_iter().flatten())
            .map(String::as_str)
            .collect();
        let name = format!("{}/{}", resource.resource_type, resource.id);
        if keys.is_empty() {
            format!("{name} names no scope key")
        } else {
            let keys: Vec<&str> = keys.into_iter().collect();
            let through = match (&classification.owner, inherited) {
                (Some(owner), Some(_)) => format!(", with {}/{}", owner.resource_type, owner.id),
                _ => String::new(),
            };
            format!(
                "{name} lies outside the catchment (keys {}{through})",
                keys.join(", ")
            )
        }
    }
}

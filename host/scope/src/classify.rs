//! Where a resource belongs: the pure classification of a body into scope keys (the locations
//! and organisations it names) and the Patient whose compartment it is in.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::key::{Kind, ResourceKey};

/// Most steps in one configured path: paths are walked over untrusted bodies.
pub const MAX_PATH_STEPS: usize = 8;

/// `[classify]`: which fields of which types name the places a resource belongs to.
///
/// A type that no rule names is *shared*: reference data (locations, practitioners, concepts)
/// that every client may read. A type with a rule, or in a compartment list, is *scoped*: a
/// scoped client sees it only when one of its keys is in the client's scope.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifyConfig {
    /// FHIR type -> dotted paths of the references that are its keys (`Encounter =
    /// ["location.location", "serviceProvider"]`). A key is the reference's `Type/id`.
    pub fhir: BTreeMap<String, Vec<String>>,
    /// FHIR types in a Patient's compartment: they inherit the keys of the Patient their
    /// `subject` or `patient` names, and follow it when its keys change.
    pub fhir_compartment: Vec<String>,
    /// REST resource -> dotted paths of the fields naming a location (its uuid, or an object
    /// with a `uuid`); the key is `Location/<uuid>`.
    pub rest: BTreeMap<String, Vec<String>>,
    /// REST resources in a patient's compartment, through their `patient` or `person` field.
    pub rest_compartment: Vec<String>,
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        let paths = |rules: &[(&str, &[&str])]| {
            rules
                .iter()
                .map(|(name, paths)| {
                    let paths = paths.iter().map(|path| (*path).to_owned()).collect();
                    ((*name).to_owned(), paths)
                })
                .collect()
        };
        let names = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect();
        ClassifyConfig {
            fhir: paths(&[
                ("Patient", &["managingOrganization"]),
                ("Encounter", &["location.location", "serviceProvider"]),
            ]),
            fhir_compartment: names(&[
                "AllergyIntolerance",
                "CarePlan",
                "Condition",
                "DiagnosticReport",
                "DocumentReference",
                "Encounter",
                "EpisodeOfCare",
                "Flag",
                "Goal",
                "Immunization",
                "MedicationDispense",
                "MedicationRequest",
                "MedicationStatement",
                "Observation",
                "Procedure",
                "QuestionnaireResponse",
                "ServiceRequest",
            ]),
            rest: paths(&[
                ("patient", &["identifiers.location"]),
                ("encounter", &["location"]),
                ("visit", &["location"]),
                ("obs", &["location"]),
            ]),
            rest_compartment: names(&["encounter", "visit", "obs", "order", "allergy"]),
        }
    }
}

/// A configured path that cannot be used, naming the type and the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{section}.{resource_type}: path {path:?} {problem}")]
pub struct PathError {
    /// `fhir` or `rest`.
    pub section: &'static str,
    /// The type whose rule it is.
    pub resource_type: String,
    /// The path as configured.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

/// What classification says about one version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Classification {
    /// Whether any rule covers the type; shared resources are visible to every client.
    pub scoped: bool,
    /// The keys the body names itself, sorted and without duplicates.
    pub keys: BTreeSet<String>,
    /// The Patient (FHIR) or patient (REST) whose compartment the resource is in.
    pub owner: Option<ResourceKey>,
}

/// Where a body belongs, by whatever rules a node was given: the built-in paths
/// ([`Classifier`]) or a classifier plugin. Classification never refuses a write: rules that
/// cannot read a body, or fail, place it as scoped with no keys, so no scoped client sees it.
pub trait Classify: Send + Sync + std::fmt::Debug {
    /// A short name of the rules: a store remembers the rules it was classified with, and is
    /// classified again when they change.
    fn digest(&self) -> &str;

    /// Classifies `body`, a version of `key`.
    fn classify(&self, key: &ResourceKey, body: &str) -> Classification;

    /// [`Classify::classify`] for a body whose top-level fields are already split (the store
    /// splits them once per write); rules that do not use them classify the body.
    fn classify_fields(
        &self,
        key: &ResourceKey,
        body: &str,
        fields: &[(String, &RawValue)],
    ) -> Classification {
        let _ = fields;
        self.classify(key, body)
    }
}

impl Classify for Classifier {
    fn digest(&self) -> &str {
        &self.digest
    }

    fn classify(&self, key: &ResourceKey, body: &str) -> Classification {
        Classifier::classify(self, key, body)
    }

    fn classify_fields(
        &self,
        key: &ResourceKey,
        _body: &str,
        fields: &[(String, &RawValue)],
    ) -> Classification {
        Classifier::classify_fields(self, key, fields)
    }
}

/// The classifier built from [`ClassifyConfig`], with its paths split once.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    digest: String,
    fhir: BTreeMap<String, Vec<Vec<String>>>,
    fhir_compartment: BTreeSet<String>,
    rest: BTreeMap<String, Vec<Vec<String>>>,
    rest_compartment: BTreeSet<String>,
}

impl Classifier {
    /// Checks and splits the configured paths.
    pub fn new(config: &ClassifyConfig) -> Result<Classifier, PathError> {
        Ok(Classifier {
            digest: rules_digest(config),
            fhir: split_rules("fhir", &config.fhir)?,
            fhir_compartment: config.fhir_compartment.iter().cloned().collect(),
            rest: split_rules("rest", &config.rest)?,
            rest_compartment: config.rest_compartment.iter().cloned().collect(),
        })
    }

    /// The classifier of the default rules ([`ClassifyConfig::default`]).
    pub fn standard() -> Classifier {
        // The default paths are valid (a unit test checks it), so this never falls back.
        Classifier::new(&ClassifyConfig::default()).unwrap_or_default()
    }

    /// A short name of the rules: a store remembers the rules it was classified with, and is
    /// classified again when they change.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Classifies `body`, a version of `key`. A field that is missing or of another shape
    /// than a rule expects contributes no key: classification never refuses a write.
    pub fn classify(&self, key: &ResourceKey, body: &str) -> Classification {
        // Not an object: a rule's type is scoped all the same, with no keys.
        let fields: Vec<(String, &RawValue)> =
            serde_json::from_str::<BTreeMap<String, &RawValue>>(body)
                .map(|fields| fields.into_iter().collect())
                .unwrap_or_default();
        self.classify_fields(key, &fields)
    }

    /// [`Classifier::classify`] for a body whose top-level fields are already split (the
    /// store splits them once per write).
    pub fn classify_fields(
        &self,
        key: &ResourceKey,
        fields: &[(String, &RawValue)],
    ) -> Classification {
        let (rules, compartment) = match key.kind {
            Kind::Fhir => (&self.fhir, &self.fhir_compartment),
            Kind::Rest => (&self.rest, &self.rest_compartment),
        };
        let paths = rules.get(&key.resource_type);
        let in_compartment = compartment.contains(&key.resource_type);
        if paths.is_none() && !in_compartment {
            return Classification::default();
        }
        let mut classification = Classification {
            scoped: true,
            ..Classification::default()
        };
        let field = |name: &str| -> Option<Value> {
            let (_, raw) = fields.iter().find(|(field, _)| field == name)?;
            serde_json::from_str(raw.get()).ok()
        };
        for path in paths.into_iter().flatten() {
            let Some(top) = field(&path[0]) else { continue };
            let mut found = Vec::new();
            collect(&top, &path[1..], &mut found);
            let keys = found.into_iter().filter_map(|value| match key.kind {
                Kind::Fhir => reference_key(value),
                Kind::Rest => uuid_of(value).map(|uuid| format!("Location/{uuid}")),
            });
            classification.keys.extend(keys);
        }
        if in_compartment {
            classification.owner = match key.kind {
                Kind::Fhir => fhir_owner(&field),
                Kind::Rest => rest_owner(&field),
            };
        }
        classification
    }
}

/// Changes whenever the rules, or what this code makes of them, change.
const RULES_FORMAT: &str = "placement-1";

fn rules_digest(config: &ClassifyConfig) -> String {
    use sha2::{Digest, Sha256};
    // The maps and lists print in a fixed order, so equal rules print alike.
    let text = format!("{RULES_FORMAT}\n{config:?}");
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

fn split_rules(
    section: &'static str,
    rules: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Vec<Vec<String>>>, PathError> {
    let mut split = BTreeMap::new();
    for (resource_type, paths) in rules {
        let mut steps_of = Vec::with_capacity(paths.len());
        for path in paths {
            let error = |problem: &str| PathError {
                section,
                resource_type: resource_type.clone(),
                path: path.clone(),
                problem: problem.to_owned(),
            };
            let steps: Vec<String> = path.split('.').map(str::to_owned).collect();
            if steps.iter().any(String::is_empty) {
                return Err(error("has an empty step; write field names joined by `.`"));
            }
            if steps.len() > MAX_PATH_STEPS {
                return Err(error(&format!("has more than {MAX_PATH_STEPS} steps")));
            }
            steps_of.push(steps);
        }
        split.insert(resource_type.clone(), steps_of);
    }
    Ok(split)
}

/// The values at `steps` below `value`, going into every element of an array on the way.
/// The walk is bounded by the configured path's length ([`MAX_PATH_STEPS`]) and one level of
/// arrays per step.
fn collect<'v>(value: &'v Value, steps: &[String], found: &mut Vec<&'v Value>) {
    match value {
        Value::Array(items) => {
            for item in items {
                if !item.is_array() {
                    collect(item, steps, found);
                }
            }
        }
        _ => match steps.split_first() {
            None => found.push(value),
            Some((step, rest)) => {
                if let Some(inner) = value.get(step) {
                    collect(inner, rest, found);
                }
            }
        },
    }
}

/// `Type/id` of a FHIR Reference (`{"reference": "Organization/x"}`, relative or absolute);
/// contained (`#x`) and unreadable references name no key.
fn reference_key(value: &Value) -> Option<String> {
    let reference = value.get("reference")?.as_str()?;
    let reference = reference.split(['?', '#']).next()?;
    let mut parts = reference.rsplit('/');
    let mut id = parts.next()?;
    let mut resource_type = parts.next()?;
    // `Type/id/_history/n` names a version of `Type/id`.
    if resource_type == "_history" {
        id = parts.next()?;
        resource_type = parts.next()?;
    }
    let is_type = resource_type.starts_with(|c: char| c.is_ascii_uppercase())
        && resource_type.chars().all(|c| c.is_ascii_alphanumeric());
    (is_type && !id.is_empty()).then(|| format!("{resource_type}/{id}"))
}

/// A REST field naming another document: its uuid as text, or an object with a `uuid`.
fn uuid_of(value: &Value) -> Option<&str> {
    let uuid = match value {
        Value::String(uuid) => uuid.as_str(),
        other => other.get("uuid")?.as_str()?,
    };
    (!uuid.is_empty()).then_some(uuid)
}

fn fhir_owner(field: &impl Fn(&str) -> Option<Value>) -> Option<ResourceKey> {
    ["subject", "patient"].iter().find_map(|name| {
        let key = reference_key(&field(name)?)?;
        let id = key.strip_prefix("Patient/")?;
        Some(ResourceKey::fhir("Patient", id))
    })
}

fn rest_owner(field: &impl Fn(&str) -> Option<Value>) -> Option<ResourceKey> {
    ["patient", "person"].iter().find_map(|name| {
        let value = field(name)?;
        Some(ResourceKey::rest("patient", uuid_of(&value)?))
    })
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;

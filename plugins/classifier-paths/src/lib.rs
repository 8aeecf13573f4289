//! Classifier that places resources by the paths of a `[classify]` table: FHIR references per
//! type (`Patient.managingOrganization`, `Encounter.location.location`, ...), OpenMRS REST
//! location fields, and the compartment of a Patient through `subject`/`patient`.
//!
//! It runs the node's own built-in rules (`sync-host-scope`) inside the sandbox: the
//! configuration is the `[classify]` table as JSON, the node's defaults when it is `{}`. Copy
//! it as the starting point of a classifier with rules of its own.

use sync_host_scope::{ClassifyConfig, Kind, ResourceKey};
use sync_plugin_sdk::{Classifier, Document, Family, Placement};

/// The rules, with their paths split once.
#[derive(Debug)]
pub struct PathClassifier(sync_host_scope::Classifier);

impl Classifier for PathClassifier {
    type Config = ClassifyConfig;

    fn new(config: ClassifyConfig) -> Result<Self, String> {
        sync_host_scope::Classifier::new(&config)
            .map(PathClassifier)
            .map_err(|error| error.to_string())
    }

    fn classify(&self, document: &Document) -> Placement {
        let resource = &document.resource;
        let key = ResourceKey {
            kind: match document.family {
                Family::Fhir => Kind::Fhir,
                Family::Rest => Kind::Rest,
            },
            resource_type: resource.resource_type.clone(),
            id: resource.id.clone(),
        };
        let classification = self.0.classify(&key, &resource.body);
        Placement {
            scoped: classification.scoped,
            keys: classification.keys.into_iter().collect(),
            owner: classification
                .owner
                .map(|owner| format!("{}/{}", owner.resource_type, owner.id)),
        }
    }
}

sync_plugin_sdk::export_classifier!(PathClassifier);

#[cfg(test)]
mod tests {
    use super::*;
    use sync_plugin_sdk::{Resource, parse_config};

    fn document(family: Family, resource_type: &str, body: &str) -> Document {
        Document {
            family,
            resource: Resource {
                resource_type: resource_type.into(),
                id: "x".into(),
                version: None,
                body: body.into(),
                deleted: false,
            },
        }
    }

    fn classifier(json: &str) -> Result<PathClassifier, String> {
        PathClassifier::new(parse_config(json)?)
    }

    #[test]
    fn the_default_rules_place_patients_and_their_compartments() {
        let rules = classifier("{}").unwrap();
        let patient = document(
            Family::Fhir,
            "Patient",
            r#"{"managingOrganization":{"reference":"Organization/a"}}"#,
        );
        let placed = rules.classify(&patient);
        assert!(placed.scoped);
        assert_eq!(placed.keys, ["Organization/a"]);
        let observation = document(
            Family::Fhir,
            "Observation",
            r#"{"subject":{"reference":"Patient/p"}}"#,
        );
        assert_eq!(
            rules.classify(&observation).owner.as_deref(),
            Some("Patient/p")
        );
        let encounter = document(Family::Rest, "encounter", r#"{"patient":{"uuid":"u"}}"#);
        assert_eq!(
            rules.classify(&encounter).owner.as_deref(),
            Some("patient/u")
        );
        let location = document(Family::Fhir, "Location", "{}");
        assert!(
            !rules.classify(&location).scoped,
            "reference data is shared"
        );
    }

    #[test]
    fn bad_rules_are_refused_naming_the_path() {
        let error = classifier(r#"{"fhir":{"Patient":["a..b"]}}"#).unwrap_err();
        assert!(error.starts_with("fhir.Patient"), "{error}");
        assert!(classifier(r#"{"fihr":{}}"#).unwrap_err().contains("fihr"));
    }
}

//! Sample records for the demo network: FHIR patients, encounters and observations, and an
//! OpenMRS REST location document, written through a node's own store as a local user would.

use sync_host_store::store::{
    Precondition, ResourceKey, Store, StoreError, WriteOutcome, WriteRequest,
};

/// A FHIR Patient with a given family name and a decimal-bearing extension-free body.
pub fn patient(id: &str, given: &str, family: &str, birth_date: &str) -> String {
    format!(
        r#"{{"resourceType":"Patient","id":"{id}","active":true,"name":[{{"use":"official","family":"{family}","given":["{given}"]}}],"gender":"female","birthDate":"{birth_date}"}}"#
    )
}

/// A FHIR Patient managed by `organization` (its id): the organisation places the patient,
/// and the patient's compartment with it, in a data scope.
pub fn managed_patient(
    id: &str,
    given: &str,
    family: &str,
    birth_date: &str,
    organization: &str,
) -> String {
    format!(
        r#"{{"resourceType":"Patient","id":"{id}","active":true,"name":[{{"use":"official","family":"{family}","given":["{given}"]}}],"gender":"female","birthDate":"{birth_date}","managingOrganization":{{"reference":"Organization/{organization}"}}}}"#
    )
}

/// A FHIR Encounter of `patient`.
pub fn encounter(id: &str, patient: &str, date: &str) -> String {
    format!(
        r#"{{"resourceType":"Encounter","id":"{id}","status":"finished","class":{{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"}},"subject":{{"reference":"Patient/{patient}"}},"period":{{"start":"{date}"}}}}"#
    )
}

/// A FHIR body-weight Observation; `kg` is written as given, so `72.50` stays `72.50`.
pub fn weight(id: &str, patient: &str, kg: &str) -> String {
    format!(
        r#"{{"resourceType":"Observation","id":"{id}","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"29463-7","display":"Body weight"}}]}},"subject":{{"reference":"Patient/{patient}"}},"valueQuantity":{{"value":{kg},"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}}}"#
    )
}

/// An OpenMRS REST location document.
pub fn location(uuid: &str, name: &str, retired: bool) -> String {
    format!(
        r#"{{"uuid":"{uuid}","display":"{name}","name":"{name}","description":"Health facility","retired":{retired}}}"#
    )
}

/// Writes a FHIR resource as a local change of `store`'s node.
pub async fn put_fhir(
    store: &Store,
    resource_type: &str,
    id: &str,
    body: String,
) -> Result<WriteOutcome, StoreError> {
    store
        .write(WriteRequest {
            key: ResourceKey::fhir(resource_type, id),
            body: Some(body),
            precondition: Precondition::Any,
            origin: None,
        })
        .await
}

/// Deletes a FHIR resource as a local change.
pub async fn delete_fhir(
    store: &Store,
    resource_type: &str,
    id: &str,
) -> Result<WriteOutcome, StoreError> {
    store
        .write(WriteRequest {
            key: ResourceKey::fhir(resource_type, id),
            body: None,
            precondition: Precondition::Any,
            origin: None,
        })
        .await
}

/// Writes a REST document as a local change.
pub async fn put_rest(
    store: &Store,
    resource: &str,
    uuid: &str,
    body: String,
) -> Result<WriteOutcome, StoreError> {
    store
        .write(WriteRequest {
            key: ResourceKey::rest(resource, uuid),
            body: Some(body),
            precondition: Precondition::Any,
            origin: None,
        })
        .await
}

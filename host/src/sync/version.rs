//! What the conflict check needs to know about a resource: its content hash, version, time
//! and whether it is a tombstone. Pure.

use serde::Deserialize;
use sync_host_runtime::Resource;

use crate::audit::Timestamp;
use crate::sync::conflict::{TOMBSTONE_HASH, VersionState};

#[derive(Deserialize)]
struct MetaOnly {
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "lastUpdated")]
    last_updated: Option<String>,
}

/// Starts the digest of the exact bytes that stands in for the content hash of a body the
/// hash cannot read.
pub const RAW_HASH_PREFIX: &str = "raw:";

/// Why a fetched body cannot be synced.
#[derive(Debug, thiserror::Error)]
#[error("the body of {resource_type}/{id} is not a JSON document: {reason}")]
pub struct BodyError {
    pub resource_type: String,
    pub id: String,
    pub reason: String,
}

/// The conflict-check view of a freshly fetched resource, refusing a live body that is not
/// a JSON document the hash can read.
pub fn checked_state(resource: &Resource) -> Result<VersionState, BodyError> {
    if resource.deleted {
        return Ok(version_state(resource));
    }
    let content_hash =
        sync_host_store::hash::content_hash(&resource.body).map_err(|e| BodyError {
            resource_type: resource.resource_type.clone(),
            id: resource.id.clone(),
            reason: e.to_string(),
        })?;
    Ok(VersionState {
        content_hash,
        version: resource.version.clone(),
        last_updated: last_updated(&resource.body),
        deleted: false,
    })
}

/// The conflict-check view of `resource`.
pub fn version_state(resource: &Resource) -> VersionState {
    if resource.deleted {
        return VersionState {
            content_hash: TOMBSTONE_HASH.to_string(),
            version: resource.version.clone(),
            last_updated: None,
            deleted: true,
        };
    }
    // Bodies are validated when fetched; a body that still fails to hash is compared by a
    // digest of its exact bytes, which can only make it look changed, never silently equal,
    // and keeps a hostile body out of the sync base.
    let content_hash = sync_host_store::hash::content_hash(&resource.body).unwrap_or_else(|_| {
        use sha2::Digest;
        format!(
            "{RAW_HASH_PREFIX}{}",
            hex::encode(sha2::Sha256::digest(resource.body.as_bytes()))
        )
    });
    VersionState {
        content_hash,
        version: resource.version.clone(),
        last_updated: last_updated(&resource.body),
        deleted: false,
    }
}

/// `meta.lastUpdated` of a FHIR body, when present and readable.
pub fn last_updated(body: &str) -> Option<Timestamp> {
    let meta: MetaOnly = serde_json::from_str(body).ok()?;
    let text = meta.meta?.last_updated?;
    Timestamp::parse_rfc3339(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(body: &str, deleted: bool) -> Resource {
        Resource {
            resource_type: "Patient".into(),
            id: "p1".into(),
            version: Some("3".into()),
            body: body.into(),
            deleted,
        }
    }

    #[test]
    fn server_meta_does_not_change_the_state_hash() {
        let a = resource(
            r#"{"resourceType":"Patient","id":"p1","meta":{"versionId":"1"}}"#,
            false,
        );
        let b = resource(
            r#"{"id":"p1","resourceType":"Patient","meta":{"versionId":"7"}}"#,
            false,
        );
        assert_eq!(
            version_state(&a).content_hash,
            version_state(&b).content_hash
        );
    }

    #[test]
    fn last_updated_is_read_from_meta() {
        let r = resource(
            r#"{"resourceType":"Patient","meta":{"lastUpdated":"2024-05-01T10:00:00Z"}}"#,
            false,
        );
        assert!(version_state(&r).last_updated.is_some());
    }

    #[test]
    fn tombstones_and_bad_bodies() {
        assert!(version_state(&resource("", true)).deleted);
        assert!(checked_state(&resource("not json", false)).is_err());
        assert!(checked_state(&resource("", true)).is_ok());
        let live = resource(r#"{"resourceType":"Patient"}"#, false);
        assert_eq!(checked_state(&live).unwrap(), version_state(&live));
    }
}

//! The store as one client sees it: every read and write of the API goes through here, so a
//! data scope holds on every endpoint. A version outside the client's scope reads exactly as a
//! resource that does not exist, and writing one is refused.

use std::sync::Arc;

use time::OffsetDateTime;

use super::ApiState;
use crate::auth::AuthenticatedClient;
use crate::store::{
    Kind, ResourceKey, Store, StoreError, VersionRecord, WriteOutcome, WriteRequest,
};

/// A write refused because it lay outside the writer's data scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The client that tried it.
    pub client: String,
    /// The resource it tried to write.
    pub key: ResourceKey,
    /// Whether the write was a delete.
    pub deleting: bool,
}

/// Where the API reports refused writes: the node's audit.
pub type Refusals = Arc<dyn Fn(Refusal) + Send + Sync>;

/// The store seen by `client`.
#[derive(Clone, Copy)]
pub struct Seen<'a> {
    store: &'a Store,
    client: &'a AuthenticatedClient,
    refusals: Option<&'a Refusals>,
}

impl<'a> Seen<'a> {
    /// The store of `state` as `client` sees it.
    pub fn new(state: &'a ApiState, client: &'a AuthenticatedClient) -> Seen<'a> {
        Seen {
            store: &state.store,
            client,
            refusals: state.refusals.as_ref(),
        }
    }

    /// Reports a write refused for its scope, and passes the answer on.
    fn reported<T>(
        &self,
        answer: Result<T, StoreError>,
        deleting: impl Fn(&ResourceKey) -> bool,
    ) -> Result<T, StoreError> {
        if let (Err(StoreError::OutOfScope(key)), Some(refusals)) = (&answer, self.refusals) {
            refusals(Refusal {
                client: self.client.name.clone(),
                key: key.clone(),
                deleting: deleting(key),
            });
        }
        answer
    }

    /// Whether the client is confined to a data scope.
    pub fn is_scoped(&self) -> bool {
        self.client.data_scope.is_some()
    }

    /// Whether the client may see `record`.
    pub fn sees(&self, record: &VersionRecord) -> bool {
        self.client.sees(&record.placement)
    }

    /// The current version, or `None` when there is none or the client may not see it.
    pub fn read(&self, key: &ResourceKey) -> Result<Option<VersionRecord>, StoreError> {
        Ok(self.store.read(key)?.filter(|record| self.sees(record)))
    }

    /// Whether the client may see the resource as it stands now. Older versions are shown
    /// only while the resource is: one that left the scope is gone with all its history.
    fn sees_now(&self, key: &ResourceKey) -> Result<bool, StoreError> {
        if !self.is_scoped() {
            return Ok(true);
        }
        Ok(self.read(key)?.is_some())
    }

    /// One version, while the client may see the resource.
    pub fn vread(
        &self,
        key: &ResourceKey,
        version_id: u64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        if !self.sees_now(key)? {
            return Ok(None);
        }
        self.store.vread(key, version_id)
    }

    /// The versions of a resource, `None` when the client may not see it.
    pub fn history(
        &self,
        key: &ResourceKey,
        since: Option<OffsetDateTime>,
        limit: usize,
    ) -> Result<Option<Vec<VersionRecord>>, StoreError> {
        if self.read(key)?.is_none() {
            return Ok(None);
        }
        self.store.history(key, since, limit).map(Some)
    }

    /// Versions of every resource of a type that the client may see now, newest first.
    pub fn type_history(
        &self,
        resource_type: &str,
        since: Option<OffsetDateTime>,
        limit: usize,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        let versions = self
            .store
            .type_history(Kind::Fhir, resource_type, since, limit)?;
        if !self.is_scoped() {
            return Ok(versions);
        }
        let mut seen = Vec::with_capacity(versions.len());
        for version in versions {
            if self.sees(&version) && self.sees_now(&version.key)? {
                seen.push(version);
            }
        }
        Ok(seen)
    }

    /// Current, non-deleted resources of a type after `after_id` that the client may see;
    /// fewer than `limit` may come back while more exist (the caller continues after the
    /// returned `last_id`).
    pub fn list(
        &self,
        kind: Kind,
        resource_type: &str,
        after_id: Option<&str>,
        limit: usize,
    ) -> Result<Listed, StoreError> {
        let listed = self.store.list(kind, resource_type, after_id, limit)?;
        let exhausted = listed.len() < limit;
        let last_id = listed.last().map(|record| record.key.id.clone());
        let records = listed
            .into_iter()
            .filter(|record| self.sees(record))
            .collect();
        Ok(Listed {
            records,
            last_id,
            exhausted,
        })
    }

    /// Writes one resource within the client's scope; a refusal is reported.
    pub async fn write(&self, request: WriteRequest) -> Result<WriteOutcome, StoreError> {
        let deleting = request.body.is_none();
        let answer = self
            .store
            .write_within(request, self.client.data_scope.as_ref())
            .await;
        self.reported(answer, |_| deleting)
    }

    /// Writes all or none within the client's scope; a refusal is reported.
    pub async fn write_all(
        &self,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let deletes: Vec<ResourceKey> = requests
            .iter()
            .filter(|request| request.body.is_none())
            .map(|request| request.key.clone())
            .collect();
        let answer = self
            .store
            .write_all_within(requests, self.client.data_scope.as_ref())
            .await;
        self.reported(answer, |key| deletes.contains(key))
    }

    /// The client's data scope, if it has one.
    pub fn scope(&self) -> Option<&Arc<crate::scope::DataScope>> {
        self.client.data_scope.as_ref()
    }
}

/// One step of listing a type.
pub struct Listed {
    /// The visible records of the step.
    pub records: Vec<VersionRecord>,
    /// The id the step ended at, visible or not: the next step starts after it.
    pub last_id: Option<String>,
    /// Whether the type has no more resources after this step.
    pub exhausted: bool,
}

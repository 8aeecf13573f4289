//! The embedded store: FHIR resources and REST documents in sled with version history, a
//! node-wide change log (the source of the Atom feed) and per-category position indexes.
//!
//! Writes go through a group committer (the private `committer` module); reads go straight to sled.

mod apply;
mod codec;
mod committer;
mod follow;
mod gather;
mod hash_memo;
pub mod import;
mod place;
mod plan;
mod query;
mod reclassify;
mod types;

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

pub use gather::serve_together;
pub use hash_memo::{HashOffer, OfferedHashes};
pub use plan::{format_instant, truncate_to_millis};
pub use types::{
    Action, Change, Kind, Placement, Precondition, ResourceKey, StoreConfig, StoreError,
    VersionRecord, WriteOutcome, WriteRequest,
};

use apply::Trees;
use plan::Preparing;

use crate::scope::{Classify, DataScope};
use committer::Committer;
use hash_memo::HashMemo;

/// The store's page cache.
const STORE_CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// Handle to an open store; cheap to clone, all clones share one database and one committer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    // Declared first so it drops first: the committer drains its queue before the trees close.
    committer: Committer,
    trees: Trees,
    node_id: String,
    instance_id: String,
    changes: watch::Receiver<u64>,
    hashes: HashMemo,
    classifier: Arc<dyn Classify>,
}

/// How long opening waits for the previous holder of the files to let go of them.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the sled database at `path`. A store closed a moment ago in this process (a node
/// restarted in place) may still have sled's I/O threads finishing with its files, so a busy
/// lock is retried for up to [`LOCK_WAIT`]; another process holding the store still fails.
fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        // sled's default page cache may grow to 1 GiB; a clinic server shares its memory with
        // much else, and the store reads mostly recent pages.
        match sled::Config::new()
            .path(path)
            .cache_capacity(STORE_CACHE_BYTES)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(error))
                if error.kind() == std::io::ErrorKind::WouldBlock
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(error) => {
                return Err(StoreError::Storage(format!(
                    "cannot open {}: {error}",
                    path.display()
                )));
            }
        }
    }
}

impl Store {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path, config: StoreConfig) -> Result<Store, StoreError> {
        let db = open_db(path)?;
        let trees = Trees::open(db)?;
        let instance_id = apply::instance_id();
        let last_sequence = query::last_sequence(&trees)?;
        let (sender, receiver) = watch::channel(last_sequence);
        let committer = Committer::start(
            trees.clone(),
            config.node_id.clone(),
            config.history_retention,
            Arc::clone(&config.classifier),
            sender,
        )?;
        tracing::info!(path = %path.display(), node = %config.node_id, last_sequence, "store opened");
        Ok(Store {
            inner: Arc::new(Inner {
                committer,
                trees,
                node_id: config.node_id,
                instance_id,
                changes: receiver,
                hashes: HashMemo::default(),
                classifier: config.classifier,
            }),
        })
    }

    /// Writes one resource. Durable when it returns (concurrent writers share one flush).
    pub async fn write(&self, request: WriteRequest) -> Result<WriteOutcome, StoreError> {
        self.write_within(request, None).await
    }

    /// Writes one resource for a client confined to `scope`: refused with
    /// [`StoreError::OutOfScope`] when the resource's current version or the new one lies
    /// outside it.
    pub async fn write_within(
        &self,
        request: WriteRequest,
        scope: Option<&Arc<DataScope>>,
    ) -> Result<WriteOutcome, StoreError> {
        let offered = match &request.body {
            Some(body) => self.inner.hashes.take(&request.key, body),
            None => None,
        }
        .unwrap_or_default();
        let mut prepared = plan::prepare_with(request, offered.hash, self.preparing(scope))?;
        if let Some(body) = &mut prepared.body {
            body.supplied = offered.supplied_keys;
        }
        let mut outcomes = self.inner.committer.commit(vec![prepared]).await?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::Storage("a write produced no outcome".into()))
    }

    /// All or nothing (FHIR transaction Bundles): either every write applies, or none and the
    /// first error. Later requests see the effect of earlier ones.
    pub async fn write_all(
        &self,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        self.write_all_within(requests, None).await
    }

    /// [`Store::write_all`] for a client confined to `scope` (see [`Store::write_within`]).
    pub async fn write_all_within(
        &self,
        requests: Vec<WriteRequest>,
        scope: Option<&Arc<DataScope>>,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let preparing = self.preparing(scope);
        let prepared = requests
            .into_iter()
            .map(|request| plan::prepare_with(request, None, preparing))
            .collect::<Result<_, _>>()?;
        self.inner.committer.commit(prepared).await
    }

    /// Like [`Store::write_all`], for versions whose content hash is already known (a
    /// verified snapshot's): all or nothing, in one transaction, without hashing the bodies.
    pub async fn write_all_hashed(
        &self,
        requests: Vec<(WriteRequest, String)>,
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = requests
            .into_iter()
            .map(|(request, hash)| plan::prepare_with(request, Some(hash), self.preparing(None)))
            .collect::<Result<_, _>>()?;
        self.inner.committer.commit(prepared).await
    }

    fn preparing<'a>(&'a self, within: Option<&'a Arc<DataScope>>) -> Preparing<'a> {
        Preparing {
            classifier: self.inner.classifier.as_ref(),
            within,
        }
    }

    /// Offers content hashes already computed for writes about to be made in this process
    /// (see [`HashOffer`]), so that [`Store::write`] does not hash those bodies again. The
    /// offers are withdrawn when the returned value is dropped.
    pub fn offer_hashes(&self, offers: Vec<HashOffer>) -> OfferedHashes<'_> {
        OfferedHashes {
            memo: &self.inner.hashes,
            keys: self.inner.hashes.offer(offers),
        }
    }

    /// Every current version (live or tombstone), in key order.
    pub fn current_versions(&self) -> impl Iterator<Item = Result<VersionRecord, StoreError>> + '_ {
        query::current_versions(&self.inner.trees)
    }

    /// The sequence of the last committed change (0 for an empty store).
    pub fn last_sequence(&self) -> Result<u64, StoreError> {
        query::last_sequence(&self.inner.trees)
    }

    /// How many write groups (one transaction and one flush each) the store has committed
    /// since it was opened.
    pub fn commit_groups(&self) -> u64 {
        self.inner.committer.groups()
    }

    /// The current version of a resource, which may be a tombstone.
    pub fn read(&self, key: &ResourceKey) -> Result<Option<VersionRecord>, StoreError> {
        query::read(&self.inner.trees, key)
    }

    /// What this store's rules say of `body` as a version of `key`, before any write: for
    /// checks a node makes of what it is about to pull or push (its own data scope). The
    /// write itself places the version in its transaction.
    pub fn classify(&self, key: &ResourceKey, body: &str) -> crate::scope::Classification {
        self.inner.classifier.classify(key, body)
    }

    /// The keys of the current version of `key`, if the store holds one.
    pub fn placement_keys(&self, key: &ResourceKey) -> Result<Option<Vec<String>>, StoreError> {
        match self.inner.trees.current.get(codec::resource_key(key))? {
            Some(bytes) => Ok(Some(codec::record_placement(&bytes)?.keys)),
            None => Ok(None),
        }
    }

    /// Whether the store holds any record (a live copy or a tombstone) of a FHIR resource or
    /// REST document named `resource_type`/`id`. No record is decoded: it is the cheap check a
    /// sync run makes before deciding that reading the resource is unnecessary.
    pub fn holds(&self, resource_type: &str, id: &str) -> Result<bool, StoreError> {
        let lower = resource_type.to_lowercase();
        let keys = [
            ResourceKey::fhir(resource_type, id),
            ResourceKey::rest(resource_type, id),
            ResourceKey::rest(lower, id),
        ];
        for key in &keys {
            if self
                .inner
                .trees
                .current
                .contains_key(codec::resource_key(key))?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// One version of a resource, if it is still kept.
    pub fn vread(
        &self,
        key: &ResourceKey,
        version_id: u64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        query::vread(&self.inner.trees, key, version_id)
    }

    /// Versions of a resource, newest first, at or after `since` when given.
    pub fn history(
        &self,
        key: &ResourceKey,
        since: Option<time::OffsetDateTime>,
        limit: usize,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        query::history(&self.inner.trees, key, since, limit)
    }

    /// Versions of every resource of a type, newest first, at or after `since` when given.
    pub fn type_history(
        &self,
        kind: Kind,
        resource_type: &str,
        since: Option<time::OffsetDateTime>,
        limit: usize,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        query::type_history(&self.inner.trees, kind, resource_type, since, limit)
    }

    /// Current, non-deleted resources of a type, ordered by id, starting after `after_id`.
    pub fn list(
        &self,
        kind: Kind,
        resource_type: &str,
        after_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        query::list(&self.inner.trees, kind, resource_type, after_id, limit)
    }

    /// Change-log entries with sequence > `after`, oldest first; `category` None = all.
    pub fn changes(
        &self,
        category: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        query::changes(&self.inner.trees, category, after, limit)
    }

    /// Number of entries in a category's log, or in the combined log when `category` is None.
    pub fn change_count(&self, category: Option<&str>) -> Result<u64, StoreError> {
        query::change_count(&self.inner.trees, category)
    }

    /// Changes from the `start`-th (0-based) entry of a category (or of the combined log).
    pub fn changes_by_position(
        &self,
        category: Option<&str>,
        start: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        query::changes_by_position(&self.inner.trees, category, start, limit)
    }

    /// Every category that has at least one change, sorted.
    pub fn categories(&self) -> Result<Vec<String>, StoreError> {
        query::categories(&self.inner.trees)
    }

    /// Wakes when changes are committed after this call; the value is the last committed
    /// sequence.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        let mut changes = self.inner.changes.clone();
        // A clone has seen what the store's own receiver saw, the sequence at opening; without
        // this every commit since then would wake the new subscriber at once.
        changes.mark_unchanged();
        changes
    }

    /// The id of this opening of the store: random, made at every open, never reused.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Flushes everything written so far to disk. sled's blocking `flush` runs on the blocking
    /// pool: `flush_async` waits on sled's own I/O threads, and several of them at once (a
    /// process with many stores) can wait on each other for good.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let db = self.inner.trees.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Storage(format!("flush task failed: {e}")))??;
        Ok(())
    }

    /// Bytes the database occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.inner.trees.db.size_on_disk()?)
    }
}

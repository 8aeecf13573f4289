//! Writing a snapshot of a store that nothing else writes to (a stopped node's).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::{FORMAT, FeedPosition, MANIFEST_FILE, Manifest, RESOURCES_FILE, SnapshotError, io};
use crate::store::{Kind, Store, VersionRecord};

/// One line of the resources file, as written.
#[derive(Serialize)]
struct Line<'a> {
    kind: &'a str,
    #[serde(rename = "type")]
    resource_type: &'a str,
    id: &'a str,
    version: u64,
    hash: &'a str,
    origin: &'a str,
    resource: &'a RawValue,
}

/// Counts and hashes the bytes written through it.
struct Hashing<W> {
    inner: W,
    digest: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.digest.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a snapshot of `store` into the new or empty directory `out`; `page_size` is the
/// node's feed page size. `progress` is called with the resources written so far.
pub fn export(
    store: &Store,
    out: &Path,
    page_size: usize,
    mut progress: impl FnMut(u64),
) -> Result<Manifest, SnapshotError> {
    prepare_directory(out)?;
    let feeds = feed_positions(store)?;
    let last_sequence = store.last_sequence()?;
    let path = out.join(RESOURCES_FILE);
    let file = File::create(&path).map_err(io(&path))?;
    let hashing = Hashing {
        inner: BufWriter::with_capacity(1 << 20, file),
        digest: Sha256::new(),
        bytes: 0,
    };
    let mut gzip = GzEncoder::new(hashing, Compression::fast());
    let (mut resources, mut tombstones) = (0u64, 0u64);
    for record in store.current_versions() {
        let record = record?;
        let Some(line) = line_of(&record, &path, resources + tombstones + 1)? else {
            tombstones += 1;
            continue;
        };
        gzip.write_all(line.as_bytes()).map_err(io(&path))?;
        gzip.write_all(b"\n").map_err(io(&path))?;
        resources += 1;
        if resources % 10_000 == 0 {
            progress(resources);
        }
    }
    let hashing = gzip.finish().map_err(io(&path))?;
    let file = hashing
        .inner
        .into_inner()
        .map_err(|e| io(&path)(e.into_error()))?;
    file.sync_all().map_err(io(&path))?;
    let manifest = Manifest {
        format: FORMAT.to_string(),
        node_id: store.node_id().to_string(),
        created_at: crate::store::format_instant(time::OffsetDateTime::now_utc()),
        last_sequence,
        page_size,
        feeds,
        resources,
        tombstones,
        bytes: hashing.bytes,
        sha256: hex::encode(hashing.digest.finalize()),
    };
    write_manifest(out, &manifest)?;
    progress(resources);
    Ok(manifest)
}

/// Creates `out`, or accepts it when it exists and is empty.
fn prepare_directory(out: &Path) -> Result<(), SnapshotError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut entries = std::fs::read_dir(out).map_err(io(out))?;
    if entries.next().is_some() {
        return Err(SnapshotError::NotEmpty {
            path: out.to_owned(),
        });
    }
    Ok(())
}

/// The JSON line of a live version; `None` for a tombstone.
fn line_of(
    record: &VersionRecord,
    path: &Path,
    line: u64,
) -> Result<Option<String>, SnapshotError> {
    let Some(body) = record.body.as_deref().filter(|_| !record.deleted) else {
        return Ok(None);
    };
    let bad = |message: String| SnapshotError::Record {
        path: path.to_owned(),
        line,
        message,
    };
    let resource: &RawValue = serde_json::from_str(body)
        .map_err(|e| bad(format!("{} holds no JSON: {e}", record.key)))?;
    let line = Line {
        kind: match record.key.kind {
            Kind::Fhir => "fhir",
            Kind::Rest => "rest",
        },
        resource_type: &record.key.resource_type,
        id: &record.key.id,
        version: record.version_id,
        hash: &record.content_hash,
        origin: &record.origin,
        resource,
    };
    serde_json::to_string(&line)
        .map(Some)
        .map_err(|e| bad(format!("{}: {e}", record.key)))
}

/// Entries and last sequence of `all` and of every category.
fn feed_positions(store: &Store) -> Result<BTreeMap<String, FeedPosition>, SnapshotError> {
    let mut feeds = BTreeMap::new();
    let mut add = |name: &str, category: Option<&str>| -> Result<(), SnapshotError> {
        let entries = store.change_count(category)?;
        if entries == 0 {
            return Ok(());
        }
        let last = store.changes_by_position(category, entries - 1, 1)?;
        if let Some(change) = last.first() {
            let position = FeedPosition {
                entries,
                last_sequence: change.sequence,
            };
            feeds.insert(name.to_string(), position);
        }
        Ok(())
    };
    add(crate::api::feed::ALL_CATEGORY, None)?;
    for category in store.categories()? {
        add(&category, Some(&category))?;
    }
    Ok(feeds)
}

/// Writes the manifest next to the resources, durably (a temporary file renamed into place).
fn write_manifest(out: &Path, manifest: &Manifest) -> Result<(), SnapshotError> {
    let path = out.join(MANIFEST_FILE);
    let temporary = out.join(format!("{MANIFEST_FILE}.tmp"));
    let text = serde_json::to_vec_pretty(manifest).map_err(|e| SnapshotError::Manifest {
        path: path.clone(),
        source: e,
    })?;
    let mut file = File::create(&temporary).map_err(io(&temporary))?;
    file.write_all(&text).map_err(io(&temporary))?;
    file.sync_all().map_err(io(&temporary))?;
    std::fs::rename(&temporary, &path).map_err(io(&path))?;
    File::open(out)
        .and_then(|dir| dir.sync_all())
        .map_err(io(out))
}

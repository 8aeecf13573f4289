//! Reading a snapshot: its manifest, the checksum of its resources, and their records.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::{FORMAT, MANIFEST_FILE, Manifest, RESOURCES_FILE, SnapshotError, io};
use crate::store::ResourceKey;

/// One resource of a snapshot: the version the snapshotted node held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// Which resource.
    pub key: ResourceKey,
    /// Its version at the snapshotted node.
    pub version: u64,
    /// Its content hash.
    pub hash: String,
    /// The node where this version was made.
    pub origin: String,
    /// The body, byte for byte as stored there.
    pub body: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn<'a> {
    kind: String,
    #[serde(rename = "type")]
    resource_type: String,
    id: String,
    version: u64,
    hash: String,
    origin: String,
    #[serde(borrow)]
    resource: &'a RawValue,
}

/// Reads and checks the manifest of the snapshot in `dir`.
pub fn open(dir: &Path) -> Result<Manifest, SnapshotError> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read(&path).map_err(io(&path))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|source| SnapshotError::Manifest { path, source })?;
    if manifest.format != FORMAT {
        return Err(SnapshotError::Format {
            found: manifest.format,
        });
    }
    Ok(manifest)
}

/// Checks that the resources file is the one `manifest` describes (size and SHA-256), then
/// decodes every line and counts them. Nothing is written; after `Ok` the records can be
/// imported without surprises.
pub fn verify(dir: &Path, manifest: &Manifest) -> Result<(), SnapshotError> {
    let path = dir.join(RESOURCES_FILE);
    let (found, found_bytes) = checksum(&path)?;
    if found != manifest.sha256 || found_bytes != manifest.bytes {
        return Err(SnapshotError::Checksum {
            path,
            expected: manifest.sha256.clone(),
            found,
            expected_bytes: manifest.bytes,
            found_bytes,
        });
    }
    let mut count = 0u64;
    read_records(dir, 1000, |batch| {
        count += batch.len() as u64;
        Ok::<(), SnapshotError>(())
    })?;
    if count != manifest.resources {
        return Err(SnapshotError::Count {
            expected: manifest.resources,
            found: count,
        });
    }
    Ok(())
}

/// SHA-256 (hex) and size of a file.
fn checksum(path: &Path) -> Result<(String, u64), SnapshotError> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut digest = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(io(path))?;
        if read == 0 {
            break;
        }
        digest.update(&buffer[..read]);
        bytes += read as u64;
    }
    Ok((hex::encode(digest.finalize()), bytes))
}

/// Decodes the resources of the snapshot in `dir` and hands them to `visit` in batches of
/// `batch` records, in file order.
pub fn read_records<E>(
    dir: &Path,
    batch: usize,
    mut visit: impl FnMut(Vec<SnapshotRecord>) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<SnapshotError>,
{
    let path = dir.join(RESOURCES_FILE);
    let file = File::open(&path).map_err(io(&path))?;
    let mut lines = BufReader::with_capacity(1 << 20, MultiGzDecoder::new(BufReader::new(file)));
    let mut pending = Vec::with_capacity(batch);
    let mut text = String::new();
    let mut number = 0u64;
    loop {
        text.clear();
        let read = lines.read_line(&mut text).map_err(io(&path))?;
        if read == 0 {
            break;
        }
        number += 1;
        if text.trim().is_empty() {
            continue;
        }
        pending.push(decode_line(&text, &path, number)?);
        if pending.len() >= batch {
            visit(std::mem::replace(&mut pending, Vec::with_capacity(batch)))?;
        }
    }
    if !pending.is_empty() {
        visit(pending)?;
    }
    Ok(())
}

fn decode_line(text: &str, path: &Path, line: u64) -> Result<SnapshotRecord, SnapshotError> {
    let bad = |message: String| SnapshotError::Record {
        path: path.to_owned(),
        line,
        message,
    };
    let decoded: LineIn<'_> = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let key = match decoded.kind.as_str() {
        "fhir" => ResourceKey::fhir(decoded.resource_type, decoded.id),
        "rest" => ResourceKey::rest(decoded.resource_type, decoded.id),
        other => {
            return Err(bad(format!(
                "kind {other:?} is neither \"fhir\" nor \"rest\""
            )));
        }
    };
    let well_formed_hash =
        decoded.hash.len() == 64 && decoded.hash.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed_hash {
        return Err(bad(format!(
            "{key}: {:?} is not a content hash",
            decoded.hash
        )));
    }
    if decoded.version == 0 {
        return Err(bad(format!("{key}: version 0 does not exist")));
    }
    Ok(SnapshotRecord {
        key,
        version: decoded.version,
        hash: decoded.hash,
        origin: decoded.origin,
        body: decoded.resource.get().to_string(),
    })
}

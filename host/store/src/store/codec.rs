//! Byte layout of the store's sled keys and values. Compact and hand-rolled so a 1.5 KB
//! resource costs little more than its body on disk.
//!
//! Keys: a resource is `kind byte, type, 0x00, id`; a history entry appends `0x00, version (u64
//! big-endian)`; the change log is keyed by the sequence (u64 big-endian); a category position is
//! `category, 0x00, position (u64 big-endian)`. Big-endian integers sort numerically.

use time::OffsetDateTime;

use super::types::{Action, Change, Kind, Placement, ResourceKey, StoreError, VersionRecord};

/// Leading byte of every encoded value, so the layout can evolve. Format 2 added the
/// placement, format 3 the keys a source supplied with it; values of formats 1 and 2 are
/// still read.
const FORMAT: u8 = 3;
/// The format before supplied keys.
const FORMAT_PLACED: u8 = 2;
/// The format before placements.
const FORMAT_UNPLACED: u8 = 1;
pub(crate) use sync_host_scope::MAX_PLACEMENT_KEYS;

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Fhir => b'F',
        Kind::Rest => b'R',
    }
}

fn kind_from_byte(byte: u8) -> Result<Kind, StoreError> {
    match byte {
        b'F' => Ok(Kind::Fhir),
        b'R' => Ok(Kind::Rest),
        other => Err(corrupt(&format!("unknown kind byte {other}"))),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Storage(format!("corrupt store entry: {what}"))
}

/// Longest resource type or id accepted, in bytes: keys stay short so sled nodes stay small.
const MAX_KEY_PART: usize = 1024;

/// Rejects keys that would make the encoding ambiguous or overflow its length fields.
pub(crate) fn validate_key(key: &ResourceKey) -> Result<(), StoreError> {
    let bad = |part: &str| part.is_empty() || part.len() > MAX_KEY_PART || part.contains('\0');
    if bad(&key.resource_type) || bad(&key.id) {
        return Err(StoreError::InvalidKey(key.to_string()));
    }
    Ok(())
}

/// Prefix shared by every resource of one type: `kind, type, 0x00`.
pub(crate) fn type_prefix(kind: Kind, resource_type: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(resource_type.len() + 2);
    out.push(kind_byte(kind));
    out.extend_from_slice(resource_type.as_bytes());
    out.push(0);
    out
}

/// Key of a resource in the `current` tree.
pub(crate) fn resource_key(key: &ResourceKey) -> Vec<u8> {
    let mut out = type_prefix(key.kind, &key.resource_type);
    out.extend_from_slice(key.id.as_bytes());
    out
}

/// Prefix of every history entry of one resource.
pub(crate) fn history_prefix(key: &ResourceKey) -> Vec<u8> {
    let mut out = resource_key(key);
    out.push(0);
    out
}

/// Key of one old version in the `history` tree.
pub(crate) fn history_key(key: &ResourceKey, version_id: u64) -> Vec<u8> {
    let mut out = history_prefix(key);
    out.extend_from_slice(&version_id.to_be_bytes());
    out
}

/// Key of a compartment entry in the `members` tree: the owner's key, 0, the member's key.
pub(crate) fn member_key(owner: &ResourceKey, member: &ResourceKey) -> Vec<u8> {
    let mut out = member_prefix(owner);
    out.extend_from_slice(&resource_key(member));
    out
}

/// Prefix of every compartment entry of one owner.
pub(crate) fn member_prefix(owner: &ResourceKey) -> Vec<u8> {
    let mut out = resource_key(owner);
    out.push(0);
    out
}

/// Whether a resource of this type may own a compartment: a FHIR Patient or a REST patient.
pub(crate) fn may_own_compartment(key: &ResourceKey) -> bool {
    match key.kind {
        Kind::Fhir => key.resource_type == "Patient",
        Kind::Rest => key.resource_type == "patient",
    }
}

/// Whether any write of `unit` is to a resource that may own a compartment.
pub(crate) fn unit_writes_owner(unit: &[super::plan::Prepared]) -> bool {
    unit.iter().any(|request| may_own_compartment(&request.key))
}

/// Key of a category position entry.
pub(crate) fn position_key(category: &str, position: u64) -> Vec<u8> {
    let mut out = category_prefix(category);
    out.extend_from_slice(&position.to_be_bytes());
    out
}

/// Prefix of a category's position entries (also the counter key suffix).
pub(crate) fn category_prefix(category: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(category.len() + 1);
    out.extend_from_slice(category.as_bytes());
    out.push(0);
    out
}

/// Reads a big-endian u64 value or key.
pub(crate) fn decode_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt("integer is not 8 bytes"))?;
    Ok(u64::from_be_bytes(array))
}

/// Splits a `current` tree key back into a resource key.
pub(crate) fn decode_resource_key(bytes: &[u8]) -> Result<ResourceKey, StoreError> {
    let (&kind, rest) = bytes.split_first().ok_or_else(|| corrupt("empty key"))?;
    let split = rest
        .iter()
        .position(|&byte| byte == 0)
        .ok_or_else(|| corrupt("key without type"))?;
    Ok(ResourceKey {
        kind: kind_from_byte(kind)?,
        resource_type: utf8(&rest[..split])?,
        id: utf8(&rest[split + 1..])?,
    })
}

fn utf8(bytes: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("text is not UTF-8"))
}

fn action_code(action: Action) -> u8 {
    Action::ALL
        .iter()
        .position(|&candidate| candidate == action)
        .unwrap_or(0) as u8
}

fn action_from_code(code: u8) -> Result<Action, StoreError> {
    Action::ALL
        .get(usize::from(code))
        .copied()
        .ok_or_else(|| corrupt("unknown action"))
}

fn millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_millis(value: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 1_000_000)
        .map_err(|_| corrupt("timestamp out of range"))
}

/// Hashes are hex sha256: stored as 32 raw bytes, or as text if they are anything else.
fn put_hash(out: &mut Vec<u8>, hash: &str) {
    match hex::decode(hash) {
        Ok(raw) if raw.len() == 32 && hash.bytes().all(|b| !b.is_ascii_uppercase()) => {
            out.push(1);
            out.extend_from_slice(&raw);
        }
        _ => {
            out.push(2);
            put_text(out, hash);
        }
    }
}

/// Writes a length-prefixed text. Origins come from other nodes and are not length-checked,
/// so the prefix is a u32: no text the store can hold in memory is ever cut.
fn put_text(out: &mut Vec<u8>, text: &str) {
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes().get(..len as usize).unwrap_or_default());
}

/// Encodes a version's value (the key is stored in the tree key).
pub(crate) fn encode_record(record: &VersionRecord) -> Vec<u8> {
    let body_len = record.body.as_ref().map_or(0, String::len);
    let mut out = Vec::with_capacity(body_len + 64 + record.origin.len());
    out.push(FORMAT);
    out.extend_from_slice(&record.version_id.to_be_bytes());
    out.extend_from_slice(&millis(record.last_updated).to_be_bytes());
    out.extend_from_slice(&record.sequence.to_be_bytes());
    out.push(action_code(record.action));
    out.push(u8::from(record.deleted));
    put_hash(&mut out, &record.content_hash);
    put_text(&mut out, &record.origin);
    put_placement(&mut out, &record.placement);
    if let Some(body) = &record.body {
        put_body(&mut out, body);
    }
    out
}

/// Body tag: stored as is.
const BODY_PLAIN: u8 = 1;
/// Body tag: LZ4 block with its length prepended.
const BODY_LZ4: u8 = 2;
/// Bodies shorter than this are not worth compressing.
const COMPRESS_FROM: usize = 128;

fn put_body(out: &mut Vec<u8>, body: &str) {
    if body.len() >= COMPRESS_FROM {
        let compressed = lz4_flex::block::compress_prepend_size(body.as_bytes());
        if compressed.len() < body.len() {
            out.push(BODY_LZ4);
            out.extend_from_slice(&compressed);
            return;
        }
    }
    out.push(BODY_PLAIN);
    out.extend_from_slice(body.as_bytes());
}

fn read_body(bytes: &[u8]) -> Result<String, StoreError> {
    match bytes.split_first() {
        Some((&BODY_PLAIN, plain)) => utf8(plain),
        Some((&BODY_LZ4, compressed)) => {
            let plain = lz4_flex::block::decompress_size_prepended(compressed)
                .map_err(|error| corrupt(&format!("body does not decompress: {error}")))?;
            String::from_utf8(plain).map_err(|_| corrupt("text is not UTF-8"))
        }
        _ => Err(corrupt("unknown body tag")),
    }
}

/// Decodes a version's value.
pub(crate) fn decode_record(key: ResourceKey, bytes: &[u8]) -> Result<VersionRecord, StoreError> {
    let mut reader = Reader::new(bytes)?;
    let version_id = reader.u64()?;
    let last_updated = from_millis(reader.u64()? as i64)?;
    let sequence = reader.u64()?;
    let action = action_from_code(reader.u8()?)?;
    let deleted = reader.u8()? != 0;
    let content_hash = reader.hash()?;
    let origin = reader.text()?;
    let placement = reader.placement()?;
    let rest = reader.rest();
    let body = if deleted {
        None
    } else {
        Some(read_body(rest)?)
    };
    Ok(VersionRecord {
        key,
        version_id,
        last_updated,
        deleted,
        body,
        content_hash,
        origin,
        sequence,
        action,
        placement,
    })
}

/// The placement of an encoded version, without decoding its body.
pub(crate) fn record_placement(bytes: &[u8]) -> Result<Placement, StoreError> {
    let mut reader = Reader::new(bytes)?;
    reader.take(8 + 8 + 8 + 1 + 1)?;
    reader.hash()?;
    reader.text()?;
    reader.placement()
}

fn put_keys(out: &mut Vec<u8>, keys: &[String]) {
    let kept = &keys[..keys.len().min(MAX_PLACEMENT_KEYS)];
    out.push(kept.len() as u8);
    for key in kept {
        put_text(out, key);
    }
}

fn put_placement(out: &mut Vec<u8>, placement: &Placement) {
    out.push(u8::from(placement.scoped));
    put_keys(out, &placement.keys);
    match &placement.owner {
        None => out.push(0),
        Some(owner) => {
            out.push(kind_byte(owner.kind));
            put_text(out, &owner.resource_type);
            put_text(out, &owner.id);
        }
    }
    put_keys(out, &placement.supplied);
}

/// The version number of an encoded version, without decoding the rest.
pub(crate) fn record_version(bytes: &[u8]) -> Result<u64, StoreError> {
    Reader::new(bytes)?.u64()
}

/// Encodes a change-log value (the sequence is the tree key).
pub(crate) fn encode_change(change: &Change) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + change.key.id.len());
    out.push(FORMAT);
    out.push(action_code(change.action));
    out.push(kind_byte(change.key.kind));
    out.extend_from_slice(&change.version_id.to_be_bytes());
    out.extend_from_slice(&millis(change.at).to_be_bytes());
    put_hash(&mut out, &change.content_hash);
    put_text(&mut out, &change.key.resource_type);
    put_text(&mut out, &change.key.id);
    put_text(&mut out, &change.origin);
    put_placement(&mut out, &change.placement);
    put_keys(&mut out, &change.left_keys);
    out
}

/// Decodes a change-log value.
pub(crate) fn decode_change(sequence: u64, bytes: &[u8]) -> Result<Change, StoreError> {
    let mut reader = Reader::new(bytes)?;
    let action = action_from_code(reader.u8()?)?;
    let kind = kind_from_byte(reader.u8()?)?;
    let version_id = reader.u64()?;
    let at = from_millis(reader.u64()? as i64)?;
    let content_hash = reader.hash()?;
    let resource_type = reader.text()?;
    let id = reader.text()?;
    let origin = reader.text()?;
    let placement = reader.placement()?;
    let left_keys = if reader.format == FORMAT_UNPLACED {
        Vec::new()
    } else {
        reader.keys()?
    };
    let key = ResourceKey {
        kind,
        resource_type,
        id,
    };
    Ok(Change {
        sequence,
        action,
        category: key.category(),
        key,
        version_id,
        content_hash,
        origin,
        at,
        placement,
        left_keys,
    })
}

/// Cursor over an encoded value that reports truncation instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    /// The value's format: [`FORMAT`], [`FORMAT_PLACED`] or [`FORMAT_UNPLACED`].
    format: u8,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, StoreError> {
        match bytes.split_first() {
            Some((&format, rest)) if matches!(format, FORMAT | FORMAT_PLACED | FORMAT_UNPLACED) => {
                Ok(Reader {
                    bytes: rest,
                    format,
                })
            }
            _ => Err(corrupt("unknown value format")),
        }
    }

    fn keys(&mut self) -> Result<Vec<String>, StoreError> {
        let count = self.u8()?;
        (0..count).map(|_| self.text()).collect()
    }

    /// The placement; a value written before placements existed is placed nowhere, which
    /// hides it from every scoped client until the store classifies it again.
    fn placement(&mut self) -> Result<Placement, StoreError> {
        if self.format == FORMAT_UNPLACED {
            return Ok(Placement {
                scoped: true,
                ..Placement::default()
            });
        }
        let scoped = self.u8()? != 0;
        let keys = self.keys()?;
        let owner = match self.u8()? {
            0 => None,
            kind => Some(ResourceKey {
                kind: kind_from_byte(kind)?,
                resource_type: self.text()?,
                id: self.text()?,
            }),
        };
        let supplied = match self.format {
            FORMAT_PLACED => Vec::new(),
            _ => self.keys()?,
        };
        Ok(Placement {
            scoped,
            keys,
            owner,
            supplied,
        })
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < len {
            return Err(corrupt("value is truncated"));
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        decode_u64(self.take(8)?)
    }

    fn text(&mut self) -> Result<String, StoreError> {
        let len = u32::from_be_bytes([self.u8()?, self.u8()?, self.u8()?, self.u8()?]);
        utf8(self.take(len as usize)?)
    }

    fn hash(&mut self) -> Result<String, StoreError> {
        match self.u8()? {
            1 => Ok(hex::encode(self.take(32)?)),
            2 => self.text(),
            _ => Err(corrupt("unknown hash tag")),
        }
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;

//! Keys of the sync-state trees, encoded as length-prefixed parts so no id can collide with
//! another by containing a separator.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::sync::conflict::Direction;

/// Where a feed reader stands: keyed by the parent's node identity and the feed name, never
/// by URL or credentials, so moving the parent to a new address keeps the position.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MarkerKey {
    /// The parent's node id (or `local` for this node's own feed).
    pub parent_node: String,
    /// The feed name (category, or the combined feed).
    pub feed: String,
}

/// A resource, for its [`crate::sync::conflict::SyncBase`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BaseKey {
    /// `Patient`, `patient`, ...
    pub resource_type: String,
    /// The resource id.
    pub resource_id: String,
}

/// The pending failure of one resource in one direction. Events of the same resource share
/// it: the engine fetches full state, so one retry covers every earlier change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FailureKey {
    /// Pull or push.
    pub direction: Direction,
    /// The resource type.
    pub resource_type: String,
    /// The resource id.
    pub resource_id: String,
}

impl MarkerKey {
    /// sled key bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_parts(&[&self.parent_node, &self.feed])
    }

    /// Decodes [`MarkerKey::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let [parent_node, feed] = decode_parts::<2>(bytes)?;
        Some(Self { parent_node, feed })
    }
}

impl BaseKey {
    /// sled key bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_parts(&[&self.resource_type, &self.resource_id])
    }
}

impl FailureKey {
    /// sled key bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let direction = self.direction.name();
        encode_parts(&[direction, &self.resource_type, &self.resource_id])
    }

    /// The key a base uses for the same resource.
    pub fn base_key(&self) -> BaseKey {
        BaseKey {
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id.clone(),
        }
    }
}

impl fmt::Display for FailureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let direction = self.direction.name();
        write!(f, "{direction} {}/{}", self.resource_type, self.resource_id)
    }
}

fn encode_parts(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        // Ids longer than 4 GiB do not exist; saturating keeps the function total anyway.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn decode_parts<const N: usize>(mut bytes: &[u8]) -> Option<[String; N]> {
    let mut parts: [String; N] = std::array::from_fn(|_| String::new());
    for part in &mut parts {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        let (text, rest) = (rest.get(..len)?, rest.get(len..)?);
        *part = String::from_utf8(text.to_vec()).ok()?;
        bytes = rest;
    }
    bytes.is_empty().then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn marker_keys_round_trip_and_never_collide(a: String, b: String, c: String, d: String) {
            let k1 = MarkerKey { parent_node: a, feed: b };
            let k2 = MarkerKey { parent_node: c, feed: d };
            prop_assert_eq!(MarkerKey::from_bytes(&k1.to_bytes()), Some(k1.clone()));
            prop_assert_eq!(k1 == k2, k1.to_bytes() == k2.to_bytes());
        }
    }

    #[test]
    fn separator_characters_do_not_merge_parts() {
        let a = BaseKey {
            resource_type: "a\0b".into(),
            resource_id: "c".into(),
        };
        let b = BaseKey {
            resource_type: "a".into(),
            resource_id: "b\0c".into(),
        };
        assert_ne!(a.to_bytes(), b.to_bytes());
    }
}

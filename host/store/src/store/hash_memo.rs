//! Content hashes computed in this process ahead of a write, offered to the store so that a
//! body is hashed once on its way in: the sync engine hashes every fetched body to decide
//! about it, and the write that follows carries the same bytes.
//!
//! An offer is only a memo of `content_hash(body)`: a write takes it only when its body is
//! byte for byte the offered one, so whoever sends the write, the stored hash is the hash of
//! the stored bytes. Offers are bounded in number and withdrawn when their writer is done.
//!
//! An offer also carries the scope keys the source supplied with that version outside its
//! body (the location path of an OpenMRS feed-filter tag): the write that takes the offer
//! places the version with them too.

use std::collections::HashMap;
use std::sync::Mutex;

use super::types::ResourceKey;

/// A resource named kind-blind: lower-case type and id. The engine names resources as feeds
/// do, without saying FHIR or REST; a FHIR and a REST record of one name only share an offer,
/// and a write whose bytes are not the offered ones hashes its body as before.
type MemoKey = (String, String);

fn memo_key(resource_type: &str, id: &str) -> MemoKey {
    (resource_type.to_ascii_lowercase(), id.to_owned())
}

/// The most offers held at once; beyond it an offer is ignored and its write hashes the body.
const MAX_OFFERS: usize = 16_384;

/// A body and its content hash, offered ahead of the write of that resource.
#[derive(Debug, Clone)]
pub struct HashOffer {
    /// The type (FHIR) or resource name (REST) the write will be for, in any case.
    pub resource_type: String,
    /// Its id.
    pub id: String,
    /// The exact body the write will carry.
    pub body: String,
    /// `content_hash(body)`, already computed (and so the body already validated by it);
    /// `None` when the engine kept a raw hash of a body it could not canonicalise.
    pub hash: Option<String>,
    /// Scope keys the source supplied with this version (see the module's notes).
    pub supplied_keys: Vec<String>,
}

/// What a write takes from the offer made for its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Offered {
    pub hash: Option<String>,
    pub supplied_keys: Vec<String>,
}

/// Offers waiting for their writes.
#[derive(Debug, Default)]
pub(crate) struct HashMemo {
    offers: Mutex<HashMap<MemoKey, (String, Offered)>>,
}

impl HashMemo {
    /// Holds `offers` until taken or withdrawn; returns the keys held, to withdraw later.
    pub fn offer(&self, offers: Vec<HashOffer>) -> Vec<MemoKey> {
        let mut held = self.lock();
        let mut keys = Vec::with_capacity(offers.len());
        for offer in offers {
            if held.len() >= MAX_OFFERS {
                break;
            }
            let key = memo_key(&offer.resource_type, &offer.id);
            let offered = Offered {
                hash: offer.hash,
                supplied_keys: offer.supplied_keys,
            };
            held.insert(key.clone(), (offer.body, offered));
            keys.push(key);
        }
        keys
    }

    /// The offer for a write of `body` to `key`, when `body` is exactly the offered body;
    /// the offer is used up either way.
    pub fn take(&self, key: &ResourceKey, body: &str) -> Option<Offered> {
        let key = memo_key(&key.resource_type, &key.id);
        let (offered_body, offered) = self.lock().remove(&key)?;
        (offered_body == body).then_some(offered)
    }

    /// Drops what is left of the offers under `keys`.
    pub fn withdraw(&self, keys: &[MemoKey]) {
        let mut held = self.lock();
        for key in keys {
            held.remove(key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MemoKey, (String, Offered)>> {
        // A panic while the map was held leaves it usable: every entry is a whole offer, and a
        // lost or stale one only means a body is hashed again (`take` checks the bytes).
        self.offers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Offers made through [`crate::store::Store::offer_hashes`], withdrawn when dropped.
#[must_use = "the offers are withdrawn when this is dropped"]
pub struct OfferedHashes<'a> {
    pub(crate) memo: &'a HashMemo,
    pub(crate) keys: Vec<MemoKey>,
}

impl Drop for OfferedHashes<'_> {
    fn drop(&mut self) {
        self.memo.withdraw(&self.keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(id: &str, body: &str) -> HashOffer {
        HashOffer {
            resource_type: "Patient".into(),
            id: id.into(),
            body: body.into(),
            hash: Some(format!("hash-of-{body}")),
            supplied_keys: vec!["Kenya%Nairobi".into()],
        }
    }

    #[test]
    fn a_write_takes_an_offer_only_for_the_same_bytes_and_only_once() {
        let memo = HashMemo::default();
        memo.offer(vec![offer("a", "{}"), offer("b", "{}")]);
        let a = ResourceKey::fhir("Patient", "a");
        let taken = memo.take(&a, "{}").unwrap();
        assert_eq!(taken.hash.as_deref(), Some("hash-of-{}"));
        assert_eq!(taken.supplied_keys, ["Kenya%Nairobi"]);
        assert_eq!(memo.take(&a, "{}"), None);
        let b = ResourceKey::fhir("Patient", "b");
        assert_eq!(
            memo.take(&b, "{ }"),
            None,
            "other bytes, even of the same JSON"
        );
        assert_eq!(memo.take(&b, "{}"), None, "the mismatch used the offer up");
    }

    #[test]
    fn withdrawn_offers_are_gone_and_the_memo_is_bounded() {
        let memo = HashMemo::default();
        let keys = memo.offer(vec![offer("a", "{}")]);
        memo.withdraw(&keys);
        assert_eq!(memo.take(&ResourceKey::fhir("Patient", "a"), "{}"), None);
        let many = (0..MAX_OFFERS + 10)
            .map(|i| offer(&i.to_string(), "{}"))
            .collect();
        assert_eq!(memo.offer(many).len(), MAX_OFFERS);
    }
}

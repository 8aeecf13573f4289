//! What a scoped client may see: a list of key patterns, matched against the placement the
//! store recorded for each version.

use std::fmt;

use crate::key::Placement;

/// Most patterns in one scope, and the longest pattern: both come from configuration.
pub const MAX_PATTERNS: usize = 1024;
const MAX_PATTERN_LEN: usize = 512;

/// A client's data scope: the keys it may see, each an exact key (`Location/kibera-hc`) or a
/// pattern where `*` stands for any run of characters (`Organization/nairobi-*`).
#[derive(Clone, PartialEq, Eq)]
pub struct DataScope {
    patterns: Vec<String>,
}

/// A scope that cannot be used, naming the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// An empty list would let the client see only shared resources, which is almost
    /// certainly a mistake; leave the scope out to see everything.
    #[error("the scope lists no keys")]
    Empty,
    /// Too many patterns.
    #[error("the scope lists {0} keys, more than {MAX_PATTERNS}")]
    TooMany(usize),
    /// A pattern is empty, too long, or only wildcards.
    #[error(
        "scope key {0:?} is unusable: write a key such as `Location/<id>`, optionally with `*`"
    )]
    Unusable(String),
}

impl DataScope {
    /// Checks the patterns.
    pub fn new(patterns: &[String]) -> Result<DataScope, ScopeError> {
        if patterns.is_empty() {
            return Err(ScopeError::Empty);
        }
        if patterns.len() > MAX_PATTERNS {
            return Err(ScopeError::TooMany(patterns.len()));
        }
        for pattern in patterns {
            let only_wildcards = pattern.chars().all(|c| c == '*');
            if only_wildcards || pattern.len() > MAX_PATTERN_LEN {
                return Err(ScopeError::Unusable(pattern.clone()));
            }
        }
        Ok(DataScope {
            patterns: patterns.to_vec(),
        })
    }

    /// The patterns, as configured.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `key` is in the scope.
    pub fn contains(&self, key: &str) -> bool {
        self.patterns.iter().any(|pattern| matches(pattern, key))
    }

    /// Whether a client with this scope may see a version placed at `placement`: a shared
    /// resource always, a scoped one when any of its keys is in the scope.
    pub fn admits(&self, placement: &Placement) -> bool {
        !placement.scoped || self.intersects(&placement.keys)
    }

    /// Whether any of `keys` is in the scope.
    pub fn intersects(&self, keys: &[String]) -> bool {
        keys.iter().any(|key| self.contains(key))
    }

    /// A short stable name of the scope, for page tags and cache keys.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for pattern in &self.patterns {
            hasher.update(pattern.as_bytes());
            hasher.update([0]);
        }
        hex::encode(&hasher.finalize()[..8])
    }
}

impl fmt::Debug for DataScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.patterns).finish()
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters. Linear in the
/// lengths: the last `*` seen is the only backtracking point.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(patterns: &[&str]) -> DataScope {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        DataScope::new(&patterns).unwrap()
    }

    fn placed(keys: &[&str]) -> Placement {
        Placement {
            scoped: true,
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            owner: None,
            supplied: Vec::new(),
        }
    }

    #[test]
    fn patterns_match_exactly_or_through_wildcards() {
        assert!(matches("Location/a", "Location/a"));
        assert!(!matches("Location/a", "Location/ab"));
        assert!(matches("Location/a*", "Location/ab"));
        assert!(matches(
            "Organization/*-north",
            "Organization/district-north"
        ));
        assert!(!matches(
            "Organization/*-north",
            "Organization/district-south"
        ));
        assert!(matches("*/kibera", "Location/kibera"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn shared_resources_are_admitted_and_scoped_ones_by_their_keys() {
        let district = scope(&["Organization/north", "Location/north-*"]);
        assert!(district.admits(&Placement::default()));
        assert!(district.admits(&placed(&["Location/north-clinic"])));
        assert!(district.admits(&placed(&["Location/south", "Organization/north"])));
        assert!(!district.admits(&placed(&["Location/south"])));
        assert!(
            !district.admits(&placed(&[])),
            "a scoped resource without keys"
        );
    }

    #[test]
    fn unusable_scopes_are_refused() {
        assert_eq!(DataScope::new(&[]), Err(ScopeError::Empty));
        assert!(matches!(
            DataScope::new(&["*".to_owned()]),
            Err(ScopeError::Unusable(_))
        ));
        assert!(matches!(
            DataScope::new(&[String::new()]),
            Err(ScopeError::Unusable(_))
        ));
        assert_ne!(scope(&["a"]).digest(), scope(&["b"]).digest());
    }
}

//! Bearer tokens of the node's own clients: what a strong one is, and making one.
//!
//! A token is the only thing between the network and a clinic's records, so the node refuses
//! to start with one that is short enough to guess or that carries white space (a token file
//! edited by hand with a stray space would otherwise fail every request in a confusing way).

use rand::Rng;

/// The shortest token accepted, in bytes: 32 random hex characters carry 128 bits.
pub const MIN_TOKEN_BYTES: usize = 32;

/// How an operator gets a strong token, for error messages.
pub const HOW_TO_GENERATE: &str = "generate one with `sync-host token` (or `openssl rand -hex 32`)";

/// What makes a token weak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakToken {
    #[error("is {0} bytes long; tokens must be at least {MIN_TOKEN_BYTES} bytes")]
    Short(usize),
    #[error("starts or ends with white space")]
    Whitespace,
}

/// Why `token` is too weak to accept, if it is.
pub fn weakness(token: &str) -> Option<WeakToken> {
    if token.trim() != token {
        return Some(WeakToken::Whitespace);
    }
    if token.len() < MIN_TOKEN_BYTES {
        return Some(WeakToken::Short(token.len()));
    }
    None
}

/// A fresh random token: 32 random bytes as 64 hex characters.
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_padded_tokens_are_weak() {
        assert_eq!(weakness("hunter2"), Some(WeakToken::Short(7)));
        let exactly = "a".repeat(MIN_TOKEN_BYTES);
        assert_eq!(weakness(&exactly), None);
        assert_eq!(
            weakness(&format!(" {exactly}")),
            Some(WeakToken::Whitespace)
        );
        assert_eq!(
            weakness(&format!("{exactly}\t")),
            Some(WeakToken::Whitespace)
        );
    }

    #[test]
    fn generated_tokens_are_strong_and_distinct() {
        let (a, b) = (generate(), generate());
        assert_eq!(weakness(&a), None);
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}

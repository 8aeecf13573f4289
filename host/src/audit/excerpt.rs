//! Bounded copies of text that comes from outside (a feed entry as published, a failure message
//! a parent or a plugin wrote) for the audit and the retry queue: a hostile publisher must not
//! grow the node's databases by the size of what it sends.

use sha2::{Digest, Sha256};

/// The most bytes of such a text kept as written.
pub const MAX_KEPT_BYTES: usize = 4096;

/// `text` itself when it is at most [`MAX_KEPT_BYTES`] long; otherwise its first
/// [`MAX_KEPT_BYTES`] bytes (cut at a character boundary), followed by its full length and
/// sha256, so that the original can still be recognised.
pub fn bounded(text: &str) -> String {
    if text.len() <= MAX_KEPT_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_KEPT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    format!(
        "{}… [truncated: {} bytes in all, sha256 {digest}]",
        &text[..end],
        text.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(bounded("<entry/>"), "<entry/>");
        let limit = "x".repeat(MAX_KEPT_BYTES);
        assert_eq!(bounded(&limit), limit);
    }

    #[test]
    fn long_text_keeps_its_start_length_and_hash() {
        let long = format!("é{}", "x".repeat(3 * MAX_KEPT_BYTES));
        let kept = bounded(&long);
        assert!(kept.len() < MAX_KEPT_BYTES + 120, "{}", kept.len());
        assert!(kept.starts_with("éxxx"));
        assert!(kept.contains(&format!("{} bytes in all", long.len())));
        assert_eq!(kept, bounded(&long), "the same text gives the same excerpt");
        assert_ne!(kept, bounded(&format!("{long}y")));
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let text = "é".repeat(MAX_KEPT_BYTES);
        let kept = bounded(&text);
        assert!(kept.starts_with(&"é".repeat(MAX_KEPT_BYTES / 2)));
    }
}

//! The one nesting limit for JSON a node reads, checked by a flat scan of the bytes before any
//! walker (the content hash, the splicer, serde) gets to recurse into the document.

use super::JsonError;

/// The deepest nesting of arrays and objects accepted anywhere in a node: API bodies, Bundles,
/// REST documents, imported files, resources fetched from a parent and plugin responses.
///
/// FHIR R4 resources stay far below it (a deeply grouped Questionnaire reaches about 30), and
/// it sits under serde_json's own recursion limit of 128, so every reader in the node refuses
/// the same documents with the same error.
pub const MAX_DEPTH: usize = 100;

/// Checks that `text` nests arrays and objects at most [`MAX_DEPTH`] deep.
///
/// Counts `[` and `{` outside strings without recursing and without validating anything
/// else: malformed text that passes is left for the parser to reject. The structural bytes
/// are ASCII, so they never occur inside a multi-byte UTF-8 sequence.
pub fn check_depth(text: &str) -> Result<(), JsonError> {
    match deepest_offset(text.as_bytes()) {
        Some(offset) => Err(JsonError::TooDeep {
            limit: MAX_DEPTH,
            offset,
        }),
        None => Ok(()),
    }
}

/// The byte offset where nesting first exceeds [`MAX_DEPTH`], if it does.
fn deepest_offset(bytes: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, &byte) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(offset);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, levels: usize) -> String {
        format!("{}{}", open.repeat(levels), close.repeat(levels))
    }

    #[test]
    fn the_limit_itself_is_accepted_and_one_more_is_not() {
        assert!(check_depth(&nested("[", "]", MAX_DEPTH)).is_ok());
        assert!(check_depth(&nested("{\"a\":", "}", MAX_DEPTH)).is_ok());
        let error = check_depth(&nested("[", "]", MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(
            error,
            JsonError::TooDeep {
                limit: MAX_DEPTH,
                offset: MAX_DEPTH
            }
        );
        assert!(check_depth(&nested("{\"a\":[", "]}", 51)).is_err());
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let text = format!(
            r#"{{"a":"{}\"{}","b":[]}}"#,
            "[".repeat(500),
            "{".repeat(500)
        );
        assert!(check_depth(&text).is_ok());
        let escaped_backslash = format!(r#"["\\",{}{}]"#, "[".repeat(100), "]".repeat(100));
        assert!(check_depth(&escaped_backslash).is_err());
    }

    #[test]
    fn sequential_siblings_do_not_add_up() {
        let wide = format!("[{}]", "[[[]]],".repeat(10_000) + "[]");
        assert!(check_depth(&wide).is_ok());
    }

    #[test]
    fn deep_nesting_serde_json_would_let_through_is_refused() {
        // serde_json skips a value it ignores without a recursion limit.
        let deep = format!("{{\"x\":{}}}", nested("[", "]", 100_000));
        assert!(serde_json::from_str::<serde::de::IgnoredAny>(&deep).is_ok());
        assert!(check_depth(&deep).is_err());
    }
}

//! Content hash of a JSON document: sha256 over a canonical form that ignores key order,
//! whitespace and server-managed meta, but keeps number lexemes exactly as written.
//!
//! Canonical form: objects with members sorted by the UTF-8 bytes of their keys (which is also
//! Unicode code point order), no insignificant whitespace, strings re-escaped the way serde_json
//! writes them, numbers, `true`, `false` and `null` as written. At the top level,
//! `meta.versionId`, `meta.lastUpdated` and `meta.source` are dropped, and `meta` itself when
//! nothing else is left in it.

use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::json::{JsonError, RawElements, object_fields};

/// Members of the top-level `meta` object that a server or a sync hop rewrites.
const SERVER_META: [&str; 3] = ["versionId", "lastUpdated", "source"];

/// Hex sha256 over the canonical form of `body` (see the module documentation).
pub fn content_hash(body: &str) -> Result<String, JsonError> {
    let canonical = canonical_form(body)?;
    Ok(hex::encode(Sha256::digest(canonical.as_bytes())))
}

/// The canonical text that [`content_hash`] digests.
pub fn canonical_form(body: &str) -> Result<String, JsonError> {
    let root: &RawValue = serde_json::from_str(body)?;
    let mut out = String::with_capacity(body.len());
    if root.get().starts_with('{') {
        write_document(root.get(), &mut out)?;
    } else {
        write_value(root, &mut out)?;
    }
    Ok(out)
}

/// Writes the top-level object, leaving out server-managed meta.
fn write_document(text: &str, out: &mut String) -> Result<(), JsonError> {
    let mut fields = object_fields(text, "the document")?;
    let mut stripped_meta = None;
    if let Some(index) = fields.iter().position(|(name, _)| name == "meta")
        && fields[index].1.get().starts_with('{')
    {
        let (_, meta) = fields.remove(index);
        let mut kept = object_fields(meta.get(), "meta")?;
        kept.retain(|(name, _)| !SERVER_META.contains(&name.as_str()));
        if !kept.is_empty() {
            stripped_meta = Some(kept);
        }
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    out.push('{');
    let mut first = true;
    let mut emit_meta = |out: &mut String, first: &mut bool| -> Result<(), JsonError> {
        if let Some(kept) = stripped_meta.take() {
            write_separator(out, first);
            write_key(out, "meta");
            write_members(kept, out)?;
        }
        Ok(())
    };
    for (name, value) in fields {
        if name.as_str() > "meta" {
            emit_meta(out, &mut first)?;
        }
        write_separator(out, &mut first);
        write_key(out, &name);
        write_value(value, out)?;
    }
    emit_meta(out, &mut first)?;
    out.push('}');
    Ok(())
}

fn write_separator(out: &mut String, first: &mut bool) {
    if !*first {
        out.push(',');
    }
    *first = false;
}

fn write_key(out: &mut String, key: &str) {
    write_string(out, key);
    out.push(':');
}

fn write_string(out: &mut String, text: &str) {
    // Serialising a &str into a String cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

/// Writes an object from its (unsorted) members.
fn write_members(mut members: Vec<(String, &RawValue)>, out: &mut String) -> Result<(), JsonError> {
    members.sort_by(|a, b| a.0.cmp(&b.0));
    out.push('{');
    let mut first = true;
    for (name, value) in members {
        write_separator(out, &mut first);
        write_key(out, &name);
        write_value(value, out)?;
    }
    out.push('}');
    Ok(())
}

fn write_value(value: &RawValue, out: &mut String) -> Result<(), JsonError> {
    let text = value.get().trim();
    match text.as_bytes().first() {
        Some(b'{') => write_members(object_fields(text, "an object")?, out),
        Some(b'[') => {
            let RawElements(elements) = serde_json::from_str(text)?;
            out.push('[');
            let mut first = true;
            for element in elements {
                write_separator(out, &mut first);
                write_value(element, out)?;
            }
            out.push(']');
            Ok(())
        }
        Some(b'"') => {
            let decoded: String = serde_json::from_str(text)?;
            write_string(out, &decoded);
            Ok(())
        }
        // Numbers, true, false and null: the lexeme as written is already canonical for us.
        _ => {
            out.push_str(text);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_sorts_keys_and_drops_whitespace() {
        let text = canonical_form(r#"{ "b" : [ 1 , {"z":null,"a":true} ], "a":"\u00e9\n" }"#);
        assert_eq!(
            text.unwrap(),
            "{\"a\":\"é\\n\",\"b\":[1,{\"a\":true,\"z\":null}]}"
        );
    }

    #[test]
    fn number_lexemes_are_kept() {
        assert_ne!(
            content_hash(r#"{"value":72.50}"#).unwrap(),
            content_hash(r#"{"value":72.5}"#).unwrap()
        );
    }

    #[test]
    fn server_meta_is_ignored_but_other_meta_is_not() {
        let bare = content_hash(r#"{"id":"p","name":"x"}"#).unwrap();
        let stamped =
            r#"{"meta":{"versionId":"4","lastUpdated":"T","source":"n"},"id":"p","name":"x"}"#;
        assert_eq!(content_hash(stamped).unwrap(), bare);
        let tagged = r#"{"meta":{"versionId":"4","tag":[{"code":"a"}]},"id":"p","name":"x"}"#;
        assert_ne!(content_hash(tagged).unwrap(), bare);
        assert_eq!(
            canonical_form(tagged).unwrap(),
            r#"{"id":"p","meta":{"tag":[{"code":"a"}]},"name":"x"}"#
        );
    }

    #[test]
    fn nested_meta_is_not_stripped() {
        assert_ne!(
            content_hash(r#"{"contained":[{"meta":{"versionId":"1"}}]}"#).unwrap(),
            content_hash(r#"{"contained":[{"meta":{}}]}"#).unwrap()
        );
    }

    #[test]
    fn invalid_json_is_an_error() {
        assert!(content_hash("{\"a\":").is_err());
        assert!(content_hash(r#"{"a":1,"a":1}"#).is_err());
    }
}

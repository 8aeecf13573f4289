//! Content hash of a JSON document: sha256 over a canonical form that ignores key order,
//! whitespace and server-managed meta, but keeps number lexemes exactly as written.
//!
//! Canonical form: objects with members sorted by the UTF-8 bytes of their keys (which is also
//! Unicode code point order), no insignificant whitespace, strings re-escaped the way serde_json
//! writes them, numbers, `true`, `false` and `null` as written. At the top level,
//! `meta.versionId`, `meta.lastUpdated` and `meta.source` are dropped, and `meta` itself when
//! nothing else is left in it.

use serde::de::IgnoredAny;
use sha2::{Digest, Sha256};

use crate::json::JsonError;

/// Members of the top-level `meta` object that a server or a sync hop rewrites.
const SERVER_META: [&str; 3] = ["versionId", "lastUpdated", "source"];

/// Hex sha256 over the canonical form of `body` (see the module documentation).
pub fn content_hash(body: &str) -> Result<String, JsonError> {
    let canonical = canonical_form(body)?;
    Ok(hex::encode(Sha256::digest(canonical.as_bytes())))
}

/// The canonical text that [`content_hash`] digests.
pub fn canonical_form(body: &str) -> Result<String, JsonError> {
    // The scanner recurses once per level; the depth check bounds it before it starts.
    crate::json::check_depth(body)?;
    // serde_json validates (and locates syntax errors); the scanner below then walks text that
    // is known to be well-formed JSON in a single pass.
    serde_json::from_str::<IgnoredAny>(body)?;
    let mut out = String::with_capacity(body.len());
    let mut scanner = Scanner { text: body, pos: 0 };
    scanner.value(&mut out, true)?;
    Ok(out)
}

/// A single-pass walk over well-formed JSON that writes its canonical form.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

/// One object member already written to the output: its key and where its bytes are.
struct Member {
    key: String,
    start: usize,
    end: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(&byte) = bytes.get(self.pos) {
            if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(byte);
            }
            self.pos += 1;
        }
        None
    }

    /// Consumes `byte` (after whitespace) or reports malformed input.
    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.malformed())
        }
    }

    fn malformed(&self) -> JsonError {
        JsonError::Syntax {
            line: 0,
            column: self.pos,
            message: "malformed JSON".to_owned(),
        }
    }

    /// Writes the canonical form of the value at the cursor.
    fn value(&mut self, out: &mut String, top_level: bool) -> Result<(), JsonError> {
        match self.peek() {
            Some(b'{') => self.object(out, top_level),
            Some(b'[') => self.array(out),
            Some(b'"') => {
                let raw = self.string_token()?;
                write_canonical_string(out, raw)
            }
            Some(_) => {
                // Numbers, true, false, null: the lexeme as written.
                let start = self.pos;
                let bytes = self.text.as_bytes();
                while bytes
                    .get(self.pos)
                    .is_some_and(|byte| !b",]} \t\n\r".contains(byte))
                {
                    self.pos += 1;
                }
                let lexeme = self
                    .text
                    .get(start..self.pos)
                    .ok_or_else(|| self.malformed())?;
                out.push_str(lexeme);
                Ok(())
            }
            None => Err(self.malformed()),
        }
    }

    /// The raw text of the string token at the cursor, quotes included.
    fn string_token(&mut self) -> Result<&'a str, JsonError> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        self.pos += 1;
        loop {
            match bytes.get(self.pos) {
                Some(b'"') => break,
                Some(b'\\') => self.pos += 2,
                Some(_) => self.pos += 1,
                None => return Err(self.malformed()),
            }
        }
        self.pos += 1;
        self.text
            .get(start..self.pos)
            .ok_or_else(|| self.malformed())
    }

    fn array(&mut self, out: &mut String) -> Result<(), JsonError> {
        self.expect(b'[')?;
        out.push('[');
        if self.peek() == Some(b']') {
            self.pos += 1;
            out.push(']');
            return Ok(());
        }
        loop {
            self.value(out, false)?;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    out.push(',');
                }
                Some(b']') => {
                    self.pos += 1;
                    out.push(']');
                    return Ok(());
                }
                _ => return Err(self.malformed()),
            }
        }
    }

    /// Writes members as they come, then reorders the written spans by key.
    fn object(&mut self, out: &mut String, top_level: bool) -> Result<(), JsonError> {
        self.expect(b'{')?;
        let start = out.len();
        let mut members = Vec::new();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                if let Some(member) = self.member(out, top_level)? {
                    members.push(member);
                }
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.malformed()),
                }
            }
        }
        let written = out.split_off(start);
        members.sort_by(|a, b| a.key.cmp(&b.key));
        if let Some(pair) = members.windows(2).find(|pair| pair[0].key == pair[1].key) {
            return Err(JsonError::DuplicateKey(pair[0].key.clone()));
        }
        out.push('{');
        for (index, member) in members.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            // Spans were recorded while writing `written`, so they lie on its char boundaries.
            out.push_str(
                written
                    .get(member.start - start..member.end - start)
                    .unwrap_or_default(),
            );
        }
        out.push('}');
        Ok(())
    }

    /// Writes one `"key":value` member; at the top level, `meta` loses its server-managed
    /// members and disappears when nothing else is left in it.
    fn member(&mut self, out: &mut String, top_level: bool) -> Result<Option<Member>, JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.malformed());
        }
        let raw_key = self.string_token()?;
        let key: String = serde_json::from_str(raw_key)?;
        self.expect(b':')?;
        let start = out.len();
        write_canonical_string(out, raw_key)?;
        out.push(':');
        let value_start = out.len();
        let strip_meta = top_level && key == "meta" && self.peek() == Some(b'{');
        self.value(out, false)?;
        if strip_meta {
            let canonical_meta = out.split_off(value_start);
            match without_server_meta(&canonical_meta)? {
                Some(kept) => out.push_str(&kept),
                None => {
                    out.truncate(start);
                    return Ok(None);
                }
            }
        }
        Ok(Some(Member {
            key,
            start,
            end: out.len(),
        }))
    }
}

/// Drops the server-managed members from a canonical `meta` object; `None` if it is then empty.
fn without_server_meta(canonical_meta: &str) -> Result<Option<String>, JsonError> {
    let fields = crate::json::object_fields(canonical_meta, "meta")?;
    let kept: Vec<String> = fields
        .iter()
        .filter(|(name, _)| !SERVER_META.contains(&name.as_str()))
        .map(|(name, value)| format!("{}:{}", encode_string(name), value.get()))
        .collect();
    Ok((!kept.is_empty()).then(|| format!("{{{}}}", kept.join(","))))
}

fn encode_string(text: &str) -> String {
    // Serialising a &str into a String cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}

/// Writes a string token canonically: as serde_json would escape its decoded text. A token
/// without a backslash already is (valid JSON has no raw control characters in strings).
fn write_canonical_string(out: &mut String, raw: &str) -> Result<(), JsonError> {
    if raw.contains('\\') {
        let decoded: String = serde_json::from_str(raw)?;
        out.push_str(&encode_string(&decoded));
    } else {
        out.push_str(raw);
    }
    Ok(())
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

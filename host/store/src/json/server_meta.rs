//! Splicing server meta (`meta.versionId`, `meta.lastUpdated`) into a FHIR resource by byte
//! offsets, so every other byte of the document stays as it was written.

use serde_json::value::RawValue;

use super::{JsonError, object_fields, top_level_fields};

/// Byte offset of `part` inside `whole`; `part` must be a slice borrowed from `whole`.
fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}

/// The byte range of `value` inside `whole`, or a syntax error if it was not borrowed from it
/// (serde_json always borrows `RawValue` from `&str` input, so this guards an invariant).
fn range_of(whole: &str, value: &RawValue) -> Result<(usize, usize), JsonError> {
    let start = offset_in(whole, value.get()).ok_or_else(|| JsonError::Syntax {
        line: 0,
        column: 0,
        message: "value not borrowed from the document".to_owned(),
    })?;
    Ok((start, start + value.get().len()))
}

/// Offset just after the opening `{` of the object that starts at `from`.
fn after_open_brace(whole: &str, from: usize) -> usize {
    whole[from..]
        .find('{')
        .map_or(from, |index| from + index + 1)
}

fn json_string(text: &str) -> String {
    // Serialising a &str cannot fail; fall back to a plain quote as a defensive default.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// One part of the text a [`ServerMetaSplice`] inserts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    VersionId,
    LastUpdated,
}

/// An edit of the document: `body[start..end]` becomes the pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edit {
    start: usize,
    end: usize,
    pieces: Vec<Piece>,
}

/// Where the server meta of one document goes, worked out once so that filling in a version is
/// a plain copy. Only valid for the exact text it was prepared from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMetaSplice {
    /// Non-overlapping edits in ascending order.
    edits: Vec<Edit>,
}

impl ServerMetaSplice {
    /// `body` (the text this splice was prepared from) with the server meta filled in.
    pub fn apply(&self, body: &str, version_id: &str, last_updated: &str) -> String {
        let mut out = String::with_capacity(body.len() + 96);
        let mut copied = 0;
        for edit in &self.edits {
            out.push_str(body.get(copied..edit.start).unwrap_or_default());
            for piece in &edit.pieces {
                match piece {
                    Piece::Text(text) => out.push_str(text),
                    Piece::VersionId => out.push_str(&json_string(version_id)),
                    Piece::LastUpdated => out.push_str(&json_string(last_updated)),
                }
            }
            copied = edit.end;
        }
        out.push_str(body.get(copied..).unwrap_or_default());
        out
    }
}

fn text(value: &str) -> Piece {
    Piece::Text(value.to_owned())
}

/// Works out where `with_server_meta` edits `body`: a missing `meta` goes after `id` (or after
/// `resourceType`, or first); existing values are replaced in place; missing members are
/// inserted first in `meta`.
pub fn prepare_server_meta(body: &str) -> Result<ServerMetaSplice, JsonError> {
    let fields = top_level_fields(body)?;
    let Some((_, meta)) = fields.iter().find(|(name, _)| name == "meta") else {
        let mut member = vec![
            text("\"meta\":{\"versionId\":"),
            Piece::VersionId,
            text(",\"lastUpdated\":"),
            Piece::LastUpdated,
            text("}"),
        ];
        let anchor = ["id", "resourceType"]
            .iter()
            .find_map(|anchor| fields.iter().find(|(name, _)| name == anchor));
        let edit = match anchor {
            Some((_, value)) => {
                let (_, end) = range_of(body, value)?;
                member.insert(0, text(","));
                Edit {
                    start: end,
                    end,
                    pieces: member,
                }
            }
            None => {
                let at = after_open_brace(body, 0);
                if !fields.is_empty() {
                    member.push(text(","));
                }
                Edit {
                    start: at,
                    end: at,
                    pieces: member,
                }
            }
        };
        return Ok(ServerMetaSplice { edits: vec![edit] });
    };
    let meta_fields = object_fields(meta.get(), "meta")?;
    let mut edits = Vec::new();
    let mut missing: Vec<Piece> = Vec::new();
    for (name, piece) in [
        ("versionId", Piece::VersionId),
        ("lastUpdated", Piece::LastUpdated),
    ] {
        match meta_fields.iter().find(|(field, _)| field == name) {
            Some((_, old)) => {
                let (start, end) = range_of(body, old)?;
                edits.push(Edit {
                    start,
                    end,
                    pieces: vec![piece],
                });
            }
            None => {
                if !missing.is_empty() {
                    missing.push(text(","));
                }
                missing.extend([Piece::Text(format!("\"{name}\":")), piece]);
            }
        }
    }
    if !missing.is_empty() {
        if !meta_fields.is_empty() {
            missing.push(text(","));
        }
        let (meta_start, _) = range_of(body, meta)?;
        let at = after_open_brace(body, meta_start);
        edits.push(Edit {
            start: at,
            end: at,
            pieces: missing,
        });
    }
    edits.sort_by_key(|edit| edit.start);
    Ok(ServerMetaSplice { edits })
}

/// Returns `body` with the top-level `meta.versionId` and `meta.lastUpdated` set (inserted or
/// replaced) and every other byte unchanged. See [`prepare_server_meta`] for where they go.
pub fn with_server_meta(
    body: &str,
    version_id: &str,
    last_updated: &str,
) -> Result<String, JsonError> {
    Ok(prepare_server_meta(body)?.apply(body, version_id, last_updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_meta_is_inserted_after_id() {
        let body = r#"{"resourceType":"Observation","id":"o1","valueQuantity":{"value":72.50}}"#;
        let out = with_server_meta(body, "3", "2024-01-02T03:04:05.678Z").unwrap();
        assert_eq!(
            out,
            r#"{"resourceType":"Observation","id":"o1","meta":{"versionId":"3","lastUpdated":"2024-01-02T03:04:05.678Z"},"valueQuantity":{"value":72.50}}"#
        );
    }

    #[test]
    fn server_meta_replaces_existing_values_and_keeps_other_meta() {
        let body = r##"{ "meta" : { "source":"#a", "versionId" : "1" }, "x" : 1.0 }"##;
        let out = with_server_meta(body, "2", "T").unwrap();
        assert_eq!(
            out,
            r##"{ "meta" : {"lastUpdated":"T", "source":"#a", "versionId" : "2" }, "x" : 1.0 }"##
        );
    }

    #[test]
    fn server_meta_into_empty_objects() {
        assert_eq!(
            with_server_meta("{}", "1", "T").unwrap(),
            r#"{"meta":{"versionId":"1","lastUpdated":"T"}}"#
        );
        assert_eq!(
            with_server_meta(r#"{"meta":{}}"#, "1", "T").unwrap(),
            r#"{"meta":{"versionId":"1","lastUpdated":"T"}}"#
        );
        assert!(matches!(
            with_server_meta(r#"{"meta":3}"#, "1", "T"),
            Err(JsonError::NotAnObject { .. })
        ));
    }
}

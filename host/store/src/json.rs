//! Lossless JSON helpers: read top-level fields and splice server meta into a document without
//! ever round-tripping it through `serde_json::Value`, so key order, unknown elements and number
//! lexemes (`72.50`) survive byte for byte.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Why a JSON document could not be read or edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The text is not well-formed JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser objected to.
        message: String,
    },
    /// A value that must be an object is something else.
    #[error("{what} must be a JSON object")]
    NotAnObject {
        /// Which value: "the document" or a field name.
        what: String,
    },
    /// An object names the same key twice, which makes its meaning ambiguous.
    #[error("duplicate key {0:?} in a JSON object")]
    DuplicateKey(String),
    /// A field holds a value of the wrong JSON type.
    #[error("field {field:?} must be a JSON {expected}")]
    WrongType {
        /// The field name.
        field: String,
        /// The JSON type it must have.
        expected: &'static str,
    },
}

impl From<serde_json::Error> for JsonError {
    fn from(error: serde_json::Error) -> Self {
        JsonError::Syntax {
            line: error.line(),
            column: error.column(),
            message: error.to_string(),
        }
    }
}

/// An object's members in document order, values borrowed from the input.
struct OrderedFields<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for OrderedFields<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for FieldsVisitor<'a> {
            type Value = OrderedFields<'a>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut fields = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
                    fields.push((key, value));
                }
                Ok(OrderedFields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor(std::marker::PhantomData))
    }
}

/// An array's elements, borrowed from the input.
pub(crate) struct RawElements<'a>(pub(crate) Vec<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for RawElements<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ElementsVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ElementsVisitor<'a> {
            type Value = RawElements<'a>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a JSON array")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let mut elements = Vec::new();
                while let Some(element) = seq.next_element::<&'de RawValue>()? {
                    elements.push(element);
                }
                Ok(RawElements(elements))
            }
        }
        deserializer.deserialize_seq(ElementsVisitor(std::marker::PhantomData))
    }
}

/// The members of the object `text`, in order, rejecting duplicate keys.
/// `what` names the value in the error when `text` is not an object.
pub(crate) fn object_fields<'a>(
    text: &'a str,
    what: &str,
) -> Result<Vec<(String, &'a RawValue)>, JsonError> {
    if !text.trim_start().starts_with('{') {
        // Still report syntax errors as such rather than as "not an object".
        serde_json::from_str::<&RawValue>(text)?;
        return Err(JsonError::NotAnObject {
            what: what.to_owned(),
        });
    }
    let OrderedFields(fields) = serde_json::from_str(text)?;
    let mut names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(JsonError::DuplicateKey(pair[0].to_owned()));
    }
    Ok(fields)
}

/// The top-level members of a JSON object document, in document order.
pub fn top_level_fields(body: &str) -> Result<Vec<(String, &RawValue)>, JsonError> {
    object_fields(body, "the document")
}

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

fn string_value(field: &str, value: &RawValue) -> Result<String, JsonError> {
    serde_json::from_str::<String>(value.get()).map_err(|_| JsonError::WrongType {
        field: field.to_owned(),
        expected: "string",
    })
}

/// A top-level string field such as `resourceType`, `id` or `uuid`; `None` when absent or null.
pub fn string_field(body: &str, name: &str) -> Result<Option<String>, JsonError> {
    match top_level_fields(body)?
        .into_iter()
        .find(|(field, _)| field == name)
    {
        Some((_, value)) if value.get() == "null" => Ok(None),
        Some((_, value)) => string_value(name, value).map(Some),
        None => Ok(None),
    }
}

/// A top-level boolean field such as `voided` or `retired`; `None` when absent or null.
pub fn bool_field(body: &str, name: &str) -> Result<Option<bool>, JsonError> {
    match top_level_fields(body)?
        .into_iter()
        .find(|(field, _)| field == name)
    {
        Some((_, value)) => match value.get() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            "null" => Ok(None),
            _ => Err(JsonError::WrongType {
                field: name.to_owned(),
                expected: "boolean",
            }),
        },
        None => Ok(None),
    }
}

/// The origin stamp `meta.source` of a FHIR resource, if present.
pub fn meta_source(body: &str) -> Result<Option<String>, JsonError> {
    let fields = top_level_fields(body)?;
    let Some((_, meta)) = fields.iter().find(|(name, _)| name == "meta") else {
        return Ok(None);
    };
    let meta_fields = object_fields(meta.get(), "meta")?;
    match meta_fields.iter().find(|(name, _)| name == "source") {
        Some((_, value)) if value.get() == "null" => Ok(None),
        Some((_, value)) => string_value("meta.source", value).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_fields_keep_document_order() {
        let fields = top_level_fields(r#"{"b":1, "a":[1,2], "c":{"x":72.50}}"#).unwrap();
        let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["b", "a", "c"]);
        assert_eq!(fields[2].1.get(), r#"{"x":72.50}"#);
    }

    #[test]
    fn duplicate_keys_and_non_objects_are_rejected() {
        assert_eq!(
            top_level_fields(r#"{"a":1,"a":2}"#).unwrap_err(),
            JsonError::DuplicateKey("a".into())
        );
        assert!(matches!(
            top_level_fields("[1]"),
            Err(JsonError::NotAnObject { .. })
        ));
        assert!(matches!(
            top_level_fields("{"),
            Err(JsonError::Syntax { .. })
        ));
    }

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

    #[test]
    fn typed_fields() {
        let body = r#"{"uuid":"ab\u0063","voided":true,"retired":null,"meta":{"source":"n1"}}"#;
        assert_eq!(string_field(body, "uuid").unwrap().as_deref(), Some("abc"));
        assert_eq!(string_field(body, "missing").unwrap(), None);
        assert_eq!(bool_field(body, "voided").unwrap(), Some(true));
        assert_eq!(bool_field(body, "retired").unwrap(), None);
        assert!(matches!(
            bool_field(body, "uuid"),
            Err(JsonError::WrongType { .. })
        ));
        assert_eq!(meta_source(body).unwrap().as_deref(), Some("n1"));
        assert_eq!(meta_source("{}").unwrap(), None);
    }
}

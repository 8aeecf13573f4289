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
    /// Arrays and objects nest deeper than the node accepts ([`MAX_DEPTH`]).
    #[error("JSON nested deeper than {limit} levels (at byte {offset})")]
    TooDeep {
        /// The limit, [`MAX_DEPTH`].
        limit: usize,
        /// Byte offset of the bracket that went over it.
        offset: usize,
    },
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

mod depth;
mod server_meta;

pub use depth::{MAX_DEPTH, check_depth};
pub use server_meta::{ServerMetaSplice, prepare_server_meta, with_server_meta};

/// An object's members in document order, values borrowed from the input.
struct OrderedFields<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for OrderedFields<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for FieldsVisitor<'a> {
            type Value = OrderedFields<'a>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
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
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
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
    check_depth(text)?;
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
    meta_string(body, "source")
}

/// The `meta.lastUpdated` text of a FHIR resource, if present.
pub fn meta_last_updated(body: &str) -> Result<Option<String>, JsonError> {
    meta_string(body, "lastUpdated")
}

/// A string member of the top-level `meta` object; `None` when absent or null.
fn meta_string(body: &str, member: &str) -> Result<Option<String>, JsonError> {
    let fields = top_level_fields(body)?;
    let Some((_, meta)) = fields.iter().find(|(name, _)| name == "meta") else {
        return Ok(None);
    };
    let meta_fields = object_fields(meta.get(), "meta")?;
    match meta_fields.iter().find(|(name, _)| name == member) {
        Some((_, value)) if value.get() == "null" => Ok(None),
        Some((_, value)) => string_value(&format!("meta.{member}"), value).map(Some),
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
        let stamped = r#"{"meta":{"lastUpdated":"2020-01-02T03:04:05.678Z"}}"#;
        assert_eq!(
            meta_last_updated(stamped).unwrap().as_deref(),
            Some("2020-01-02T03:04:05.678Z")
        );
    }
}

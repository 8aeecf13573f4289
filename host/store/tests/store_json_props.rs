//! Property tests of the content hash and the lossless JSON helpers, including a fuzz of both
//! over arbitrary text and arbitrary JSON documents.

use proptest::prelude::*;
use serde_json::{Map, Value};
use sync_host_store::hash::{canonical_form, content_hash};
use sync_host_store::json::{JsonError, top_level_fields, with_server_meta};

/// Arbitrary JSON with number lexemes that serde_json would not produce itself.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_\\u{e9}\"\\\\]{1,6}", inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-zA-Z]{1,8}", json_value(), 0..8)
        .prop_map(|map| map.into_iter().collect())
}

/// JSON pointers of every scalar inside `value`, except server-managed meta.
fn scalar_pointers(value: &Value, pointer: String, out: &mut Vec<String>) {
    let escape = |name: &str| name.replace('~', "~0").replace('/', "~1");
    match value {
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                scalar_pointers(item, format!("{pointer}/{index}"), out);
            }
        }
        Value::Object(members) => {
            for (name, member) in members {
                let child = format!("{pointer}/{}", escape(name));
                let server_meta = ["/meta/versionId", "/meta/lastUpdated", "/meta/source"];
                if !server_meta.contains(&child.as_str()) {
                    scalar_pointers(member, child, out);
                }
            }
        }
        _ => out.push(pointer),
    }
}

/// Reference canonical form: keys sorted by bytes, compact, serde_json's own escaping and
/// number output (which is what the generated documents contain).
fn reference_canonical(value: &Value) -> String {
    match value {
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let parts: Vec<String> = sorted
                .iter()
                .map(|(name, member)| {
                    format!(
                        "{}:{}",
                        serde_json::to_string(name).unwrap(),
                        reference_canonical(member)
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(reference_canonical).collect();
            format!("[{}]", parts.join(","))
        }
        scalar => serde_json::to_string(scalar).unwrap(),
    }
}

/// Writes `object` with its members in the given rotation and with arbitrary whitespace.
fn render(object: &Map<String, Value>, rotation: usize, pretty: bool) -> String {
    let mut members: Vec<(&String, &Value)> = object.iter().collect();
    if !members.is_empty() {
        let len = members.len();
        members.rotate_left(rotation % len);
    }
    let rendered: Vec<String> = members
        .iter()
        .map(|(name, value)| {
            let value = if pretty {
                serde_json::to_string_pretty(value).unwrap()
            } else {
                serde_json::to_string(value).unwrap()
            };
            format!("{}:{value}", serde_json::to_string(name).unwrap())
        })
        .collect();
    if pretty {
        format!("{{\n  {}\n}}\n", rendered.join(",\n  "))
    } else {
        format!("{{{}}}", rendered.join(","))
    }
}

proptest! {
    #[test]
    fn key_order_and_whitespace_do_not_change_the_hash(
        object in json_object(), rotation in 0usize..8
    ) {
        let compact = render(&object, 0, false);
        let reordered = render(&object, rotation, true);
        prop_assert_eq!(content_hash(&compact).unwrap(), content_hash(&reordered).unwrap());
    }

    #[test]
    fn changing_any_scalar_changes_the_hash(object in json_object(), pick in any::<usize>()) {
        let original = Value::Object(object);
        let mut leaves = Vec::new();
        scalar_pointers(&original, String::new(), &mut leaves);
        prop_assume!(!leaves.is_empty());
        let mut changed = original.clone();
        let leaf = changed.pointer_mut(&leaves[pick % leaves.len()]).unwrap();
        *leaf = match leaf.take() {
            Value::Null => Value::from(0),
            Value::Bool(flag) => Value::Bool(!flag),
            // Negation changes every number's lexeme except zero's.
            Value::Number(number) if number.as_f64() == Some(0.0) => Value::from(1),
            Value::Number(number) => serde_json::from_str(&format!("-{number}").replace("--", "")).unwrap(),
            Value::String(text) => Value::String(format!("{text}x")),
            other => other,
        };
        prop_assert_ne!(
            content_hash(&original.to_string()).unwrap(),
            content_hash(&changed.to_string()).unwrap()
        );
    }

    #[test]
    fn canonical_form_matches_a_reference(
        object in json_object(), rotation in 0usize..8, pretty in any::<bool>()
    ) {
        let mut object = object;
        object.remove("meta");
        let text = render(&object, rotation, pretty);
        prop_assert_eq!(canonical_form(&text).unwrap(), reference_canonical(&Value::Object(object)));
    }

    #[test]
    fn trailing_zero_in_a_decimal_changes_the_hash(whole in 0u32..1000, tenths in 0u32..10) {
        let short = format!(r#"{{"value":{whole}.{tenths}}}"#);
        let long = format!(r#"{{"value":{whole}.{tenths}0}}"#);
        prop_assert_ne!(content_hash(&short).unwrap(), content_hash(&long).unwrap());
    }

    #[test]
    fn server_meta_and_source_do_not_change_the_hash(
        object in json_object(), version in 1u64..1000, source in "[a-z/:#.]{1,20}"
    ) {
        let mut object = object;
        object.remove("meta");
        let bare = render(&object, 0, false);
        let stamped = with_server_meta(&bare, &version.to_string(), "2024-05-06T07:08:09.010Z").unwrap();
        let with_source = stamped.replacen("\"meta\":{", &format!("\"meta\":{{\"source\":{source:?},"), 1);
        prop_assert_eq!(content_hash(&bare).unwrap(), content_hash(&stamped).unwrap());
        prop_assert_eq!(content_hash(&bare).unwrap(), content_hash(&with_source).unwrap());
    }

    #[test]
    fn fuzz_arbitrary_text_never_panics(text in "\\PC{0,64}") {
        let _ = content_hash(&text);
        let _ = with_server_meta(&text, "1", "t");
        let _ = top_level_fields(&text);
    }

    #[test]
    fn fuzz_json_like_text_never_panics(text in "[{}\\[\\]\":,0-9a-z .eE+\\-\\\\]{0,64}") {
        let _ = content_hash(&text);
        if let Ok(out) = with_server_meta(&text, "1", "t") {
            prop_assert!(serde_json::from_str::<Value>(&out).is_ok());
        }
    }

    #[test]
    fn with_server_meta_keeps_every_other_field_byte_for_byte(
        object in json_object(), rotation in 0usize..8, pretty in any::<bool>(), version in "[0-9]{1,4}"
    ) {
        let body = render(&object, rotation, pretty);
        let result = with_server_meta(&body, &version, "2024-01-01T00:00:00.000Z");
        let out = match result {
            Ok(out) => out,
            Err(JsonError::NotAnObject { .. }) => {
                prop_assert!(!object["meta"].is_object());
                return Ok(());
            }
            Err(other) => return Err(TestCaseError::fail(other.to_string())),
        };
        let parsed: Value = serde_json::from_str(&out).unwrap();
        prop_assert_eq!(parsed["meta"]["versionId"].as_str(), Some(version.as_str()));
        let before = top_level_fields(&body).unwrap();
        let after = top_level_fields(&out).unwrap();
        let others = |fields: &[(String, &serde_json::value::RawValue)]| -> Vec<(String, String)> {
            fields.iter().filter(|(name, _)| name != "meta")
                .map(|(name, value)| (name.clone(), value.get().to_owned())).collect()
        };
        prop_assert_eq!(others(&before), others(&after));
    }
}

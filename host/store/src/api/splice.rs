//! Setting one top-level string field of a JSON object while keeping every other byte as the
//! client wrote it (used to give created resources their server-assigned id or uuid).

use crate::json;

use super::error::ApiError;

/// Returns `body` with the top-level field `name` set to the string `value`. An existing field
/// has its value replaced in place; a missing one is inserted right after the field `after`
/// when that exists, else as the first field.
pub fn set_string_field(
    body: &str,
    name: &str,
    value: &str,
    after: Option<&str>,
) -> Result<String, ApiError> {
    let fields = json::top_level_fields(body)
        .map_err(|error| ApiError::Invalid(format!("request body is not valid JSON: {error}")))?;
    let quoted = serde_json::Value::from(value).to_string();
    let offset_of = |raw: &serde_json::value::RawValue| {
        // RawValue slices borrow `body`, so the pointer difference is the byte offset.
        raw.get().as_ptr() as usize - body.as_ptr() as usize
    };
    if let Some((_, raw)) = fields.iter().find(|(key, _)| key == name) {
        let start = offset_of(raw);
        let end = start + raw.get().len();
        return Ok(format!("{}{quoted}{}", &body[..start], &body[end..]));
    }
    let member = format!("{}:{quoted}", serde_json::Value::from(name));
    let anchor = after.and_then(|after| fields.iter().find(|(key, _)| key == after));
    if let Some((_, raw)) = anchor {
        let end = offset_of(raw) + raw.get().len();
        return Ok(format!("{},{member}{}", &body[..end], &body[end..]));
    }
    let open = body
        .find('{')
        .ok_or_else(|| ApiError::Invalid("request body is not a JSON object".into()))?;
    let separator = if fields.is_empty() { "" } else { "," };
    Ok(format!(
        "{}{member}{separator}{}",
        &body[..=open],
        &body[open + 1..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_an_existing_value_in_place() {
        let body = "{ \"resourceType\": \"Patient\", \"id\" : \"old\", \"x\": 72.50 }";
        let out = set_string_field(body, "id", "new", Some("resourceType")).unwrap();
        assert_eq!(
            out,
            "{ \"resourceType\": \"Patient\", \"id\" : \"new\", \"x\": 72.50 }"
        );
    }

    #[test]
    fn inserts_after_the_anchor() {
        let body = "{\n  \"resourceType\": \"Location\",\n  \"name\": \"A\"\n}";
        let out = set_string_field(body, "id", "l1", Some("resourceType")).unwrap();
        assert_eq!(
            out,
            "{\n  \"resourceType\": \"Location\",\"id\":\"l1\",\n  \"name\": \"A\"\n}"
        );
    }

    #[test]
    fn inserts_first_without_anchor() {
        assert_eq!(
            set_string_field("{\"a\":1}", "uuid", "u", None).unwrap(),
            "{\"uuid\":\"u\",\"a\":1}"
        );
        assert_eq!(
            set_string_field(" { } ", "uuid", "u", None).unwrap(),
            " {\"uuid\":\"u\" } "
        );
    }

    proptest::proptest! {
        /// Setting a field yields valid JSON where that field has the new value and every other
        /// field keeps its exact bytes.
        #[test]
        fn other_fields_keep_their_bytes(
            fields in proptest::collection::btree_map("[a-z]{1,6}", "(-?[1-9][0-9]{0,3}\\.[0-9]{1,3}0|\"[a-z ]{0,8}\"|true|null)", 0..6),
            name in "[a-z]{1,6}",
            value in "[a-zA-Z0-9 \"\\\\]{0,10}",
            pretty in proptest::bool::ANY,
        ) {
            let separator = if pretty { ",\n  " } else { "," };
            let members: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            let body = format!("{{{}}}", members.join(separator));
            let out = set_string_field(&body, &name, &value, None).unwrap();
            let parsed: Vec<(String, String)> = json::top_level_fields(&out).unwrap()
                .into_iter().map(|(k, raw)| (k, raw.get().to_owned())).collect();
            for (key, raw) in &parsed {
                if *key == name {
                    proptest::prop_assert_eq!(serde_json::from_str::<String>(raw).unwrap(), value.clone());
                } else {
                    proptest::prop_assert_eq!(raw, &fields[key]);
                }
            }
            proptest::prop_assert_eq!(parsed.len(), fields.len() + usize::from(!fields.contains_key(&name)));
        }
    }
}

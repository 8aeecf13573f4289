//! The properties the fuzz targets in `fuzz/` check, kept here so that a stable test can replay
//! the committed corpus through exactly the same code (`tests/fuzz_corpus.rs`). Each function
//! takes arbitrary bytes, must never panic or overflow the stack on them, and asserts what must
//! hold of what it computes; an assertion failing is the bug a fuzzer reports.

use crate::api::fhir::validate::validate_resource;
use crate::hash::{canonical_form, content_hash};
use crate::json::{check_depth, prepare_server_meta, string_field, top_level_fields};

/// The canonical form is idempotent, is JSON, and hashes like the text it came from.
pub fn canonical_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(canonical) = canonical_form(text) else {
        return;
    };
    assert!(
        serde_json::from_str::<serde::de::IgnoredAny>(&canonical).is_ok(),
        "canonical form is not JSON: {canonical}"
    );
    assert_eq!(
        canonical_form(&canonical).as_deref(),
        Ok(canonical.as_str())
    );
    assert_eq!(content_hash(&canonical), content_hash(text));
}

/// Splicing server meta keeps the document a JSON object, sets the version, and changes
/// nothing the content hash sees.
pub fn server_meta(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(splice) = prepare_server_meta(text) else {
        return;
    };
    let out = splice.apply(text, "7", "2024-05-01T10:00:00.000Z");
    assert!(
        top_level_fields(&out).is_ok(),
        "spliced text is not an object: {out}"
    );
    let meta = top_level_fields(&out)
        .ok()
        .and_then(|fields| fields.into_iter().find(|(name, _)| name == "meta"))
        .map(|(_, value)| value.get().to_owned())
        .unwrap_or_default();
    assert_eq!(
        string_field(&meta, "versionId").ok().flatten().as_deref(),
        Some("7"),
        "{out}"
    );
    if let Ok(before) = content_hash(text) {
        assert_eq!(content_hash(&out), Ok(before), "{text} became {out}");
    }
}

/// A FHIR body goes through the API's checks in the API's order (depth, validation, hash,
/// splice) without panicking, and validation agrees with the body about its type.
pub fn fhir_body(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if check_depth(text).is_err() {
        return;
    }
    let url_type = string_field(text, "resourceType")
        .ok()
        .flatten()
        .unwrap_or_else(|| "Patient".to_owned());
    let Ok(head) = validate_resource(text, &url_type) else {
        return;
    };
    assert_eq!(head.resource_type, url_type);
    if content_hash(text).is_ok() {
        let _ = prepare_server_meta(text);
    }
}

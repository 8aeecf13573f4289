//! Unit tests of the store's byte layout.

use super::*;

fn sample(deleted: bool) -> VersionRecord {
    VersionRecord {
        key: ResourceKey::fhir("Patient", "p-1"),
        version_id: 7,
        last_updated: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000).unwrap(),
        deleted,
        body: (!deleted).then(|| r#"{"resourceType":"Patient"}"#.to_owned()),
        content_hash: if deleted {
            String::new()
        } else {
            "ab".repeat(32)
        },
        origin: "clinic-1".into(),
        sequence: 42,
        action: if deleted {
            Action::Deleted
        } else {
            Action::Updated
        },
        placement: Placement {
            scoped: true,
            keys: vec![
                "Kenya%Nairobi%null%Kibera%null".into(),
                "Location/a".into(),
                "Organization/b".into(),
            ],
            owner: Some(ResourceKey::rest("patient", "u-1")),
            supplied: vec!["Kenya%Nairobi%null%Kibera%null".into()],
        },
    }
}

#[test]
fn long_bodies_are_compressed_and_round_trip() {
    let mut record = sample(false);
    let body = format!(
        r#"{{"resourceType":"Patient","text":"{}"}}"#,
        "abc ".repeat(200)
    );
    record.body = Some(body.clone());
    let bytes = encode_record(&record);
    assert!(
        bytes.len() < body.len() / 2,
        "{} bytes for {}",
        bytes.len(),
        body.len()
    );
    assert_eq!(decode_record(record.key.clone(), &bytes).unwrap(), record);
}

#[test]
fn records_round_trip() {
    for deleted in [false, true] {
        let record = sample(deleted);
        let bytes = encode_record(&record);
        assert_eq!(decode_record(record.key.clone(), &bytes).unwrap(), record);
    }
}

#[test]
fn changes_round_trip() {
    let record = sample(false);
    let change = Change {
        sequence: 9,
        action: Action::Voided,
        category: "patient".into(),
        key: record.key.clone(),
        version_id: 3,
        content_hash: record.content_hash.clone(),
        origin: "n".into(),
        at: record.last_updated,
        placement: record.placement.clone(),
        left_keys: vec!["Location/old".into()],
    };
    assert_eq!(decode_change(9, &encode_change(&change)).unwrap(), change);
    assert_eq!(
        record_placement(&encode_record(&record)).unwrap(),
        record.placement
    );
}

#[test]
fn values_written_before_placements_are_read_as_placed_nowhere() {
    // A format-1 record: the same layout without the placement.
    let mut record = sample(false);
    let mut bytes = encode_record(&record);
    let placement_at = bytes.len() - encode_record(&record).len()
        + 1
        + 8
        + 8
        + 8
        + 1
        + 1
        + 33
        + 4
        + record.origin.len();
    let placement_len = {
        let mut placed = Vec::new();
        put_placement(&mut placed, &record.placement);
        placed.len()
    };
    bytes.drain(placement_at..placement_at + placement_len);
    bytes[0] = FORMAT_UNPLACED;
    record.placement = Placement {
        scoped: true,
        ..Placement::default()
    };
    assert_eq!(decode_record(record.key.clone(), &bytes).unwrap(), record);
}

#[test]
fn values_written_before_supplied_keys_are_read_with_none() {
    // A format-2 record: the same layout without the supplied keys at the placement's end.
    let mut record = sample(false);
    let mut bytes = encode_record(&record);
    let supplied_len = {
        let mut supplied = Vec::new();
        put_keys(&mut supplied, &record.placement.supplied);
        supplied.len()
    };
    let body_at = bytes.len() - {
        let mut body = Vec::new();
        put_body(&mut body, record.body.as_deref().unwrap());
        body.len()
    };
    bytes.drain(body_at - supplied_len..body_at);
    bytes[0] = FORMAT_PLACED;
    record.placement.supplied = Vec::new();
    assert_eq!(decode_record(record.key.clone(), &bytes).unwrap(), record);
}

#[test]
fn resource_keys_round_trip_and_sort_by_id() {
    let key = ResourceKey::rest("patient", "uuid-1");
    assert_eq!(decode_resource_key(&resource_key(&key)).unwrap(), key);
    assert!(history_key(&key, 2) < history_key(&key, 10));
    assert!(validate_key(&ResourceKey::fhir("Patient", "a\0b")).is_err());
}

#[test]
fn truncated_values_are_errors() {
    let bytes = encode_record(&sample(false));
    assert!(decode_record(sample(false).key, &bytes[..10]).is_err());
    assert!(decode_change(1, &[]).is_err());
}

#[test]
fn long_origins_are_kept_whole() {
    let mut record = sample(false);
    record.origin = "é".repeat(40_000);
    let bytes = encode_record(&record);
    assert_eq!(
        decode_record(record.key.clone(), &bytes).unwrap().origin,
        record.origin
    );
}

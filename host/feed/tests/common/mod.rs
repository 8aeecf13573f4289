//! Sample pages shared by the integration tests.

#![allow(dead_code)]

use sync_host_feed::{Action, ContentLink, Extensions, FeedEntry, FeedPage, PageLinks};
use time::OffsetDateTime;
use time::macros::datetime;

/// A patient entry in the shape the embedded store publishes.
pub fn patient_entry(sequence: u64, uuid: &str, action: Option<Action>) -> FeedEntry {
    let at: OffsetDateTime =
        datetime!(2024-05-01 08:00:00.25 UTC) + time::Duration::seconds(sequence as i64);
    FeedEntry {
        id: format!("urn:sync-host:node-a:{sequence}"),
        title: "Patient".into(),
        updated: at,
        published: at,
        category: "patient".into(),
        action,
        tags: vec![],
        links: vec![
            ContentLink::new("rest", format!("/ws/rest/v1/patient/{uuid}?v=full")),
            ContentLink::new("fhir", format!("/ws/fhir2/R4/Patient/{uuid}")),
        ],
        ext: Extensions {
            sequence: Some(sequence),
            origin: Some("node-a".into()),
            version: Some(format!("{sequence}")),
            content_hash: Some(format!("sha256:{sequence:064x}")),
            resource_type: Some("Patient".into()),
            resource_id: Some(uuid.into()),
            left_scope: false,
        },
    }
}

/// A page of `entries` at archive position `number` of the patient feed.
pub fn page(number: u64, entries: Vec<FeedEntry>) -> FeedPage {
    let base = "http://node-a.example/ws/atomfeed/patient";
    FeedPage {
        id: format!("urn:sync-host:node-a:patient:{number}"),
        title: "sync-host node-a patient".into(),
        updated: entries
            .last()
            .map_or(datetime!(2024-05-01 08:00 UTC), |entry| entry.updated),
        links: PageLinks {
            self_: Some(format!("{base}/recent")),
            via: Some(format!("{base}/{number}")),
            first: Some(format!("{base}/1")),
            prev_archive: (number > 1).then(|| format!("{base}/{}", number - 1)),
            next_archive: None,
        },
        entries,
    }
}

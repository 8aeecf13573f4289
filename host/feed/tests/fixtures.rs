//! Reading the OpenMRS-shaped fixture pages: every field the sync engine relies on.

use std::path::PathBuf;

use sync_host_feed::{Action, ContentLink, FeedEntryView, PageLinks, parse_page};
use time::macros::datetime;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/openmrs/atomfeed-xml")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn view(entry: &sync_host_feed::ParsedEntry) -> &FeedEntryView {
    entry
        .result
        .as_ref()
        .unwrap_or_else(|err| panic!("entry {:?} unreadable: {err}", entry.id))
}

const PATIENT_A: &str = "a65fc361-f6ac-40ba-8485-94749c061509";
const PATIENT_C: &str = "c4b3e1d2-7f6a-4b5c-8d9e-0a1b2c3d4e5f";

fn sync2_links(uuid: &str) -> Vec<ContentLink> {
    vec![
        ContentLink::new("rest", format!("/ws/rest/v1/patient/{uuid}?v=full")),
        ContentLink::new("fhir", format!("/ws/fhir/Patient/{uuid}")),
    ]
}

#[test]
fn sync2_recent_page_header_and_paging_links() {
    let page = parse_page(&fixture("sync2-patient-recent.xml")).unwrap();
    assert_eq!(page.id, "a2ad93fd-8a7f-405f-bbc1-da4535e6d05c+3");
    assert_eq!(page.title, "OpenMRS Feed Publisher for Sync2.0");
    assert_eq!(page.updated, datetime!(2019-02-18 10:00:07 UTC));
    let base = "http://parent.example:8080/openmrs/ws/atomfeed/patient";
    assert_eq!(
        page.links,
        PageLinks {
            self_: Some(format!("{base}/recent")),
            via: Some(format!("{base}/3")),
            first: None,
            prev_archive: Some(format!("{base}/2")),
            next_archive: None,
        }
    );
    assert_eq!(page.entries.len(), 3);
}

#[test]
fn sync2_entries_with_terms_in_any_order() {
    let page = parse_page(&fixture("sync2-patient-recent.xml")).unwrap();
    let created = view(&page.entries[0]);
    assert_eq!(
        created.entry.id,
        "tag:atomfeed.ict4h.org:4c0b51a3-3b3d-4c0f-9d5e-7f0f6a0d2b11"
    );
    assert_eq!(created.entry.title, "Patient");
    assert_eq!(created.entry.category, "patient");
    assert_eq!(created.entry.action, Some(Action::Created));
    assert!(created.entry.tags.is_empty());
    assert_eq!(created.entry.links, sync2_links(PATIENT_A));
    assert_eq!(created.entry.updated, datetime!(2019-02-18 10:00:05 UTC));
    assert_eq!(created.entry.published, datetime!(2019-02-18 10:00:05 UTC));
    assert!(created.entry.ext.is_empty());
    // The fhir link wins over the rest link.
    assert_eq!(
        (created.resource_type.as_str(), created.resource_id.as_str()),
        ("Patient", PATIENT_A)
    );

    // UPDATED first, the feed filter second, the category last.
    let updated = view(&page.entries[1]);
    assert_eq!(updated.entry.category, "patient");
    assert_eq!(updated.action, Action::Updated);
    assert_eq!(
        updated.entry.tags,
        vec![
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><feedFilter><beanName>atomfeed.locationFeedFilterStrategy</beanName><filter>Kenya%Nairobi%null%Kibera%null</filter></feedFilter>".to_owned()
        ]
    );
    assert_eq!(updated.resource_id, PATIENT_A);

    let voided = view(&page.entries[2]);
    assert_eq!(voided.entry.action, Some(Action::Voided));
    assert_eq!(voided.entry.links, sync2_links(PATIENT_C));
    assert_eq!(
        voided.link("rest"),
        Some(sync2_links(PATIENT_C)[0].href.as_str())
    );
    assert_eq!(voided.resource_id, PATIENT_C);
}

#[test]
fn sync2_raw_entries_are_kept_as_published() {
    let xml = fixture("sync2-patient-recent.xml");
    let page = parse_page(&xml).unwrap();
    for entry in &page.entries {
        assert!(entry.raw.starts_with("<entry>"), "{}", entry.raw);
        assert!(entry.raw.ends_with("</entry>"), "{}", entry.raw);
        assert!(xml.contains(&entry.raw));
    }
    assert!(page.entries[1].raw.contains("&lt;feedFilter&gt;"));
    assert_eq!(
        page.entry_ids()[2],
        Some("tag:atomfeed.ict4h.org:9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a")
    );
}

#[test]
fn bahmni_bare_url_with_context_path() {
    let page = parse_page(&fixture("bahmni-patient-page.xml")).unwrap();
    assert_eq!(page.id, "bec795b1-3d17-451d-b43e-a094019f6984+32");
    let base = "http://www.example.com/openmrs/ws/atomfeed/patient";
    assert_eq!(page.links.self_, Some(format!("{base}/recent")));
    assert_eq!(page.links.via, Some(format!("{base}/32")));
    assert_eq!(page.links.prev_archive, Some(format!("{base}/31")));
    assert_eq!(page.links.next_archive, None);
    assert_eq!(page.entries.len(), 1);

    let entry = view(&page.entries[0]);
    assert_eq!(
        entry.entry.id,
        "tag:atomfeed.ict4h.org:6fdab6f5-2cd2-4207-b8bb-c2884d6179f6"
    );
    assert_eq!(entry.entry.category, "patient");
    // No action term: kept as None, read as an update.
    assert_eq!(entry.entry.action, None);
    assert_eq!(entry.action, Action::Updated);
    assert_eq!(
        entry.entry.links,
        vec![ContentLink::new(
            "rest",
            "/openmrs/ws/rest/v1/patient/e8aa08f6-86cd-42f9-8924-1b3ea021aeb4?v=full"
        )]
    );
    assert_eq!(entry.resource_type, "patient");
    assert_eq!(entry.resource_id, "e8aa08f6-86cd-42f9-8924-1b3ea021aeb4");
    assert_eq!(
        sync_host_feed::resolve_href("http://www.example.com/openmrs", &entry.entry.links[0].href),
        "http://www.example.com/openmrs/ws/rest/v1/patient/e8aa08f6-86cd-42f9-8924-1b3ea021aeb4?v=full"
    );
}

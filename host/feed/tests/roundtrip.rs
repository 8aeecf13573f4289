//! Writing pages and reading them back: the exact shape on the wire and awkward characters.

mod common;

use common::{page, patient_entry};
use sync_host_feed::{Action, ContentLink, FeedEntry, parse_page, render_page};

fn read_back(entries: Vec<FeedEntry>) -> (String, Vec<FeedEntry>) {
    let page = page(4, entries);
    let xml = render_page(&page);
    let parsed = parse_page(&xml).unwrap_or_else(|err| panic!("{err}\n{xml}"));
    assert_eq!(parsed.id, page.id);
    assert_eq!(parsed.title, page.title);
    assert_eq!(parsed.updated, page.updated);
    assert_eq!(parsed.links, page.links);
    let entries = parsed
        .entries
        .into_iter()
        .map(|entry| match entry.result {
            Ok(view) => view.entry,
            Err(err) => panic!("{err}\n{}", entry.raw),
        })
        .collect();
    (xml, entries)
}

#[test]
fn written_entries_read_back_unchanged() {
    let written = vec![
        patient_entry(
            1,
            "a65fc361-f6ac-40ba-8485-94749c061509",
            Some(Action::Created),
        ),
        patient_entry(
            2,
            "a65fc361-f6ac-40ba-8485-94749c061509",
            Some(Action::Unvoided),
        ),
        patient_entry(3, "c4b3e1d2-7f6a-4b5c-8d9e-0a1b2c3d4e5f", None),
    ];
    let (xml, read) = read_back(written.clone());
    assert_eq!(read, written);
    println!("{xml}");
}

#[test]
fn content_is_cdata_json_in_the_openmrs_shape() {
    let (xml, _) = read_back(vec![patient_entry(7, "u7", Some(Action::Updated))]);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed"));
    assert!(xml.contains(
        r#"<content type="application/vnd.atomfeed+xml"><![CDATA[{"rest":"/ws/rest/v1/patient/u7?v=full","fhir":"/ws/fhir2/R4/Patient/u7"}]]></content>"#
    ), "{xml}");
    assert!(xml.contains(r#"xmlns="http://www.w3.org/2005/Atom""#));
    assert!(xml.contains(r#"xmlns:sh="https://sync-host.dev/ns/feed/1""#));
    for element in [
        "sequence>7<",
        "origin>node-a<",
        "resourceType>Patient<",
        "resourceId>u7<",
    ] {
        assert!(
            xml.contains(&format!("<sh:{element}")),
            "{element} missing:\n{xml}"
        );
    }
    assert!(xml.contains(r#"term="UPDATED""#));
    assert!(xml.contains(r#"term="patient""#));
    assert!(xml.contains(
        r#"<link href="http://node-a.example/ws/atomfeed/patient/3" rel="prev-archive""#
    ));
    assert!(xml.contains(r#"rel="first""#));
}

#[test]
fn awkward_characters_survive() {
    let mut entry = patient_entry(9, "id<&>\"'", Some(Action::Deleted));
    entry.id = "tag:x,2024:<&>\"' é 日本 🩺".into();
    entry.title = "A & B <c> ]]>".into();
    entry.category = "pa\"tient&<'>".into();
    entry.tags = vec![
        "<?xml version=\"1.0\"?><feedFilter><filter>Kenya%Nairobi</filter></feedFilter>".into(),
        "line\nbreak\ttab\rreturn".into(),
        "  padded  ".into(),
    ];
    entry.links = vec![
        ContentLink::new("rest", "/ws/rest/v1/patient/x?q=]]>&a=<b>"),
        ContentLink::new("fhir", "/ws/fhir2/R4/Patient/]]>]]]>"),
        ContentLink::new("odd\"client", "/\u{FFFF}/\n/"),
    ];
    entry.ext.origin = Some("node <b> & \"c\"".into());
    let (xml, read) = read_back(vec![entry.clone()]);
    assert_eq!(read, vec![entry], "{xml}");
}

#[test]
fn unwritable_characters_are_replaced_not_lost() {
    let mut entry = patient_entry(1, "u1", Some(Action::Created));
    entry.tags = vec!["bell\u{7}".into()];
    let (_, read) = read_back(vec![entry]);
    assert_eq!(read[0].tags, vec!["bell\u{FFFD}".to_owned()]);
}

#[test]
fn empty_page_reads_back() {
    let (_, read) = read_back(vec![]);
    assert!(read.is_empty());
}

#[test]
fn feed_rs_sees_our_paging_links_and_json_content() {
    let page = page(3, vec![patient_entry(1, "u1", Some(Action::Created))]);
    let xml = render_page(&page);
    let feed = feed_rs::parser::parse(xml.as_bytes()).unwrap();
    assert_eq!(feed.id, page.id);
    let rels: Vec<(String, String)> = feed
        .links
        .iter()
        .map(|link| (link.rel.clone().unwrap_or_default(), link.href.clone()))
        .collect();
    let base = "http://node-a.example/ws/atomfeed/patient";
    assert_eq!(
        rels,
        vec![
            ("self".to_owned(), format!("{base}/recent")),
            ("via".to_owned(), format!("{base}/3")),
            ("first".to_owned(), format!("{base}/1")),
            ("prev-archive".to_owned(), format!("{base}/2")),
        ]
    );
    let entry = &feed.entries[0];
    assert_eq!(entry.id, "urn:sync-host:node-a:1");
    let content = entry.content.as_ref().unwrap();
    assert_eq!(
        content.body.as_deref(),
        Some(r#"{"rest":"/ws/rest/v1/patient/u1?v=full","fhir":"/ws/fhir2/R4/Patient/u1"}"#)
    );
    let terms: Vec<&str> = entry.categories.iter().map(|c| c.term.as_str()).collect();
    assert_eq!(terms, vec!["patient", "CREATED"]);
}

#[test]
fn a_large_page_round_trips() {
    let entries: Vec<FeedEntry> = (1..=5000)
        .map(|n| patient_entry(n, &format!("uuid-{n:08}"), Some(Action::Updated)))
        .collect();
    let page = page(9, entries);
    let started = std::time::Instant::now();
    let xml = render_page(&page);
    let rendered = started.elapsed();
    let parsed = parse_page(&xml).unwrap();
    let parsed_in = started.elapsed() - rendered;
    let read: Vec<FeedEntry> = parsed
        .entries
        .into_iter()
        .map(|entry| entry.result.unwrap().entry)
        .collect();
    assert_eq!(read, page.entries);
    println!(
        "5000-entry page: {} bytes, rendered in {rendered:?}, parsed in {parsed_in:?}",
        xml.len()
    );
}

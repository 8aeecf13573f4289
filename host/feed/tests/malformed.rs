//! Pages and entries that cannot be used: what the reader reports and what it keeps.

mod common;

use common::{page, patient_entry};
use sync_host_feed::{Action, EntryError, FeedError, parse_page, render_page};

const HEADER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Patient AOP</title>
  <id>feed+1</id>
  <updated>2018-04-26T10:56:10Z</updated>
  <link rel="self" href="http://h/openmrs/ws/atomfeed/patient/recent"/>
"#;

fn page_with(entries: &str) -> String {
    format!("{HEADER}{entries}\n</feed>\n")
}

fn entry(id: &str, content: &str) -> String {
    format!(
        r#"<entry><title>Patient</title><category term="patient"/><category term="UPDATED"/><id>{id}</id><updated>2018-01-17T19:44:40Z</updated>{content}</entry>"#
    )
}

#[test]
fn malformed_pages_are_feed_errors() {
    let cases = [
        ("", FeedError::Empty),
        ("{\"not\": \"xml\"}", FeedError::Empty),
        (
            "<html><body>502 Bad Gateway</body></html>",
            FeedError::NotAtom {
                found: "html".into(),
            },
        ),
        (
            "<rss version=\"2.0\"><channel/></rss>",
            FeedError::NotAtom {
                found: "rss".into(),
            },
        ),
    ];
    for (xml, expected) in cases {
        assert_eq!(parse_page(xml), Err(expected), "{xml:?}");
    }
    let cut_short = page_with(&entry("e1", "")).replace("</feed>", "");
    assert_eq!(parse_page(&cut_short), Err(FeedError::Truncated));
    let mismatched = page_with("<entry><id>e1</id></entri>");
    let err = parse_page(&mismatched).unwrap_err();
    assert!(matches!(err, FeedError::NotXml { .. }), "{err:?}");
    assert!(err.to_string().contains("not well-formed XML"), "{err}");
}

#[test]
fn an_unreadable_header_is_a_feed_error() {
    let xml = page_with("").replace("2018-04-26T10:56:10Z", "yesterday-ish");
    let err = parse_page(&xml).unwrap_err();
    assert!(matches!(err, FeedError::Header(_)), "{err:?}");
}

#[test]
fn garbage_content_is_an_entry_error_with_the_raw_entry_kept() {
    let garbage = entry(
        "e-garbage",
        r#"<content type="application/vnd.atomfeed+xml"><![CDATA[{"rest": "/ws/rest/v1/patient/1",]]></content>"#,
    );
    let prose = entry(
        "e-prose",
        r#"<content type="application/vnd.atomfeed+xml">patient changed, go look</content>"#,
    );
    let good = entry(
        "e-good",
        r#"<content type="application/vnd.atomfeed+xml"><![CDATA[{"rest":"/ws/rest/v1/patient/p1?v=full"}]]></content>"#,
    );
    let xml = page_with(&[garbage.clone(), prose.clone(), good].join("\n"));
    let page = parse_page(&xml).unwrap();
    assert_eq!(page.entries.len(), 3);

    let first = &page.entries[0];
    assert_eq!(first.raw, garbage);
    assert_eq!(first.id.as_deref(), Some("e-garbage"));
    match &first.result {
        Err(EntryError::UnparseableContent { id, content, .. }) => {
            assert_eq!(id, "e-garbage");
            assert_eq!(content, r#"{"rest": "/ws/rest/v1/patient/1","#);
        }
        other => panic!("expected unparseable content, got {other:?}"),
    }
    assert_eq!(page.entries[1].raw, prose);
    assert!(matches!(
        page.entries[1].result,
        Err(EntryError::UnparseableContent { .. })
    ));
    let good = page.entries[2].result.as_ref().unwrap();
    assert_eq!(good.resource_id, "p1");
    assert_eq!(good.action, Action::Updated);
}

#[test]
fn each_missing_part_is_named() {
    let link = r#"<content type="application/vnd.atomfeed+xml"><![CDATA[{"rest":"/ws/rest/v1/patient/p1"}]]></content>"#;
    let cases = [
        (entry("", link), EntryError::NoId),
        (entry("e1", ""), EntryError::NoContent { id: "e1".into() }),
        (
            entry(
                "e2",
                r#"<content type="application/vnd.atomfeed+xml"><![CDATA[{}]]></content>"#,
            ),
            EntryError::NoLink { id: "e2".into() },
        ),
        (
            entry(
                "e3",
                r#"<content type="application/vnd.atomfeed+xml"></content>"#,
            ),
            EntryError::NoLink { id: "e3".into() },
        ),
        (
            entry(
                "e4",
                r#"<content type="application/vnd.atomfeed+xml"><![CDATA[{"rest":"/ws/rest/v1/patient"}]]></content>"#,
            ),
            EntryError::NoResourceId {
                id: "e4".into(),
                links: vec!["/ws/rest/v1/patient".into()],
            },
        ),
        (
            entry("e5", link).replace(r#"<category term="patient"/>"#, ""),
            EntryError::NoCategory { id: "e5".into() },
        ),
    ];
    for (raw, expected) in cases {
        let page = parse_page(&page_with(&raw)).unwrap();
        assert_eq!(page.entries[0].result, Err(expected), "{raw}");
        assert_eq!(page.entries[0].raw, raw);
    }
}

#[test]
fn a_bad_sequence_extension_is_named() {
    let mut xml = render_page(&page(
        1,
        vec![patient_entry(5, "u5", Some(Action::Created))],
    ));
    xml = xml.replace(
        "<sh:sequence>5</sh:sequence>",
        "<sh:sequence>five</sh:sequence>",
    );
    let parsed = parse_page(&xml).unwrap();
    assert_eq!(
        parsed.entries[0].result,
        Err(EntryError::BadExtension {
            id: "urn:sync-host:node-a:5".into(),
            element: "sequence".into(),
            value: "five".into(),
        })
    );
}

#[test]
fn an_unreadable_entry_date_costs_that_entry_only() {
    let link = r#"<content type="application/vnd.atomfeed+xml">/ws/rest/v1/patient/p1</content>"#;
    let bad = entry("e1", link).replace("2018-01-17T19:44:40Z", "31/02/2018");
    let xml = page_with(&[bad.clone(), entry("e2", link)].join(""));
    let page = parse_page(&xml).unwrap();
    assert!(matches!(
        page.entries[0].result,
        Err(EntryError::Malformed(_))
    ));
    assert_eq!(page.entries[0].raw, bad);
    // Still named, for the audit and the marker.
    assert_eq!(page.entries[0].id.as_deref(), Some("e1"));
    assert_eq!(page.entries[1].result.as_ref().unwrap().resource_id, "p1");
    let message = page.entries[0].result.as_ref().unwrap_err().to_string();
    assert!(message.contains("31/02/2018"), "{message}");
}

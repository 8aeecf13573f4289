//! The Atom feeds over a real loopback server: 1,050 changes at page size 100 give 11 pages with
//! the right links, every page parses with feed-rs, entries match what was written (in commit
//! order across types for `all`), spans of archive pages asked for with `?count=`, ETag/304
//! (tags that name the store, `Vary` on who asks and the encoding). Long-polls are in
//! `api_feed_fanout.rs`.

mod common;

use common::{TestServer, WRITER, patient, start};
use feed_rs::model::Feed;
use reqwest::{Method, StatusCode};
use sync_host_store::store::{Precondition, ResourceKey, WriteRequest};

/// What one written change should look like in the feed.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    category: String,
    link: String,
}

/// Writes 1,050 changes: two FHIR Patients then one REST location, repeated, in batches.
async fn write_changes(server: &TestServer) -> Vec<Expected> {
    let mut expected = Vec::new();
    let mut batch = Vec::new();
    for index in 0..1050 {
        let (key, body, wanted) = if index % 3 == 2 {
            let uuid = format!("loc-{index:04}");
            let body = format!(r#"{{"uuid":"{uuid}","name":"Site {index}"}}"#);
            let link = format!("/ws/rest/v1/location/{uuid}?v=full");
            (
                ResourceKey::rest("location", &uuid),
                body,
                Expected {
                    category: "location".into(),
                    link,
                },
            )
        } else {
            let id = format!("pat-{index:04}");
            let link = format!("/ws/fhir2/R4/Patient/{id}");
            (
                ResourceKey::fhir("Patient", &id),
                patient(&id, "Feed"),
                Expected {
                    category: "patient".into(),
                    link,
                },
            )
        };
        batch.push(WriteRequest {
            key,
            body: Some(body),
            precondition: Precondition::Any,
            origin: None,
        });
        expected.push(wanted);
        if batch.len() == 50 {
            server
                .store
                .write_all(std::mem::take(&mut batch))
                .await
                .unwrap();
        }
    }
    expected
}

async fn fetch(server: &TestServer, path: &str) -> (reqwest::header::HeaderMap, Feed) {
    let response = server.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let headers = response.headers().clone();
    let xml = response.text().await.unwrap();
    let feed =
        feed_rs::parser::parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{path}: {e}\n{xml}"));
    (headers, feed)
}

fn link(feed: &Feed, rel: &str) -> Option<String> {
    feed.links
        .iter()
        .find(|l| l.rel.as_deref() == Some(rel))
        .map(|l| l.href.clone())
}

fn observed(feed: &Feed) -> Vec<Expected> {
    feed.entries
        .iter()
        .map(|entry| {
            let body = entry
                .content
                .as_ref()
                .and_then(|c| c.body.clone())
                .expect("content");
            let links: serde_json::Value = serde_json::from_str(body.trim()).expect("JSON content");
            let (_, link) = links.as_object().unwrap().iter().next().expect("one link");
            let terms: Vec<&str> = entry.categories.iter().map(|c| c.term.as_str()).collect();
            assert!(terms.contains(&"CREATED"), "{terms:?}");
            let category = terms
                .iter()
                .find(|t| **t == "patient" || **t == "location")
                .expect("category");
            Expected {
                category: category.to_string(),
                link: link.as_str().unwrap().to_owned(),
            }
        })
        .collect()
}

#[tokio::test]
async fn combined_feed_pages_carry_every_change_in_commit_order() {
    let server = start().await;
    let expected = write_changes(&server).await;
    let base = format!("{}/ws/atomfeed/all", server.base);
    let mut seen = Vec::new();
    for number in 1..=11u64 {
        let (headers, feed) = fetch(&server, &format!("/ws/atomfeed/all/{number}")).await;
        let entries = observed(&feed);
        assert_eq!(
            entries.len(),
            if number < 11 { 100 } else { 50 },
            "page {number}"
        );
        assert_eq!(link(&feed, "self"), Some(format!("{base}/{number}")));
        assert_eq!(link(&feed, "via"), Some(format!("{base}/{number}")));
        assert_eq!(link(&feed, "first"), Some(format!("{base}/1")));
        let prev = (number > 1).then(|| format!("{base}/{}", number - 1));
        assert_eq!(link(&feed, "prev-archive"), prev, "page {number}");
        let next = (number < 11).then(|| format!("{base}/{}", number + 1));
        assert_eq!(link(&feed, "next-archive"), next, "page {number}");
        let cache = headers["cache-control"].to_str().unwrap();
        assert_eq!(
            cache.contains("immutable"),
            number < 11,
            "page {number}: {cache}"
        );
        seen.extend(entries);
    }
    assert_eq!(seen, expected);
    let (_, recent) = fetch(&server, "/ws/atomfeed/all/recent").await;
    assert_eq!(link(&recent, "self"), Some(format!("{base}/recent")));
    assert_eq!(link(&recent, "via"), Some(format!("{base}/11")));
    assert_eq!(observed(&recent), expected[1000..]);
    assert_eq!(
        server.get("/ws/atomfeed/all/12").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/ws/atomfeed/all/0").await.status(),
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test]
async fn spans_of_archive_pages_carry_the_same_changes_in_fewer_answers() {
    let server = start().await;
    let expected = write_changes(&server).await;
    let base = format!("{}/ws/atomfeed/all", server.base);
    let mut seen = Vec::new();
    let mut path = "/ws/atomfeed/all/1?count=450".to_string();
    let mut answers = Vec::new();
    loop {
        let (headers, feed) = fetch(&server, &path).await;
        let via = link(&feed, "via").expect("via");
        answers.push((observed(&feed).len(), via.clone()));
        seen.extend(observed(&feed));
        if via.ends_with("/11") {
            assert_eq!(headers["cache-control"], "no-cache");
            break;
        }
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let next = link(&feed, "next-archive").expect("a span links on");
        path = format!("{}?count=450", next.trim_start_matches(&server.base));
    }
    // 450 asks for four and a half pages: whole pages only, and never the newest one.
    let expected_answers = [
        (400, format!("{base}/4")),
        (400, format!("{base}/8")),
        (200, format!("{base}/10")),
        (50, format!("{base}/11")),
    ];
    assert_eq!(answers, expected_answers);
    assert_eq!(seen, expected);
    // The node's maximum (1,000 by default) caps what a reader may ask for.
    let (_, capped) = fetch(&server, "/ws/atomfeed/all/1?count=100000").await;
    assert_eq!(observed(&capped).len(), 1000);
    assert_eq!(link(&capped, "via"), Some(format!("{base}/10")));
    let bad = server.get("/ws/atomfeed/all/1?count=0").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("count"));
    server.stop().await;
}

#[tokio::test]
async fn category_feeds_hold_their_own_changes() {
    let server = start().await;
    let expected = write_changes(&server).await;
    for category in ["patient", "location"] {
        let wanted: Vec<Expected> = expected
            .iter()
            .filter(|e| e.category == category)
            .cloned()
            .collect();
        let mut seen = Vec::new();
        let mut path = format!("/ws/atomfeed/{category}/1");
        loop {
            let (_, feed) = fetch(&server, &path).await;
            seen.extend(observed(&feed));
            match link(&feed, "next-archive") {
                Some(next) => path = next.trim_start_matches(&server.base).to_owned(),
                None => break,
            }
        }
        assert_eq!(seen, wanted, "{category}");
    }
    server.stop().await;
}

#[tokio::test]
async fn etags_give_304_and_archive_pages_keep_theirs() {
    let server = start().await;
    write_changes(&server).await;
    let (headers, _) = fetch(&server, "/ws/atomfeed/all/3").await;
    let archive_tag = headers["etag"].to_str().unwrap().to_owned();
    assert!(
        !archive_tag.starts_with("W/"),
        "archive tags are strong: {archive_tag}"
    );
    let cached = server
        .request(Method::GET, "/ws/atomfeed/all/3", Some(WRITER))
        .header("if-none-match", &archive_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    let (headers, _) = fetch(&server, "/ws/atomfeed/all/recent").await;
    let recent_tag = headers["etag"].to_str().unwrap().to_owned();
    let unchanged = server
        .request(Method::GET, "/ws/atomfeed/all/recent", Some(WRITER))
        .header("if-none-match", &recent_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    server
        .send_fhir(
            Method::PUT,
            "/ws/fhir2/R4/Patient/extra",
            &patient("extra", "New"),
        )
        .await;
    let changed = server
        .request(Method::GET, "/ws/atomfeed/all/recent", Some(WRITER))
        .header("if-none-match", &recent_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), recent_tag);
    let (headers, _) = fetch(&server, "/ws/atomfeed/all/3").await;
    assert_eq!(headers["etag"].to_str().unwrap(), archive_tag);
    server.stop().await;
}

#[tokio::test]
async fn two_stores_never_share_a_page_tag_and_pages_vary_on_who_asks() {
    let (first, second) = (start().await, start().await);
    for server in [&first, &second] {
        for n in 0..150 {
            let id = format!("p{n}");
            server
                .send_fhir(
                    Method::PUT,
                    &format!("/ws/fhir2/R4/Patient/{id}"),
                    &patient(&id, "A"),
                )
                .await;
        }
    }
    let (one, _) = fetch(&first, "/ws/atomfeed/all/1").await;
    let (other, _) = fetch(&second, "/ws/atomfeed/all/1").await;
    assert_ne!(
        one["etag"], other["etag"],
        "same page name, same count, other store"
    );
    let (recent, _) = fetch(&first, "/ws/atomfeed/all/recent").await;
    let revalidated = first
        .request(Method::GET, "/ws/atomfeed/all/1", Some(WRITER))
        .header("if-none-match", one["etag"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    for headers in [&one, &recent, revalidated.headers()] {
        let vary = headers["vary"].to_str().unwrap().to_ascii_lowercase();
        assert!(
            vary.contains("authorization") && vary.contains("accept-encoding"),
            "{vary}"
        );
    }
    first.stop().await;
    second.stop().await;
}

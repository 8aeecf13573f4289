//! A hostile parent on loopback: resources nested thousands of levels deep (REST and FHIR),
//! feed entries nested deeper than any Atom page needs, entries far larger than an audit record
//! should be, and pages over the size cap (one of them endless). The child audits each bad
//! event as failed and moves its marker on, fails a run on a bad page without moving its
//! marker, keeps what it stores about hostile text bounded, and stays alive throughout.
//! Paging cycles: `sync_feed_cycles`.

#[path = "support_faults/mod.rs"]
mod support;

use sync_host::audit::excerpt::MAX_KEPT_BYTES;
use sync_host_store::store::ResourceKey;

use support::hostile::*;
use support::nodes::{audit, handle, openmrs_child, restart_with, store};
use support::openmrs::{CONTEXT, OpenMrs};
use support::pages::{FeedEntry, Shape};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_resources_and_entries_fail_alone_and_the_marker_moves_on() -> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    publish_location(&server, 0, location(0));
    let deep_rest = format!(r#"{{"uuid":"{}","tags":{}}}"#, uuid(1), nested(LEVELS));
    publish_location(&server, 1, deep_rest);
    let deep_xml = format!("{}{}", "<x>".repeat(LEVELS), "</x>".repeat(LEVELS));
    let deep_entry = format!(
        r#"{{"rest":"/ws/rest/v1/location/{}"}}]]>{deep_xml}<![CDATA["#,
        uuid(2)
    );
    server.publish(
        "location",
        FeedEntry::raw_content(&entry_id(2), &deep_entry, Shape::JsonLinks),
    );
    publish_location(&server, 3, location(3));
    publish_patient(&server, 10, patient(10, "[]"));
    publish_patient(&server, 11, patient(11, &nested(LEVELS)));
    publish_patient(&server, 12, patient(12, "[]"));

    let dir = tempfile::tempdir()?;
    let network = openmrs_child(dir.path(), &server, &["location", "patient"], "").await?;
    network.sync_round().await?;
    for key in [
        ResourceKey::rest("location", uuid(0)),
        ResourceKey::rest("location", uuid(3)),
        ResourceKey::fhir("Patient", uuid(10)),
        ResourceKey::fhir("Patient", uuid(12)),
    ] {
        assert!(
            holds(&network, &key),
            "{key:?} is applied despite its neighbours"
        );
    }
    for (event, reason) in [
        (entry_id(1), "nested deeper than"),
        (entry_id(11), "nested deeper than"),
        (entry_id(2), "nests elements deeper than"),
    ] {
        let message = invalid_failure(&network, &event);
        assert!(message.contains(reason), "{event}: {message}");
        assert!(
            message.len() < 2 * MAX_KEPT_BYTES,
            "{event}: {} bytes",
            message.len()
        );
    }
    assert!(!holds(&network, &ResourceKey::rest("location", uuid(1))));
    assert!(!holds(&network, &ResourceKey::fhir("Patient", uuid(11))));
    // The parked entry keeps a bounded excerpt of its raw text, not all of it.
    let dead = handle(&network, "clinic").state.dead_letters(100)?;
    let parked = dead
        .iter()
        .find(|d| d.event_id == entry_id(2))
        .expect("parked");
    let raw = parked.event["raw"].as_str().unwrap_or_default();
    assert!(
        raw.len() < MAX_KEPT_BYTES + 200 && raw.contains("truncated"),
        "{} bytes",
        raw.len()
    );
    assert_eq!(
        marker(&network, "location").map(|m| m.entry_id),
        Some(entry_id(3))
    );
    assert_eq!(
        marker(&network, "patient").map(|m| m.entry_id),
        Some(entry_id(12))
    );

    // The next round neither crashes nor repeats what was settled, and news still flows.
    publish_location(&server, 4, location(4));
    network.sync_round().await?;
    assert!(holds(&network, &ResourceKey::rest("location", uuid(4))));
    assert_alive(&network).await?;
    network.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_entry_leaves_a_bounded_audit() -> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    publish_location(&server, 0, location(0));
    let junk = "not a link ".repeat(300_000);
    server.publish(
        "location",
        FeedEntry::raw_content(&entry_id(1), &junk, Shape::JsonLinks),
    );
    publish_location(&server, 2, location(2));
    let dir = tempfile::tempdir()?;
    let network = openmrs_child(dir.path(), &server, &["location"], "").await?;
    network.sync_round().await?;
    let message = invalid_failure(&network, &entry_id(1));
    assert!(
        message.contains("malformed feed entry"),
        "{}",
        &message[..200]
    );
    assert!(
        message.len() < 3 * MAX_KEPT_BYTES,
        "{} bytes kept of {}",
        message.len(),
        junk.len()
    );
    // Nothing the node keeps about the entry is anywhere near its 3 MB.
    let clinic = handle(&network, "clinic");
    let kept: usize = audit(clinic)
        .iter()
        .map(|r| serde_json::to_string(r).map_or(0, |t| t.len()))
        .chain(
            clinic
                .state
                .dead_letters(100)?
                .iter()
                .map(|d| d.event.to_string().len()),
        )
        .sum();
    assert!(
        kept < 8 * MAX_KEPT_BYTES,
        "audit and dead letters hold {kept} bytes"
    );
    assert!(holds(&network, &ResourceKey::rest("location", uuid(2))));
    assert_eq!(
        marker(&network, "location").map(|m| m.entry_id),
        Some(entry_id(2))
    );
    assert_alive(&network).await?;
    network.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_over_the_size_cap_is_refused() -> anyhow::Result<()> {
    let server = OpenMrs::start().await?;
    for n in 0..3 {
        publish_location(&server, n, location(n));
    }
    let dir = tempfile::tempdir()?;
    let mut network = openmrs_child(dir.path(), &server, &["location"], "").await?;
    restart_with(&mut network, "clinic", |text| {
        text.replacen("[sync]\n", "[sync]\nmax_feed_page_mib = 1\n", 1)
    })
    .await?;
    let recent = page_text(&server, "location", "recent").await?;
    let padded = recent.replacen(
        "</title>",
        &format!("</title><!--{}-->", "x".repeat(2 << 20)),
        1,
    );
    server.override_page("location", "recent", Some(padded));
    let error = network
        .sync_round()
        .await
        .expect_err("too large")
        .to_string();
    assert!(error.contains("larger than 1048576 bytes"), "{error}");
    assert_eq!(marker(&network, "location"), None);
    assert_eq!(store(&network, "clinic").change_count(None)?, 0);

    server.override_page("location", "recent", None);
    network.sync_round().await?;
    assert!(holds(&network, &ResourceKey::rest("location", uuid(2))));
    assert!(server.log().iter().all(|r| r.target.starts_with(CONTEXT)));
    assert_alive(&network).await?;
    network.shutdown().await;
    Ok(())
}

/// A parent whose every answer is an endless stream of spaces, without a length.
async fn endless_parent() -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
    let app = axum::Router::new().fallback(move || {
        let chunk = chunk.clone();
        async move {
            let stream =
                futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
            axum::body::Body::from_stream(stream)
        }
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{address}/openmrs"), task))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_page_is_cut_off_at_the_cap() -> anyhow::Result<()> {
    let (base_url, parent) = endless_parent().await?;
    let dir = tempfile::tempdir()?;
    let mut network =
        support::nodes::child_of_url(dir.path(), &base_url, &["location"], "").await?;
    restart_with(&mut network, "clinic", |text| {
        text.replacen("[sync]\n", "[sync]\nmax_feed_page_mib = 1\n", 1)
    })
    .await?;
    let error = network
        .sync_round()
        .await
        .expect_err("too large")
        .to_string();
    assert!(error.contains("larger than 1048576 bytes"), "{error}");
    assert_eq!(marker(&network, "location"), None);
    assert_alive(&network).await?;
    network.shutdown().await;
    parent.abort();
    Ok(())
}

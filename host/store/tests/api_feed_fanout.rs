//! Serving many readers of the Atom feed over a real loopback server: a long-poll answers
//! soon after a write and ends on shutdown, a burst of writes wakes each waiter once with all
//! of them and a client answered a moment ago gets the next writes together (when many
//! long-polls are held; in a small tree both are answered at once), long-polls stay
//! within the node's and each client's bound, and every waiter is served one render and one
//! compression of the page.

mod common;

use std::time::{Duration, Instant};

use common::{CHILD, READER, TestServer, WRITER, patient, start, start_with};
use reqwest::{Method, StatusCode};

/// The tag of `path`, read as the writer.
async fn tag_of(server: &TestServer, path: &str) -> String {
    let response = server.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.headers()["etag"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn long_poll_answers_soon_after_a_write() {
    let server = start().await;
    server
        .send_fhir(
            Method::PUT,
            "/ws/fhir2/R4/Patient/first",
            &patient("first", "A"),
        )
        .await;
    let tag = tag_of(&server, "/ws/atomfeed/patient/recent").await;

    let poll = async {
        let response = server
            .request(
                Method::GET,
                "/ws/atomfeed/patient/recent?wait=20",
                Some(WRITER),
            )
            .header("if-none-match", &tag)
            .send()
            .await;
        (response, Instant::now())
    };
    let writer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // A change in another category must not end the wait.
        server
            .send_rest("/ws/rest/v1/location", r#"{"uuid":"l1","name":"x"}"#)
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        server
            .send_fhir(
                Method::PUT,
                "/ws/fhir2/R4/Patient/second",
                &patient("second", "B"),
            )
            .await;
        started
    };
    let ((response, answered_at), write_started) = tokio::join!(poll, writer);
    let latency = answered_at.duration_since(write_started);
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let xml = response.text().await.unwrap();
    assert!(xml.contains("/ws/fhir2/R4/Patient/second"));
    println!("long-poll answered {latency:?} after the write was sent");
    assert!(latency < Duration::from_secs(2), "{latency:?}");

    let started = Instant::now();
    let tag = tag_of(&server, "/ws/atomfeed/patient/recent").await;
    let idle = server
        .request(
            Method::GET,
            "/ws/atomfeed/patient/recent?wait=1",
            Some(WRITER),
        )
        .header("if-none-match", tag)
        .send()
        .await
        .unwrap();
    assert_eq!(idle.status(), StatusCode::NOT_MODIFIED);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_ends_pending_long_polls() {
    let server = start().await;
    let tag = tag_of(&server, "/ws/atomfeed/all/recent").await;
    let poll = tokio::spawn(
        server
            .http
            .get(server.url("/ws/atomfeed/all/recent?wait=25"))
            .bearer_auth(WRITER)
            .header("if-none-match", tag)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    server.stop().await;
    let stopped_after = started.elapsed();
    let response = poll.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    println!("server stopped {stopped_after:?} after shutdown with a long-poll pending");
    assert!(stopped_after < Duration::from_secs(5), "{stopped_after:?}");
}

/// A server with `config` holding one patient, and the tag of its `all/recent` page.
async fn serving_one_patient(config: sync_host_store::config::ApiConfig) -> (TestServer, String) {
    let server = start_with(config).await;
    server
        .send_fhir(
            Method::PUT,
            "/ws/fhir2/R4/Patient/first",
            &patient("first", "A"),
        )
        .await;
    let tag = tag_of(&server, "/ws/atomfeed/all/recent").await;
    (server, tag)
}

/// Starts a long-poll of `recent` by `token` that waits up to 20 s; answers with the time taken.
async fn long_poll(server: &TestServer, token: &str, tag: &str) -> (StatusCode, Duration) {
    let started = Instant::now();
    let response = server
        .request(Method::GET, "/ws/atomfeed/all/recent?wait=20", Some(token))
        .header("if-none-match", tag)
        .send()
        .await
        .unwrap();
    (response.status(), started.elapsed())
}

#[tokio::test]
async fn long_polls_beyond_the_bounds_are_answered_at_once_and_the_rest_keep_working() {
    let config = sync_host_store::config::ApiConfig {
        long_poll_max_waiters: 2,
        long_poll_max_per_client: 1,
        ..Default::default()
    };
    let (server, tag) = serving_one_patient(config).await;
    // The writer and the child each hold a long-poll: the node's bound of two is reached.
    let held = async {
        tokio::join!(
            long_poll(&server, WRITER, &tag),
            long_poll(&server, CHILD, &tag)
        )
    };
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        // Beyond the client's bound, and beyond the node's: both answered at once.
        let again = long_poll(&server, CHILD, &tag).await;
        let third = long_poll(&server, READER, &tag).await;
        let health = server.get("/healthz").await.status();
        let read = server.get("/ws/fhir2/R4/Patient/first").await.status();
        let write = server
            .send_fhir(
                Method::PUT,
                "/ws/fhir2/R4/Patient/second",
                &patient("second", "B"),
            )
            .await
            .status();
        (again, third, health, read, write)
    };
    let (((writer, w_took), (child, c_took)), (again, third, health, read, write)) =
        tokio::join!(held, meanwhile);
    for (status, took) in [again, third] {
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(
            took < Duration::from_secs(5),
            "answered at once, not held: {took:?}"
        );
    }
    assert_eq!((health, read), (StatusCode::OK, StatusCode::OK));
    assert!(write.is_success(), "{write}");
    // The write woke the two that were held.
    assert_eq!((writer, child), (StatusCode::OK, StatusCode::OK));
    assert!(w_took >= Duration::from_millis(1000) && c_took >= Duration::from_millis(1000));
    assert!(w_took < Duration::from_secs(15) && c_took < Duration::from_secs(15));
    // Their places are free again.
    let (status, _) = tokio::join!(long_poll(&server, READER, &tag), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        server
            .send_fhir(
                Method::PUT,
                "/ws/fhir2/R4/Patient/third",
                &patient("third", "C"),
            )
            .await;
    })
    .0;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

/// `count` long-polls of the child on `all/recent`, each answering its status and page.
async fn long_polls_of_one_client(
    server: &TestServer,
    tag: &str,
    count: usize,
) -> Vec<(StatusCode, String)> {
    futures::future::join_all((0..count).map(|_| async {
        let response = server
            .request(Method::GET, "/ws/atomfeed/all/recent?wait=20", Some(CHILD))
            .header("if-none-match", tag)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }))
    .await
}

#[tokio::test]
async fn one_write_wakes_every_long_poll_with_one_render_of_the_page() {
    const WAITERS: usize = 50;
    // One client stands for many children here, so it may hold them all; its long-polls
    // answered together do not hold each other back by its least interval.
    let config = sync_host_store::config::ApiConfig {
        long_poll_max_per_client: WAITERS,
        long_poll_least_interval: Duration::from_secs(5),
        long_poll_pace_from: 1,
        ..Default::default()
    };
    let (server, tag) = serving_one_patient(config).await;
    let before = server.pages.renders();
    let waiters = long_polls_of_one_client(&server, &tag, WAITERS);
    let writer = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        server
            .send_fhir(
                Method::PUT,
                "/ws/fhir2/R4/Patient/second",
                &patient("second", "B"),
            )
            .await
            .status()
    };
    let started = Instant::now();
    let (answers, written) = tokio::join!(waiters, writer);
    assert!(written.is_success());
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "all answered {took:?} after they asked"
    );
    let first = &answers[0].1;
    assert!(first.contains("Patient/second"), "{first}");
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK);
        assert_eq!(body, first, "every waiter got the same page");
    }
    assert_eq!(
        server.pages.renders() - before,
        1,
        "rendered once for {WAITERS} waiters"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_burst_of_writes_wakes_each_waiter_once_with_all_of_them() {
    const WAITERS: usize = 20;
    const BURST: usize = 10;
    let config = sync_host_store::config::ApiConfig {
        long_poll_max_per_client: WAITERS,
        long_poll_coalesce: Duration::from_millis(500),
        long_poll_pace_from: 1,
        ..Default::default()
    };
    let (server, tag) = serving_one_patient(config).await;
    let before = server.pages.renders();
    let waiters = long_polls_of_one_client(&server, &tag, WAITERS);
    // One write after another, each its own commit and its own wake-up of the store.
    let burst = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let mut written = Vec::new();
        for n in 0..BURST {
            let id = format!("burst-{n}");
            let path = format!("/ws/fhir2/R4/Patient/{id}");
            let body = patient(&id, "Burst");
            written.push(server.send_fhir(Method::PUT, &path, &body).await.status());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        written
    };
    let (answers, written) = tokio::join!(waiters, burst);
    assert!(written.iter().all(StatusCode::is_success), "{written:?}");
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK);
        for n in 0..BURST {
            assert!(
                body.contains(&format!("Patient/burst-{n}")),
                "one answer carries the whole burst; burst-{n} missing"
            );
        }
    }
    assert_eq!(
        server.pages.renders() - before,
        1,
        "{WAITERS} waiters, one wake each, one render"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_page_is_compressed_once_for_every_reader_that_accepts_gzip() {
    const READERS: usize = 20;
    let server = start().await;
    for n in 0..150 {
        let id = format!("p{n}");
        let path = format!("/ws/fhir2/R4/Patient/{id}");
        server
            .send_fhir(Method::PUT, &path, &patient(&id, "A"))
            .await;
    }
    // A client that neither asks for nor decodes compression by itself, to see the bytes.
    let raw = reqwest::Client::builder()
        .no_gzip()
        .no_zstd()
        .build()
        .unwrap();
    let get = |accept: Option<&'static str>| {
        let mut request = raw
            .get(server.url("/ws/atomfeed/all/1"))
            .bearer_auth(READER);
        if let Some(accept) = accept {
            request = request.header("accept-encoding", accept);
        }
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let headers = response.headers().clone();
            (headers, response.bytes().await.unwrap())
        }
    };
    let (plain_headers, plain) = get(None).await;
    assert!(!plain_headers.contains_key("content-encoding"));
    let answers =
        futures::future::join_all((0..READERS).map(|_| get(Some("zstd, gzip;q=0.8")))).await;
    for (headers, body) in &answers {
        assert_eq!(headers["content-encoding"], "gzip");
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut decoded)
            .unwrap();
        assert_eq!(decoded, plain, "the compressed page is the plain page");
        assert!(
            body.len() * 4 < plain.len(),
            "{} of {}",
            body.len(),
            plain.len()
        );
    }
    assert_eq!(
        server.pages.compressions(),
        1,
        "{READERS} readers, one compression"
    );
    assert_eq!(
        server.pages.renders(),
        1,
        "plain and compressed share one render"
    );
    // Each form has its own tag, and holding either one is holding the page.
    let plain_tag = plain_headers["etag"].to_str().unwrap();
    let gzip_tag = answers[0].0["etag"].to_str().unwrap();
    assert_ne!(plain_tag, gzip_tag);
    for (tag, accept) in [(gzip_tag, "identity"), (plain_tag, "gzip")] {
        let revalidated = raw
            .get(server.url("/ws/atomfeed/all/1"))
            .bearer_auth(READER)
            .header("accept-encoding", accept)
            .header("if-none-match", tag)
            .send()
            .await
            .unwrap();
        assert_eq!(
            revalidated.status(),
            StatusCode::NOT_MODIFIED,
            "{tag} {accept}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_client_answered_a_moment_ago_gets_the_writes_that_follow_together() {
    let config = sync_host_store::config::ApiConfig {
        long_poll_coalesce: Duration::ZERO,
        long_poll_least_interval: Duration::from_millis(1500),
        long_poll_pace_from: 1,
        ..Default::default()
    };
    let (server, tag) = serving_one_patient(config).await;
    let put = |id: &'static str| {
        let server = &server;
        async move {
            let path = format!("/ws/fhir2/R4/Patient/{id}");
            let status = server
                .send_fhir(Method::PUT, &path, &patient(id, "S"))
                .await;
            assert!(status.status().is_success());
        }
    };
    let poll = |token: &'static str, tag: String| {
        let server = &server;
        async move {
            let response = server
                .request(Method::GET, "/ws/atomfeed/all/recent?wait=20", Some(token))
                .header("if-none-match", &tag)
                .send()
                .await
                .unwrap();
            let tag = response.headers()["etag"].to_str().unwrap().to_owned();
            (response.text().await.unwrap(), tag, Instant::now())
        }
    };
    // The child is answered for the first write...
    let ((_, child_tag, first_answer), ()) = tokio::join!(poll(CHILD, tag.clone()), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        put("one").await;
    });
    // ...asks again at once; two writes follow. The reader, never answered, gets the first of
    // them at once; the child gets both, in one answer, once its interval has passed.
    let (child, reader, ()) = tokio::join!(
        poll(CHILD, child_tag),
        poll(READER, tag_of(&server, "/ws/atomfeed/all/recent").await),
        async {
            put("two").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            put("three").await;
        }
    );
    let (child_page, _, child_at) = child;
    let (reader_page, _, reader_at) = reader;
    assert!(child_page.contains("Patient/two") && child_page.contains("Patient/three"));
    assert!(reader_page.contains("Patient/two") && !reader_page.contains("Patient/three"));
    let child_after = child_at.duration_since(first_answer);
    assert!(
        child_after >= Duration::from_millis(1400),
        "answered again {child_after:?} after its last answer"
    );
    assert!(
        reader_at < child_at,
        "the reader was not held by the child's interval"
    );
    server.stop().await;
}

#[tokio::test]
async fn in_a_small_tree_a_child_answered_a_moment_ago_is_answered_at_once() {
    // Fewer long-polls held than `long_poll_pace_from`: the interval does not apply.
    let config = sync_host_store::config::ApiConfig {
        long_poll_least_interval: Duration::from_secs(5),
        ..Default::default()
    };
    let (server, mut tag) = serving_one_patient(config).await;
    for round in 0..2 {
        let id = format!("round-{round}");
        let (response, written_at) = tokio::join!(
            server
                .request(Method::GET, "/ws/atomfeed/all/recent?wait=20", Some(CHILD))
                .header("if-none-match", &tag)
                .send(),
            async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let path = format!("/ws/fhir2/R4/Patient/{id}");
                server
                    .send_fhir(Method::PUT, &path, &patient(&id, "R"))
                    .await;
                Instant::now()
            }
        );
        let response = response.unwrap();
        tag = response.headers()["etag"].to_str().unwrap().to_owned();
        let page = response.text().await.unwrap();
        let after = written_at.elapsed();
        assert!(page.contains(&format!("Patient/{id}")), "round {round}");
        assert!(after < Duration::from_secs(3), "round {round}: {after:?}");
    }
    server.stop().await;
}

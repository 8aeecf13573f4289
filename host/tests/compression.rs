//! Answers are compressed for clients that ask (clinics sit on slow links), and only for them;
//! the test prints the bytes on the wire per resource both ways.

use sync_host::network::{Network, NodeSpec, sample};

/// The raw answer to `GET url` with `accept-encoding` set as given (the client decodes nothing).
async fn raw_get(
    url: &str,
    token: &str,
    encoding: Option<&str>,
) -> anyhow::Result<(Option<String>, usize)> {
    let client = reqwest::Client::builder().no_gzip().no_zstd().build()?;
    let mut request = client.get(url).bearer_auth(token);
    if let Some(encoding) = encoding {
        request = request.header("accept-encoding", encoding);
    }
    let response = request.send().await?.error_for_status()?;
    let used = response
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok((used, response.bytes().await?.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_pages_and_fhir_answers_are_compressed_when_the_client_accepts_it()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let network = Network::start(dir.path(), vec![NodeSpec::new("root", None)]).await?;
    let root = &network.nodes[0];
    let store = root.running.handle.store.clone().expect("embedded store");
    let count = 100;
    for i in 0..count {
        let id = format!("p{i}");
        let body = sample::patient(&id, "Amina", "Wanjiru-Otieno", "1984-03-02");
        sample::put_fhir(&store, "Patient", &id, body).await?;
    }
    let base = root.running.base_url();
    let token = &root.admin_token;
    let urls = [
        ("feed page", format!("{base}/ws/atomfeed/all/1")),
        (
            "FHIR search",
            format!("{base}/ws/fhir2/R4/Patient?_count={count}"),
        ),
    ];
    for (what, url) in &urls {
        let (none, plain) = raw_get(url, token, None).await?;
        assert_eq!(
            none, None,
            "{what}: nothing compressed for a client that did not ask"
        );
        for encoding in ["gzip", "zstd"] {
            let (used, wire) = raw_get(url, token, Some(encoding)).await?;
            assert_eq!(used.as_deref(), Some(encoding), "{what}");
            println!(
                "{what}: {:.0} bytes per resource plain, {:.0} with {encoding} ({:.1}x smaller)",
                plain as f64 / count as f64,
                wire as f64 / count as f64,
                plain as f64 / wire as f64
            );
            assert!(
                wire * 2 < plain,
                "{what}: {encoding} {wire} of {plain} bytes"
            );
        }
    }
    network.shutdown().await;
    Ok(())
}

//! Unauthenticated traffic cannot grow a node's metrics: methods and paths a caller makes up
//! fall into a fixed, small label set, and the node keeps serving. The feed's figures are there
//! under fixed names.

use reqwest::{Method, StatusCode};
use sync_host::network::{Network, NodeSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_do_not_become_metric_labels() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let network = Network::start(dir.path(), vec![NodeSpec::new("root", None)]).await?;
    let root = network.node("root").expect("root");
    let base = root.running.base_url().to_string();
    let http = reqwest::Client::new();
    for n in 0..200 {
        let method = Method::from_bytes(format!("M{n:03}XYZ").as_bytes())?;
        let path = format!("{base}/unique-{n}/{}", "p".repeat(n));
        let status = http.request(method, &path).send().await?.status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let status = http
            .get(format!("{base}/ws/fhir2/R4/Patient/x{n}"))
            .send()
            .await?
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let text = http
        .get(format!("{base}/metrics"))
        .bearer_auth(&root.admin_token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let series: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("sync_host_http_requests_total{"))
        .collect();
    assert!(!series.is_empty(), "{text}");
    assert!(
        series.len() <= 4,
        "{} series:\n{}",
        series.len(),
        series.join("\n")
    );
    assert!(!text.contains("XYZ") && !text.contains("unique-"), "{text}");
    assert!(
        series.iter().any(|s| s.contains("method=\"other\"")),
        "{text}"
    );
    // The feed's figures are read at scrape time, under fixed names without labels.
    for name in [
        "sync_host_feed_long_polls 0",
        "sync_host_feed_page_renders_total ",
        "sync_host_feed_page_compressions_total ",
    ] {
        assert!(
            text.lines().any(|line| line.starts_with(name)),
            "{name}:\n{text}"
        );
    }
    let health = http.get(format!("{base}/healthz")).send().await?.status();
    assert_eq!(health, StatusCode::OK);
    network.shutdown().await;
    Ok(())
}

//! The metrics an on-call engineer alerts on, read from real nodes: per direction the runs,
//! their durations, the lag, the last success and the events by outcome; plugin call
//! durations; and at the parent each child's report age and health. A client with only the
//! `metrics` scope reads `/metrics` and nothing else.

use std::time::Duration;

use sync_host::network::{Network, NodeSpec, sample, toml_string};

/// The value of the first sample line starting with `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(base: &str, token: &str) -> anyhow::Result<String> {
    Ok(reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// Scrapes until every series in `wanted` is at least its minimum, for at most 30 s.
async fn scrape_until(base: &str, token: &str, wanted: &[(&str, f64)]) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape(base, token).await?;
        let missing: Vec<&(&str, f64)> = wanted
            .iter()
            .filter(|(s, least)| value(&text, s).is_none_or(|v| v < *least))
            .collect();
        if missing.is_empty() {
            return Ok(text);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "never seen: {missing:?}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directions_plugins_and_children_have_their_metrics() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let scraper_token = sync_host::config::token::generate();
    let token_file = dir.path().join("scraper.token");
    std::fs::write(&token_file, &scraper_token)?;
    let mut root = NodeSpec::new("root", None);
    root.extra_toml = format!(
        "\n[[server.clients]]\nname = \"prometheus\"\ntoken = {{ file = {} }}\nscopes = [\"metrics\"]\n",
        toml_string(&token_file.display().to_string())
    );
    let mut child = NodeSpec::new("child", Some("root"));
    child.interval_secs = 1;
    child.report_interval_secs = Some(1);
    let network = Network::start(&dir.path().join("net"), vec![root, child]).await?;
    let root = network.node("root").expect("root");
    let child = network.node("child").expect("child");
    let store = root.running.handle.store.as_ref().expect("embedded store");
    let body = sample::patient("m-1", "Imani", "Otieno", "1988-08-08");
    sample::put_fhir(store, "Patient", "m-1", body).await?;

    let text = scrape_until(
        child.running.base_url(),
        &child.admin_token,
        &[
            (
                "sync_host_sync_events_total{direction=\"pull\",outcome=\"applied\"}",
                1.0,
            ),
            (
                "sync_host_sync_runs_total{direction=\"pull\",result=\"ok\"}",
                1.0,
            ),
            (
                "sync_host_sync_run_duration_seconds_count{direction=\"pull\"}",
                1.0,
            ),
            (
                "sync_host_plugin_call_duration_seconds_count{plugin=\"fhir\"}",
                1.0,
            ),
            (
                "sync_host_sync_last_success_timestamp_seconds{direction=\"pull\"}",
                1.0,
            ),
        ],
    )
    .await?;
    for series in [
        "sync_host_sync_lag_entries{direction=\"pull\"}",
        "sync_host_sync_lag_entries{direction=\"push\"}",
        "sync_host_sync_events_total{direction=\"push\",outcome=\"conflict\"}",
        "sync_host_sync_queue{queue=\"dead_letters\"}",
        "sync_host_sync_waiting{direction=\"pull\",queue=\"open_conflicts\"}",
        "sync_host_sync_waiting{direction=\"push\",queue=\"retries\"}",
    ] {
        assert!(value(&text, series).is_some(), "{series} missing:\n{text}");
    }

    let base = root.running.base_url();
    // An age of 0 s is a fresh report: the series being there is what counts.
    let text = scrape_until(
        base,
        &scraper_token,
        &[("sync_host_network_report_age_seconds{node=\"child\"}", 0.0)],
    )
    .await?;
    assert!(
        value(
            &text,
            "sync_host_network_report_age_seconds{node=\"child\"}"
        )
        .is_some(),
        "{text}"
    );
    assert_eq!(
        value(&text, "sync_host_network_node_unhealthy{node=\"child\"}"),
        Some(0.0),
        "{text}"
    );
    let child_text = scrape(child.running.base_url(), &child.admin_token).await?;
    assert_docs_name_only_exported_metrics(&format!("{text}{child_text}"))?;
    let http = reqwest::Client::new();
    for path in ["/admin/status", "/ws/fhir2/R4/Patient/m-1"] {
        let status = http
            .get(format!("{base}{path}"))
            .bearer_auth(&scraper_token)
            .send()
            .await?
            .status();
        assert_eq!(status, 403, "{path} with the metrics scope");
    }
    network.shutdown().await;
    Ok(())
}

/// The alert rules and the Grafana dashboard in `docs/` use only metric names a node exports.
fn assert_docs_name_only_exported_metrics(exported: &str) -> anyhow::Result<()> {
    let families: Vec<&str> = exported
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .collect();
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    for file in ["prometheus-alerts.yml", "grafana-dashboard.json"] {
        let text = std::fs::read_to_string(docs.join(file))?;
        let mut rest = text.as_str();
        while let Some(at) = rest.find("sync_host_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            let family = ["_bucket", "_count", "_sum", "_total"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            anyhow::ensure!(
                families.contains(&family),
                "{file} names `{name}`, which no node exports; exported: {families:?}"
            );
        }
    }
    Ok(())
}

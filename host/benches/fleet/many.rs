//! The two loads that need many connections at once: thousands of long-polls held together
//! (with `/healthz` probed throughout), and a catch-up storm of children reading every archive
//! page at the same time.

use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::{Client, StatusCode};

use super::load::{self, CpuWindow, Latencies};
use super::parent::Parent;

/// What holding `n` long-polls did.
pub struct Held {
    pub held: usize,
    pub woken: usize,
    /// Long-polls that did not end in a page: refused, reset or timed out connections.
    pub failed: usize,
    pub first_failure: Option<String>,
    pub healthz: Latencies,
    pub healthz_failed: usize,
    pub wake: Latencies,
}

/// Opens `n` long-polls at once, probes `/healthz` every 50 ms while they are held, then
/// wakes them all with one write.
pub async fn hold(http: &Client, parent: &Parent, n: usize, id: &str) -> anyhow::Result<Held> {
    let tag = load::recent_tag(http, parent).await?;
    let waiting = load::long_polls(http, parent, 0..n, &tag);
    let probing = async {
        let mut latencies = Latencies::default();
        let mut failed = 0;
        let started = Instant::now();
        let mut held = 0;
        while started.elapsed() < Duration::from_secs(60) {
            let sent = Instant::now();
            let answer = http
                .get(format!("{}/healthz", parent.url))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            match answer {
                Ok(answer) if answer.status() == StatusCode::OK => latencies.record(sent.elapsed()),
                _ => failed += 1,
            }
            held = load::long_polls_held(http, parent).await?;
            // Keep probing a few seconds after every long-poll is held.
            if held >= n && latencies.len() >= 100 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::Ok((latencies, failed, held))
    };
    let (healthz, healthz_failed, held) = probing.await?;
    let sent = Instant::now();
    load::write(http, parent, id).await?;
    let mut result = Held {
        held,
        woken: 0,
        failed: 0,
        first_failure: None,
        healthz,
        healthz_failed,
        wake: Latencies::default(),
    };
    for answer in futures::future::join_all(waiting).await {
        match answer? {
            Ok((StatusCode::OK, at)) => {
                result.woken += 1;
                result.wake.record(at.duration_since(sent));
            }
            Ok((status, _)) => {
                result.failed += 1;
                result
                    .first_failure
                    .get_or_insert(format!("answered {status}"));
            }
            Err(error) => {
                result.failed += 1;
                result.first_failure.get_or_insert(format!("{error:?}"));
            }
        }
    }
    Ok(result)
}

/// The archive pages of `all`: their count, from the `prev-archive` link of `recent`.
pub async fn archive_pages(http: &Client, parent: &Parent) -> anyhow::Result<u64> {
    let page = http
        .get(format!("{}/ws/atomfeed/all/recent", parent.url))
        .bearer_auth(&parent.writer)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let link = page
        .split("<link")
        .find(|link| link.contains("rel=\"prev-archive\""))
        .context("recent has no prev-archive link")?;
    let href = link
        .split("href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("prev-archive has no href")?;
    href.rsplit('/')
        .next()
        .and_then(|number| number.parse().ok())
        .context("prev-archive names no page number")
}

/// `readers` children each reading archive pages 1 to `pages` in order, all at once; the
/// parent's CPU seconds per page served and the pages served per second.
pub async fn storm(
    http: &Client,
    parent: &Parent,
    readers: usize,
    pages: u64,
) -> anyhow::Result<(f64, f64)> {
    let cpu = CpuWindow::start(parent.pid);
    let started = Instant::now();
    let reading = (0..readers).map(|i| {
        let http = http.clone();
        let token = parent.clinics[i].clone();
        let base = format!("{}/ws/atomfeed/all", parent.url);
        tokio::spawn(async move {
            for number in 1..=pages {
                http.get(format!("{base}/{number}"))
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await?;
            }
            anyhow::Ok(())
        })
    });
    for reader in futures::future::join_all(reading).await {
        reader??;
    }
    let served = (readers as u64 * pages) as f64;
    let (cpu, _) = cpu.finish();
    Ok((cpu / served, served / started.elapsed().as_secs_f64()))
}

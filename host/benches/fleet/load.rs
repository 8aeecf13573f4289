//! Children as real HTTP clients on loopback: pollers of `recent`, long-polls woken by a
//! write, readers of archive pages; and what the parent spent meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::{Client, StatusCode};

use super::parent::Parent;
use super::proc_stats;

/// Latencies of one kind of request, for percentiles.
#[derive(Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn record(&mut self, took: Duration) {
        self.0.push(took);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `p50 a ms, p99 b ms, max c ms` (or `none`).
    pub fn summary(&mut self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.quantile_ms(0.5),
            self.quantile_ms(0.99),
            self.quantile_ms(1.0)
        )
    }

    pub fn p99_ms(&mut self) -> f64 {
        self.quantile_ms(0.99)
    }

    /// The latency below which the fraction `q` of them lie, in ms (0 when there are none).
    fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.sort_unstable();
        let index = ((self.0.len() as f64 - 1.0) * q).round() as usize;
        self.0[index].as_secs_f64() * 1000.0
    }
}

/// The parent's CPU over a stretch of wall time.
pub struct CpuWindow {
    pid: u32,
    cpu: f64,
    started: Instant,
}

impl CpuWindow {
    pub fn start(pid: u32) -> Self {
        CpuWindow {
            pid,
            cpu: proc_stats::cpu_seconds(pid).unwrap_or(0.0),
            started: Instant::now(),
        }
    }

    /// CPU seconds used since the start, and the cores that is over the wall time.
    pub fn finish(&self) -> (f64, f64) {
        let cpu = proc_stats::cpu_seconds(self.pid).unwrap_or(0.0) - self.cpu;
        (cpu, cpu / self.started.elapsed().as_secs_f64())
    }
}

/// One HTTP client for all simulated children: its pool opens a connection per request in
/// flight, so 5,000 long-polls are 5,000 connections, as from 5,000 clinics.
pub fn http() -> anyhow::Result<Client> {
    Ok(Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(120))
        .build()?)
}

/// `/healthz` latencies of `count` requests one after another.
pub async fn healthz(http: &Client, parent: &Parent, count: usize) -> anyhow::Result<Latencies> {
    let mut latencies = Latencies::default();
    for _ in 0..count {
        let started = Instant::now();
        http.get(format!("{}/healthz", parent.url))
            .send()
            .await?
            .error_for_status()?;
        latencies.record(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(latencies)
}

/// The current tag of `all/recent`.
pub async fn recent_tag(http: &Client, parent: &Parent) -> anyhow::Result<String> {
    let answer = http
        .get(format!("{}/ws/atomfeed/all/recent", parent.url))
        .bearer_auth(&parent.writer)
        .send()
        .await?
        .error_for_status()?;
    Ok(answer
        .headers()
        .get("etag")
        .context("no etag")?
        .to_str()?
        .to_owned())
}

/// One write as a clinic's push would make it; answers how long the parent took.
pub async fn write(http: &Client, parent: &Parent, id: &str) -> anyhow::Result<Duration> {
    let body = sync_host::network::sample::patient(id, "New", "Wanjiru", "2001-05-06");
    let started = Instant::now();
    http.put(format!("{}/ws/fhir2/R4/Patient/{id}", parent.url))
        .bearer_auth(&parent.writer)
        .header("content-type", "application/fhir+json")
        .body(body)
        .send()
        .await?
        .error_for_status()?;
    Ok(started.elapsed())
}

/// Long-polls the parent holds now, from its metrics.
pub async fn long_polls_held(http: &Client, parent: &Parent) -> anyhow::Result<usize> {
    let text = http
        .get(format!("{}/metrics", parent.url))
        .bearer_auth(&parent.operator)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    text.lines()
        .find_map(|line| line.strip_prefix("sync_host_feed_long_polls "))
        .and_then(|value| value.trim().parse().ok())
        .context("no sync_host_feed_long_polls in /metrics")
}

/// Waits until the parent holds `wanted` long-polls (or 60 s pass); answers how many it holds.
pub async fn until_held(http: &Client, parent: &Parent, wanted: usize) -> anyhow::Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held = long_polls_held(http, parent).await?;
        if held >= wanted || Instant::now() > deadline {
            return Ok(held);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` children polling `recent` with `If-None-Match` every second for `secs` seconds,
/// spread evenly over the second; their latencies and how many were not a 304.
pub async fn poll_every_second(
    http: &Client,
    parent: &Parent,
    n: usize,
    secs: u64,
) -> anyhow::Result<(Latencies, usize)> {
    let tag = recent_tag(http, parent).await?;
    let url = format!("{}/ws/atomfeed/all/recent", parent.url);
    let pollers = (0..n).map(|i| {
        let (http, url, tag) = (http.clone(), url.clone(), tag.clone());
        let token = parent.clinics[i].clone();
        tokio::spawn(async move {
            let offset = Duration::from_secs_f64(i as f64 / n as f64);
            tokio::time::sleep(offset).await;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut latencies = Latencies::default();
            let mut other = 0;
            for _ in 0..secs {
                tick.tick().await;
                let started = Instant::now();
                let answer = http
                    .get(&url)
                    .bearer_auth(&token)
                    .header("if-none-match", &tag)
                    .send()
                    .await;
                match answer {
                    Ok(answer) if answer.status() == StatusCode::NOT_MODIFIED => {
                        latencies.record(started.elapsed());
                    }
                    _ => other += 1,
                }
            }
            (latencies, other)
        })
    });
    let mut all = Latencies::default();
    let mut other = 0;
    for poller in futures::future::join_all(pollers).await {
        let (latencies, failed) = poller?;
        all.extend(latencies);
        other += failed;
    }
    Ok((all, other))
}

/// Long-polls by children `children` (indexes of their tokens) waiting on `tag`; each answers
/// its status and when its page arrived whole.
pub fn long_polls(
    http: &Client,
    parent: &Parent,
    children: std::ops::Range<usize>,
    tag: &str,
) -> Vec<tokio::task::JoinHandle<Result<(StatusCode, Instant), reqwest::Error>>> {
    let url = format!("{}/ws/atomfeed/all/recent?wait=25", parent.url);
    children
        .map(|i| {
            let (http, url, tag) = (http.clone(), url.clone(), tag.to_owned());
            let token = parent.clinics[i].clone();
            tokio::spawn(async move {
                let answer = http
                    .get(&url)
                    .bearer_auth(&token)
                    .header("if-none-match", &tag)
                    .send()
                    .await?;
                let status = answer.status();
                answer.bytes().await?;
                Ok((status, Instant::now()))
            })
        })
        .collect()
}

/// What one write did to `n` waiting long-polls.
pub struct WakeRound {
    pub write: Duration,
    pub woken: usize,
    pub failed: usize,
    pub wake: Latencies,
    pub parent_cpu: f64,
}

/// Holds `n` long-polls, makes one write, and waits for every answer.
pub async fn wake_round(
    http: &Client,
    parent: &Parent,
    n: usize,
    id: &str,
) -> anyhow::Result<WakeRound> {
    let tag = recent_tag(http, parent).await?;
    let waiting = long_polls(http, parent, 0..n, &tag);
    until_held(http, parent, n).await?;
    let cpu = CpuWindow::start(parent.pid);
    let sent = Instant::now();
    let write = write(http, parent, id).await?;
    let mut round = WakeRound {
        write,
        woken: 0,
        failed: 0,
        wake: Latencies::default(),
        parent_cpu: 0.0,
    };
    for answer in futures::future::join_all(waiting).await {
        match answer? {
            Ok((StatusCode::OK, at)) => {
                round.woken += 1;
                round.wake.record(at.duration_since(sent));
            }
            _ => round.failed += 1,
        }
    }
    round.parent_cpu = cpu.finish().0;
    Ok(round)
}

/// `n` children long-polling in a loop (each asking again with the tag it got) while one
/// write a tenth of a second lands for `secs` seconds; the parent's cores, and the answers.
pub async fn sustained_writes(
    http: &Client,
    parent: &Parent,
    n: usize,
    secs: u64,
    prefix: &str,
) -> anyhow::Result<(f64, usize)> {
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("{}/ws/atomfeed/all/recent?wait=25", parent.url);
    let first_tag = recent_tag(http, parent).await?;
    let pollers: Vec<_> = (0..n)
        .map(|i| {
            let (http, url, stop) = (http.clone(), url.clone(), Arc::clone(&stop));
            let (token, mut tag) = (parent.clinics[i].clone(), first_tag.clone());
            tokio::spawn(async move {
                let mut answers = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let Ok(answer) = http
                        .get(&url)
                        .bearer_auth(&token)
                        .header("if-none-match", &tag)
                        .send()
                        .await
                    else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    if let Some(new) = answer.headers().get("etag").and_then(|v| v.to_str().ok()) {
                        tag = new.to_owned();
                    }
                    let _ = answer.bytes().await;
                    answers += 1;
                }
                answers
            })
        })
        .collect();
    if n > 0 {
        until_held(http, parent, n).await?;
    }
    let cpu = CpuWindow::start(parent.pid);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for w in 0..secs * 10 {
        tick.tick().await;
        write(http, parent, &format!("{prefix}-{w}")).await?;
    }
    let (_, cores) = cpu.finish();
    stop.store(true, Ordering::Relaxed);
    // One last write ends every wait still open.
    write(http, parent, &format!("{prefix}-end")).await?;
    let mut answers = 0;
    for poller in futures::future::join_all(pollers).await {
        answers += poller?;
    }
    Ok((cores, answers))
}

//! Stopping a node whatever its parent and its clients do: a parent that accepts connections
//! and never answers (the reader is stuck in a request of its first-sync walk), a parent that
//! answers (the node waits for news between runs), a parent serving garbage (the node backs
//! off), and a client that never finishes its request. A `sync-host run` process exits cleanly
//! within 5 s of SIGTERM, and an in-process node within 5 s of shutdown.

#[path = "support_faults/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use support::nodes::{child_of_url, stop_node};
use support::openmrs::OpenMrs;
use support::process::NodeProcess;

/// How long a node may take to stop.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// A parent that accepts every connection and never says a word. Counts connections.
struct Tarpit {
    base_url: String,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Tarpit {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        Ok(Self {
            base_url: format!("http://{address}/openmrs"),
            connections,
            task,
        })
    }

    /// Waits until the node has dialled in at least once.
    async fn wait_for_a_caller(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.connections.load(Ordering::SeqCst) == 0 {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "nobody called");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for Tarpit {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client of the node's API that sends half a request and then nothing.
async fn half_a_request(base_url: &str) -> anyhow::Result<TcpStream> {
    let address = base_url.trim_start_matches("http://");
    let mut socket = TcpStream::connect(address).await?;
    socket
        .write_all(
            b"POST /ws/fhir2/R4/Patient HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{",
        )
        .await?;
    Ok(socket)
}

/// Runs a child of `base_url` as a `sync-host run` process (pull every second, following the
/// parent), lets `settle` pass, sends SIGTERM and returns how long the process took to exit.
async fn time_to_stop(
    base_url: &str,
    settle: impl Future<Output = ()>,
) -> anyhow::Result<Duration> {
    let dir = tempfile::tempdir()?;
    let mut network = child_of_url(dir.path(), base_url, &["location"], "").await?;
    let child = stop_node(&mut network, "clinic").await?;
    let text = std::fs::read_to_string(&child.config_path)?;
    anyhow::ensure!(text.contains("interval_secs = 0"), "unexpected config");
    let text = text
        .replace("interval_secs = 0", "interval_secs = 1")
        .replace("follow = false", "follow = true");
    std::fs::write(&child.config_path, text)?;
    let log = child.dir.join("clinic.log");
    let process = NodeProcess::start(&child.config_path, &log).await?;
    settle.await;
    let _slow = half_a_request(&process.base_url).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    process.terminate().await?;
    let took = started.elapsed();
    let log_text = std::fs::read_to_string(&log)?;
    assert!(!log_text.contains("panicked"), "see {}", log.display());
    Ok(took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_node_stuck_on_a_silent_parent_and_a_slow_client() -> anyhow::Result<()> {
    let parent = Tarpit::start().await?;
    let took = time_to_stop(&parent.base_url, async {
        parent
            .wait_for_a_caller()
            .await
            .expect("the node calls its parent");
    })
    .await?;
    assert!(took < STOP_WITHIN, "the node took {took:?} to stop");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_node_waiting_for_news_or_backing_off() -> anyhow::Result<()> {
    // A parent that answers: the node syncs, then waits for news between runs.
    let server = OpenMrs::start().await?;
    server.publish(
        "location",
        support::pages::FeedEntry::json_links("tag:e1", Some("/ws/rest/v1/location/l1"), None),
    );
    let took = time_to_stop(&server.base_url, tokio::time::sleep(Duration::from_secs(2))).await?;
    assert!(took < STOP_WITHIN, "waiting for news: {took:?}");
    // A parent whose pages are garbage: every run fails and the node backs off.
    server.override_page("location", "recent", Some("<html>busy</html>".into()));
    let took = time_to_stop(&server.base_url, tokio::time::sleep(Duration::from_secs(3))).await?;
    assert!(took < STOP_WITHIN, "backing off: {took:?}");
    assert!(
        server.feed_requests("location").len() > 2,
        "the node did run"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_an_in_process_node_waiting_on_a_silent_parent() -> anyhow::Result<()> {
    let parent = Tarpit::start().await?;
    let dir = tempfile::tempdir()?;
    let network = child_of_url(dir.path(), &parent.base_url, &["location"], "").await?;
    let clinic = &network.node("clinic").expect("clinic").running.handle;
    let (trigger, _) = clinic.pull.clone().expect("pull runs");
    // The first sync walks to the oldest page: its very first request never returns.
    trigger.fire();
    parent.wait_for_a_caller().await?;
    let api = network.node("clinic").expect("clinic").running.base_url();
    let _slow = half_a_request(api).await?;
    let started = Instant::now();
    tokio::time::timeout(STOP_WITHIN, network.shutdown())
        .await
        .map_err(|_| anyhow::anyhow!("shutdown took longer than {STOP_WITHIN:?}"))?;
    assert!(started.elapsed() < STOP_WITHIN);
    Ok(())
}

//! The `sync-host` binary as an operator runs it: `sync-host demo` converges and says so, and
//! nodes started with `sync-host run --config` sync on their own schedule, resume from their
//! markers after a restart, and stop cleanly on SIGTERM.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestNet;
use sync_host::network::{NodeSpec, sample};

#[test]
fn demo_converges_and_says_so() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("sync-demo-").tempdir()?;
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_sync-host"))
        .arg("demo")
        .arg("--dir")
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .output()?;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("sync-host demo took {elapsed:.1?}");
    assert!(
        output.status.success(),
        "demo failed with {}:\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("Every node holds the same records"),
        "demo did not report convergence:\n{stdout}"
    );
    // The clinic is scoped to its district: it lacks district-b's patient of the national
    // node, and holds nothing outside its scope.
    let clinic = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("clinic-1") && line.contains("scope:"))
        .unwrap_or_default();
    assert!(
        clinic.contains("6 records") && clinic.contains("outside it: 0"),
        "{stdout}"
    );
    for node in ["national", "district-a", "district-b", "clinic-1"] {
        assert!(stdout.contains(node), "demo output does not mention {node}");
        assert!(
            dir.path().join(node).join("node.toml").is_file(),
            "demo wrote no config for {node}"
        );
    }
    assert!(
        stdout.contains("conflict"),
        "the demo's conflict is reported"
    );
    assert!(!stdout.contains("FAILED"), "{stdout}");
    assert!(elapsed < Duration::from_secs(120), "demo took {elapsed:?}");
    Ok(())
}

/// A `sync-host run` process, killed if the test ends without stopping it.
struct NodeProcess {
    name: &'static str,
    child: Child,
}

impl NodeProcess {
    fn start(name: &'static str, dir: &Path) -> anyhow::Result<Self> {
        let log = std::fs::File::create(dir.join("process.log"))?;
        let child = Command::new(env!("CARGO_BIN_EXE_sync-host"))
            .arg("run")
            .arg("--config")
            .arg(dir.join("node.toml"))
            .env("SYNC_HOST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        Ok(Self { name, child })
    }

    /// Sends SIGTERM and waits (up to 20 s) for the process to exit; true when it exited 0.
    fn terminate(&mut self) -> anyhow::Result<bool> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.success());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anyhow::bail!("{} did not stop within 20 s of SIGTERM", self.name)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Rewrites `node.toml` in `dir`: fixed `port`, and (when `schedule`) a one-second schedule
/// with a long-polling pull.
fn reconfigure(dir: &Path, port: u16, schedule: bool) -> anyhow::Result<()> {
    let path = dir.join("node.toml");
    let mut text = std::fs::read_to_string(&path)?;
    text = text.replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    if schedule {
        text = text
            .replace("interval_secs = 0", "interval_secs = 1")
            .replace("follow = false", "follow = true");
    }
    std::fs::write(&path, text)?;
    Ok(())
}

fn port_of(base_url: &str) -> anyhow::Result<u16> {
    let url = url::Url::parse(base_url)?;
    url.port()
        .ok_or_else(|| anyhow::anyhow!("{base_url} has no port"))
}

/// Polls `url` with `token` until it answers 200, for at most `limit`; returns the wait.
async fn wait_for_ok(url: &str, token: Option<&str>, limit: Duration) -> anyhow::Result<Duration> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    while started.elapsed() < limit {
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Ok(response) = request.send().await
            && response.status() == reqwest::StatusCode::OK
        {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{url} did not answer 200 within {limit:?}")
}

async fn put_patient(base: &str, token: &str, id: &str) -> anyhow::Result<()> {
    let body = sample::patient(id, "Neema", "Process", "1993-03-03");
    let response = reqwest::Client::new()
        .put(format!("{base}/ws/fhir2/R4/Patient/{id}"))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "PUT Patient/{id} on {base}: {}",
        response.status()
    );
    Ok(())
}

/// Runs `sync-host status` against a node until it reports no pull or push lag (10 s at most);
/// returns the lag fields of the last answer.
async fn wait_for_zero_lag(url: &str, token: &str) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    loop {
        let (url, token) = (url.to_string(), token.to_string());
        let output = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_sync-host"))
                .args(["status", "--json", "--url", &url, "--token", &token])
                .output()
        })
        .await??;
        anyhow::ensure!(
            output.status.success(),
            "sync-host status failed: {output:?}"
        );
        let status: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let lags = serde_json::json!({
            "pull_lag_entries": status["pull_lag_entries"],
            "push_lag_entries": status["push_lag_entries"],
        });
        if lags["pull_lag_entries"] == 0 && lags["push_lag_entries"] == 0 {
            return Ok(lags);
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(10),
            "lag stays at {lags}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_processes_sync_on_schedule_and_resume_after_restart() -> anyhow::Result<()> {
    let t = TestNet::start(vec![
        NodeSpec::new("root", None),
        NodeSpec::new("child", Some("root")),
    ])
    .await?;
    let before = sample::patient("before", "Neema", "InProcess", "1993-03-03");
    sample::put_fhir(t.store("root"), "Patient", "before", before).await?;
    t.settle().await?;
    let node = |id: &str| t.net.node(id).expect("started");
    let (root_url, child_url) = (
        node("root").running.base_url().to_string(),
        node("child").running.base_url().to_string(),
    );
    let (root_token, child_token) = (
        node("root").admin_token.clone(),
        node("child").admin_token.clone(),
    );
    let dir = t.stop_keeping_files().await;

    // Same ports, so the child's configured parent URL stays right.
    reconfigure(&dir.path().join("root"), port_of(&root_url)?, false)?;
    reconfigure(&dir.path().join("child"), port_of(&child_url)?, true)?;
    let mut root = NodeProcess::start("root", &dir.path().join("root"))?;
    let mut child = NodeProcess::start("child", &dir.path().join("child"))?;
    let up = Duration::from_secs(30);
    wait_for_ok(&format!("{root_url}/healthz"), None, up).await?;
    wait_for_ok(&format!("{child_url}/healthz"), None, up).await?;

    put_patient(&root_url, &root_token, "down").await?;
    let url = format!("{child_url}/ws/fhir2/R4/Patient/down");
    let down = wait_for_ok(&url, Some(&child_token), Duration::from_secs(30)).await?;
    put_patient(&child_url, &child_token, "up").await?;
    let url = format!("{root_url}/ws/fhir2/R4/Patient/up");
    let up_wait = wait_for_ok(&url, Some(&root_token), Duration::from_secs(30)).await?;
    println!(
        "root -> child (long-poll pull) took {down:?}; child -> root (1 s push schedule) took {up_wait:?}"
    );

    // The restarted child resumed from its marker: `before` was processed once, in process; a
    // lost marker would have left a second (skipped) record when the feed was read again.
    let audit: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{child_url}/admin/audit?resource=before&direction=pull"
        ))
        .bearer_auth(&child_token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let records = audit["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(records.len(), 1, "`before` must not be read again: {audit}");
    assert_eq!(records[0]["record"]["outcome"]["kind"], "applied");

    // The operator's view agrees: nothing left to pull or push.
    let lags = wait_for_zero_lag(&child_url, &child_token).await?;
    println!("child status after sync: {lags}");

    assert!(child.terminate()?, "child exits 0 on SIGTERM");
    assert!(root.terminate()?, "root exits 0 on SIGTERM");

    // Logs written to a file are plain text: colour codes are for terminals only.
    let log = std::fs::read_to_string(dir.path().join("child").join("process.log"))?;
    assert!(log.contains("node started"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a log file:\n{log}"
    );
    Ok(())
}

//! A node run as its own `sync-host run --config` process, as an operator runs it: started,
//! asked for its status over the admin API, killed with SIGKILL or stopped with SIGTERM.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running node process.
pub struct NodeProcess {
    child: Child,
    /// Where its API listens, from its start-up line.
    pub base_url: String,
}

impl NodeProcess {
    /// Starts `sync-host run --config <config>`, appending its log to `log`, and waits for
    /// the line that says where it listens.
    pub async fn start(config: &Path, log: &Path) -> anyhow::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_sync-host"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let wait_for_address = async {
            while let Some(line) = lines.next_line().await? {
                if let Some((_, url)) = line.split_once(" listening on ") {
                    return Ok(url.trim().to_string());
                }
            }
            anyhow::bail!("the node exited before it listened")
        };
        let base_url = tokio::time::timeout(Duration::from_secs(120), wait_for_address).await??;
        // Keep draining stdout so the node never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, base_url })
    }

    /// The node's `/admin/status` document.
    pub async fn status(&self, admin_token: &str) -> anyhow::Result<Value> {
        let response = reqwest::Client::new()
            .get(format!("{}/admin/status", self.base_url))
            .bearer_auth(admin_token)
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }

    /// Kills the process with SIGKILL, as a power cut would, and reaps it.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// Asks the process to stop with SIGTERM and waits for a clean exit.
    pub async fn terminate(mut self) -> anyhow::Result<()> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| anyhow::anyhow!("the node already exited"))?;
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await?;
        anyhow::ensure!(sent.success(), "kill -TERM {pid} failed");
        let exit = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await??;
        anyhow::ensure!(exit.success(), "the node exited with {exit}");
        Ok(())
    }
}

/// The sequence of the marker `owner` keeps, from a status document.
pub fn marker_sequence(status: &Value, owner: &str) -> Option<u64> {
    status["markers"]
        .as_array()?
        .iter()
        .find(|m| m["owner"] == owner)?
        .get("sequence")?
        .as_u64()
}

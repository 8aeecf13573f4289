//! A `sync-host run` (or `serve`) process as the benches drive it: started, its announced URL
//! read, its `/admin/status` polled.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncBufReadExt;
use tokio::process::Child;

/// Starts `program run --config config` logging at `log`, and waits for the URL it announces.
pub async fn start(
    program: OsString,
    log: &str,
    config: &Path,
    stderr: Stdio,
) -> anyhow::Result<(Child, String)> {
    start_command(tokio::process::Command::new(program), log, config, stderr).await
}

/// As [`start`], with `command` standing for the program (`ip netns exec ... sync-host`, say).
pub async fn start_command(
    command: tokio::process::Command,
    log: &str,
    config: &Path,
    stderr: Stdio,
) -> anyhow::Result<(Child, String)> {
    start_subcommand(command, "run", log, config, stderr).await
}

/// As [`start_command`], running `subcommand` (`run`, or `serve` for a store-only node).
pub async fn start_subcommand(
    mut command: tokio::process::Command,
    subcommand: &str,
    log: &str,
    config: &Path,
    stderr: Stdio,
) -> anyhow::Result<(Child, String)> {
    let mut child = command
        .args(["--log", log, subcommand, "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await?;
    let url = line
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(url.starts_with("http"), "no URL announced: {line:?}");
    Ok((child, url))
}

/// The node's status, or `None` while it does not answer yet.
pub async fn status(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    match http
        .get(format!("{url}/admin/status"))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(answer) => Ok(Some(answer.json().await?)),
        Err(_) => Ok(None),
    }
}

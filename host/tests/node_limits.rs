//! A node as an operator or a supervisor starts it: started with the common low soft limit on
//! open files it raises it to the hard limit and says so in its log; with its stdout closed
//! after start-up it still stops gracefully on SIGTERM; a flood of requests with a wrong token
//! is answered but logged only within a budget, so it cannot fill the disk.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use sync_host::network::toml_string;

const ADMIN_TOKEN: &str = "admin-0123456789abcdef0123456789abcdef";

fn write_config(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let quote = |name: &str| toml_string(&dir.join(name).display().to_string());
    std::fs::write(dir.join("admin.token"), format!("{ADMIN_TOKEN}\n"))?;
    let text = format!(
        "[node]\nid = \"n1\"\ndata_dir = {}\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n\
         [[server.clients]]\nname = \"operator\"\ntoken = {{ file = {} }}\nscopes = [\"admin\"]\n",
        quote("data"),
        quote("admin.token"),
    );
    let path = dir.join("node.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The soft and hard "Max open files" of process `pid`.
fn open_file_limits(pid: u32) -> anyhow::Result<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .ok_or_else(|| anyhow::anyhow!("no open-file limit in {limits}"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    let soft = fields.next().unwrap_or_default().to_string();
    let hard = fields.next().unwrap_or_default().to_string();
    Ok((soft, hard))
}

/// `sync-host --log warn serve --config config`, its stdout piped and its stderr to `stderr`.
fn serve(config: &Path, stderr: Stdio) -> std::io::Result<Child> {
    Command::new(env!("CARGO_BIN_EXE_sync-host"))
        .args(["--log", "warn", "serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
}

/// The first line the node printed: `node ... listening on URL` once it started.
fn first_line(node: &mut Child) -> anyhow::Result<String> {
    let stdout = node
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first)?;
    Ok(first)
}

#[test]
fn a_node_started_with_a_low_soft_limit_raises_it_to_the_hard_limit() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path())?;
    let log = dir.path().join("node.log");
    // The shell lowers the soft limit, as many systems set it, and becomes the node.
    let mut node = Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -Sn 256 && exec "$0" --log info serve --config "$1""#)
        .arg(env!("CARGO_BIN_EXE_sync-host"))
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let first = first_line(&mut node)?;
    let limits = open_file_limits(node.id());
    node.kill()?;
    node.wait()?;
    anyhow::ensure!(
        first.contains("listening on"),
        "node did not start: {first:?}"
    );
    let (soft, hard) = limits?;
    assert_eq!(soft, hard, "soft limit raised to the hard one");
    assert_ne!(soft, "256");
    let logged = std::fs::read_to_string(&log)?;
    assert!(logged.contains("open-file limit"), "{logged}");
    Ok(())
}

#[test]
fn a_node_whose_stdout_was_closed_still_stops_gracefully() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path())?;
    let mut node = serve(&config, Stdio::null())?;
    let first = first_line(&mut node)?;
    anyhow::ensure!(
        first.contains("listening on"),
        "node did not start: {first:?}"
    );
    // The reader is gone: the node's next line goes to a closed pipe.
    let term = Command::new("kill").arg(node.id().to_string()).status()?;
    anyhow::ensure!(term.success(), "kill failed");
    let status = node.wait()?;
    assert!(status.success(), "the node stopped with {status}");
    Ok(())
}

#[tokio::test]
async fn a_flood_of_wrong_tokens_is_answered_and_logged_within_a_budget() -> anyhow::Result<()> {
    const REQUESTS: usize = 300;
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path())?;
    let log = dir.path().join("node.log");
    let mut node = serve(&config, std::fs::File::create(&log)?.into())?;
    let first = first_line(&mut node)?;
    let url = first
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(url.starts_with("http"), "node did not start: {first:?}");
    let http = reqwest::Client::new();
    for n in 0..REQUESTS {
        let status = http
            .get(format!("{url}/ws/fhir2/R4/Patient/p{n}"))
            .bearer_auth(format!("wrong-token-{n:04}-0123456789abcdef0123456789"))
            .send()
            .await?
            .status();
        assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    }
    Command::new("kill").arg(node.id().to_string()).status()?;
    node.wait()?;
    let logged = std::fs::read_to_string(&log)?;
    let warnings = logged.matches("unknown bearer token").count();
    assert!(
        (1..=20).contains(&warnings),
        "{warnings} warnings for {REQUESTS} refusals:\n{logged}"
    );
    Ok(())
}

//! The operator commands as an operator runs them, against real nodes on loopback: `init`
//! and `init --root`, `sync-now --wait` (what ran, and a failure exit when it failed),
//! `status` with a lag that means work still to do, and readable tables with `--json` kept
//! for scripts.

mod common;

use std::process::Command;

use common::TestNet;
use sync_host::config::NodeConfig;
use sync_host::network::{NodeSpec, sample};

/// `sync-host <args> --url <url> --token <token>`: exit success and stdout.
async fn cli(url: &str, token: &str, args: &[&str]) -> anyhow::Result<(bool, String)> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sync-host"));
    // The node is named right after the command, before any subcommand (`audit list`).
    command
        .args(&args[..1])
        .args(["--url", url, "--token", token])
        .args(&args[1..]);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("$ sync-host {}\n{stdout}{stderr}", args.join(" "));
    Ok((output.status.success(), stdout))
}

#[test]
fn init_writes_a_child_or_a_root_config_and_a_fresh_token() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for (file, root) in [("child.toml", false), ("root.toml", true)] {
        let path = dir.path().join(file);
        let mut command = Command::new(env!("CARGO_BIN_EXE_sync-host"));
        command.arg("init").arg(&path);
        if root {
            command.arg("--root");
        }
        let output = command.output()?;
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let token = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("export SYNC_HOST_OPERATOR_TOKEN="))
            .unwrap_or_default();
        assert_eq!(token.len(), 64, "a 32-byte hex token is printed: {stdout}");
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{stdout}");
        let config = NodeConfig::load(&path)?;
        assert_eq!(config.parent.is_none(), root, "{file}");
        let text = std::fs::read_to_string(&path)?;
        assert!(
            text.contains("root node (no parent)"),
            "{file} says which sections to delete"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_now_waits_and_status_shows_only_real_work() -> anyhow::Result<()> {
    let mut t = TestNet::start(vec![
        NodeSpec::new("root", None),
        NodeSpec::new("child", Some("root")),
    ])
    .await?;
    let node = |t: &TestNet, id: &str| {
        let n = t.net.node(id).expect("started");
        (n.running.base_url().to_string(), n.admin_token.clone())
    };
    let (root_url, root_token) = node(&t, "root");
    let (child_url, child_token) = node(&t, "child");
    for n in 0..3 {
        let id = format!("p{n}");
        let body = sample::patient(&id, "Amina", "Waits", "1990-01-01");
        sample::put_fhir(t.store("root"), "Patient", &id, body).await?;
    }

    // The child pulls three patients; --wait returns after the run and says so.
    let (ok, out) = cli(&child_url, &child_token, &["sync-now", "pull", "--wait"]).await?;
    assert!(ok);
    assert!(out.contains("pull: pulled 3"), "{out}");
    assert!(out.contains("0 failed"), "{out}");

    // What the child just pulled sits in its own feed, but is no push work.
    let (ok, out) = cli(&child_url, &child_token, &["status", "--json"]).await?;
    assert!(ok);
    let status: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(status["push_lag_entries"], 0, "{status}");
    assert_eq!(status["pull_lag_entries"], 0, "{status}");
    // A local edit is.
    let body = sample::patient("local", "Amina", "Local", "1990-01-01");
    sample::put_fhir(t.store("child"), "Patient", "local", body).await?;
    let (_, out) = cli(&child_url, &child_token, &["status", "--json"]).await?;
    let status: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(status["push_lag_entries"], 1, "{status}");

    // The root pulls and pushes nothing: it has no lag at all.
    let (_, out) = cli(&root_url, &root_token, &["status", "--json"]).await?;
    let status: serde_json::Value = serde_json::from_str(&out)?;
    assert!(status["push_lag_entries"].is_null(), "{status}");
    assert!(status["pull_lag_entries"].is_null(), "{status}");

    // The readable forms.
    let (ok, out) = cli(&child_url, &child_token, &["sync-now", "push", "--wait"]).await?;
    assert!(ok && out.contains("push: pushed 1"), "{out}");
    let (_, out) = cli(&child_url, &child_token, &["status"]).await?;
    assert!(out.contains("parent  root"), "{out}");
    let push_row = out
        .lines()
        .find(|l| l.starts_with("push "))
        .unwrap_or_default();
    assert_eq!(push_row.split_whitespace().nth(2), Some("0"), "{out}");
    let (_, out) = cli(&root_url, &root_token, &["status"]).await?;
    assert!(out.contains("none (this node is a root)"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("pull       off")),
        "{out}"
    );
    let (_, out) = cli(&child_url, &child_token, &["audit", "list"]).await?;
    assert!(out.starts_with("ID "), "{out}");
    assert!(
        out.contains("Patient/p0") && out.contains("applied"),
        "{out}"
    );
    let args = ["audit", "list", "--direction", "pull", "--json"];
    let (_, out) = cli(&child_url, &child_token, &args).await?;
    let page: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(3), "{page}");
    let (_, out) = cli(&child_url, &child_token, &["conflicts", "list"]).await?;
    assert_eq!(out, "no conflicts\n");
    let (_, out) = cli(&child_url, &child_token, &["conflicts", "list", "--json"]).await?;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out)?,
        serde_json::json!([])
    );

    // With the parent gone the run fails: --wait says so and exits non-zero.
    let root = t.net.nodes.remove(0);
    root.running.shutdown().await;
    let (ok, out) = cli(&child_url, &child_token, &["sync-now", "pull", "--wait"]).await?;
    assert!(!ok, "a failed run is a failed command");
    assert!(out.contains("pull: FAILED"), "{out}");
    t.shutdown().await;
    Ok(())
}

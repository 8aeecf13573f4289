//! Security defaults of a node as an auditor would check them: weak client tokens stop the
//! node at start-up, `/metrics` and `/admin` answer a caller without the admin scope alike
//! (and say nothing about which admin paths exist), two plugin files with one name are
//! refused, and `serve` refuses the routes and filters `run` refuses.

use std::path::{Path, PathBuf};
use std::process::Command;

use sync_host::config::NodeConfig;
use sync_host::error_chain::chain;
use sync_host::network::toml_string;
use sync_host::node::RunningNode;

const ADMIN_TOKEN: &str = "admin-0123456789abcdef0123456789abcdef";
const READER_TOKEN: &str = "reader-0123456789abcdef0123456789abcdef";

/// A node configuration under `dir`: an operator and a read-only client, whose token is
/// `reader_token`, plus `extra` TOML.
fn write_config(dir: &Path, reader_token: &str, extra: &str) -> anyhow::Result<PathBuf> {
    let quote = |name: &str| toml_string(&dir.join(name).display().to_string());
    std::fs::write(dir.join("admin.token"), format!("{ADMIN_TOKEN}\n"))?;
    std::fs::write(dir.join("reader.token"), reader_token)?;
    let text = format!(
        "[node]\nid = \"n1\"\ndata_dir = {}\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n\
         [[server.clients]]\nname = \"operator\"\ntoken = {{ file = {} }}\nscopes = [\"admin\"]\n\n\
         [[server.clients]]\nname = \"reader\"\ntoken = {{ file = {} }}\nscopes = [\"read\"]\n\n{extra}",
        quote("data"),
        quote("admin.token"),
        quote("reader.token"),
    );
    let path = dir.join("node.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

async fn start(path: &Path) -> Result<RunningNode, String> {
    let config = NodeConfig::load(path).map_err(|e| chain(&e))?;
    RunningNode::start(config).await.map_err(|e| chain(&e))
}

/// Runs `sync-host <command> --config <path>`; returns its exit success and stderr.
fn run_binary(command: &str, path: &Path) -> anyhow::Result<(bool, String)> {
    let output = Command::new(env!("CARGO_BIN_EXE_sync-host"))
        .args([command, "--config"])
        .arg(path)
        .output()?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn weak_tokens_stop_the_node_naming_key_client_and_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for weak in ["reader-token", &format!(" {READER_TOKEN}")] {
        let path = write_config(dir.path(), weak, "")?;
        let message = start(&path).await.err().unwrap_or_default();
        for part in [
            "`server.clients[1].token`",
            "client `reader`",
            &path.display().to_string(),
            "sync-host token",
        ] {
            assert!(message.contains(part), "{part:?} missing from: {message}");
        }
    }
    let path = write_config(dir.path(), READER_TOKEN, "")?;
    let node = start(&path).await.map_err(anyhow::Error::msg)?;
    node.shutdown().await;
    Ok(())
}

#[test]
fn a_missing_secret_is_reported_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = write_config(dir.path(), READER_TOKEN, "")?;
    let text = std::fs::read_to_string(&path)?.replace(
        &format!(
            "file = {}",
            toml_string(&dir.path().join("reader.token").display().to_string())
        ),
        "env = \"SYNC_HOST_TEST_UNSET_READER_TOKEN\"",
    );
    std::fs::write(&path, text)?;
    let (ok, stderr) = run_binary("run", &path)?;
    assert!(!ok, "the node must not start: {stderr}");
    assert_eq!(
        stderr.matches("SYNC_HOST_TEST_UNSET_READER_TOKEN").count(),
        1,
        "the cause is printed once: {stderr}"
    );
    assert!(stderr.contains("`server.clients[1].token`"), "{stderr}");
    Ok(())
}

#[test]
fn a_bare_port_in_listen_names_the_key_and_the_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = write_config(dir.path(), READER_TOKEN, "")?;
    let text = std::fs::read_to_string(&path)?.replace("\"127.0.0.1:0\"", "\"18190\"");
    std::fs::write(&path, text)?;
    let (ok, stderr) = run_binary("serve", &path)?;
    assert!(!ok);
    assert!(stderr.contains("`server.listen`"), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("0.0.0.0:18190"), "{stderr}");
    assert_eq!(
        stderr.matches("invalid socket address").count(),
        0,
        "{stderr}"
    );
    Ok(())
}

#[test]
fn serve_refuses_unknown_plugins_as_run_does() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for extra in [
        "[[routes]]\nmatch = [\"location\"]\nclient = \"no-such-client\"\n",
        "[[filters]]\nplugin = \"no-such-filter\"\ndirection = \"pull\"\n",
    ] {
        let path = write_config(dir.path(), READER_TOKEN, extra)?;
        for command in ["serve", "run"] {
            let (ok, stderr) = run_binary(command, &path)?;
            assert!(!ok, "{command} must refuse {extra}");
            assert!(
                stderr.contains("no plugin named `no-such-"),
                "{command}: {stderr}"
            );
            assert!(stderr.contains(&path.display().to_string()), "{stderr}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn two_plugin_files_with_one_name_are_refused_naming_both() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    let (_, filter) = sync_host::default_plugins::default_plugins()
        .iter()
        .find(|(name, _)| *name == "filter-category")
        .ok_or_else(|| anyhow::anyhow!("no built-in filter-category"))?;
    std::fs::write(plugins.join("a.wasm"), filter)?;
    std::fs::write(plugins.join("b.wasm"), filter)?;
    let extra = format!(
        "[plugins]\ndir = {}\n",
        toml_string(&plugins.display().to_string())
    );
    let path = write_config(dir.path(), READER_TOKEN, &extra)?;
    let message = start(&path).await.err().unwrap_or_default();
    assert!(message.contains("a.wasm"), "{message}");
    assert!(message.contains("b.wasm"), "{message}");
    assert!(message.contains("both call themselves"), "{message}");
    Ok(())
}

/// The status, `WWW-Authenticate` header and error message of a GET with `token`.
async fn answer(url: &str, token: Option<&str>) -> anyhow::Result<(u16, bool, String)> {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let challenge = response.headers().contains_key("www-authenticate");
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    Ok((status, challenge, message.to_string()))
}

#[tokio::test]
async fn metrics_and_admin_answer_a_non_admin_alike() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = write_config(dir.path(), READER_TOKEN, "")?;
    let node = start(&path).await.map_err(anyhow::Error::msg)?;
    let base = node.base_url().to_string();
    for endpoint in [
        "/metrics",
        "/admin/status",
        "/admin/no-such-thing",
        "/admin",
    ] {
        let url = format!("{base}{endpoint}");
        let (status, challenge, message) = answer(&url, Some(READER_TOKEN)).await?;
        assert_eq!((status, challenge), (403, false), "{endpoint}: {message}");
        // A scraper needs only the `metrics` scope; everything else under /admin needs `admin`.
        let scope = if endpoint == "/metrics" {
            "`metrics` scope"
        } else {
            "`admin` scope"
        };
        assert!(message.contains(scope), "{endpoint}: {message}");
        let (status, challenge, message) = answer(&url, None).await?;
        assert_eq!((status, challenge), (401, true), "{endpoint}: {message}");
        assert!(!message.is_empty(), "{endpoint} has an error body");
    }
    let (status, _, message) =
        answer(&format!("{base}/admin/no-such-thing"), Some(ADMIN_TOKEN)).await?;
    assert_eq!(status, 404, "{message}");
    let metrics = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    assert_eq!(metrics.status().as_u16(), 200);
    assert!(metrics.text().await?.contains("sync_host_http_requests"));
    node.shutdown().await;
    Ok(())
}

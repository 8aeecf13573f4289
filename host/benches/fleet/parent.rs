//! The parent under load: a separate `sync-host serve` process holding N resources, with
//! thousands of child clients configured, each with its own token, as a national node would.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, ensure};
use sync_host::network::sample;

/// A running parent and the tokens that reach it.
pub struct Parent {
    pub url: String,
    pub pid: u32,
    /// A client that may write (the clinics' pushes, here one writer for all).
    pub writer: String,
    /// The operator, for `/metrics`.
    pub operator: String,
    /// One read token per configured child, `clinic-00000` first.
    pub clinics: Vec<String>,
    process: tokio::process::Child,
    _dir: tempfile::TempDir,
}

/// Long-polls the bench's parent may hold: above the 5,000 the bench opens, so every one of
/// them waits (the default, 4,096, answers the rest at once).
pub const LONG_POLL_MAX_WAITERS: usize = 10_000;

impl Parent {
    /// Writes the config and tokens of a parent with `clients` child clients, imports
    /// `resources` FHIR resources into its store with `store import`, and starts it.
    /// `api_toml` is added to the parent's `[server.api]`.
    pub async fn start(
        program: &Path,
        resources: usize,
        clients: usize,
        api_toml: &str,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens)?;
        let token_file = |name: &str| -> anyhow::Result<(String, PathBuf)> {
            let token = sync_host::config::token::generate();
            let path = tokens.join(name);
            std::fs::write(&path, &token)?;
            Ok((token, path))
        };
        let (writer, writer_file) = token_file("writer")?;
        let (operator, operator_file) = token_file("operator")?;
        let mut config = format!(
            "[node]\nid = \"national\"\ndata_dir = {}\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n\
             [server.api]\nlong_poll_max_waiters = {LONG_POLL_MAX_WAITERS}\n{api_toml}\n",
            quoted(&dir.path().join("data"))
        );
        client_entry(&mut config, "operator", &operator_file, "\"admin\"", false);
        client_entry(
            &mut config,
            "writer",
            &writer_file,
            "\"read\", \"write\"",
            false,
        );
        let mut clinics = Vec::with_capacity(clients);
        for n in 0..clients {
            let name = format!("clinic-{n:05}");
            let (token, path) = token_file(&name)?;
            client_entry(&mut config, &name, &path, "\"read\", \"write\"", true);
            clinics.push(token);
        }
        config.push_str("[sync.pull]\nenabled = false\n\n[sync.push]\nenabled = false\n");
        let config_path = dir.path().join("parent.toml");
        std::fs::write(&config_path, config)?;
        let ndjson = dir.path().join("resources.ndjson");
        write_resources(&ndjson, resources)?;
        import(program, &config_path, &ndjson).await?;
        let (process, url) = super::child::start_subcommand(
            tokio::process::Command::new(program),
            "serve",
            "warn",
            &config_path,
            Stdio::inherit(),
        )
        .await?;
        let pid = process.id().context("the parent has no pid")?;
        Ok(Parent {
            url,
            pid,
            writer,
            operator,
            clinics,
            process,
            _dir: dir,
        })
    }

    /// Stops the parent with SIGTERM, as an operator would, and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let status = std::process::Command::new("kill")
            .arg(self.pid.to_string())
            .status()?;
        ensure!(status.success(), "kill {} failed", self.pid);
        self.process.wait().await?;
        Ok(())
    }
}

fn client_entry(config: &mut String, name: &str, token: &Path, scopes: &str, child: bool) {
    let _ = writeln!(
        config,
        "[[server.clients]]\nname = \"{name}\"\ntoken = {{ file = {} }}\nscopes = [{scopes}]\nchild_node = {child}\n",
        quoted(token)
    );
}

/// A TOML basic string of `path` (temporary directories hold no control characters).
fn quoted(path: &Path) -> String {
    let text = path.display().to_string();
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `n` FHIR Patients of about 1.7 KB as NDJSON.
fn write_resources(path: &Path, n: usize) -> anyhow::Result<()> {
    let note = "clinical note ".repeat(120);
    let mut text = String::with_capacity(n * 1800);
    for i in 0..n {
        text.push_str(&sample::patient(
            &format!("p-{i}"),
            &note[..1500],
            "Otieno",
            "1984-03-02",
        ));
        text.push('\n');
    }
    std::fs::write(path, text)?;
    Ok(())
}

async fn import(program: &Path, config: &Path, ndjson: &Path) -> anyhow::Result<()> {
    let output = tokio::process::Command::new(program)
        .args(["--log", "warn", "store", "import", "--config"])
        .arg(config)
        .arg(ndjson)
        .output()
        .await?;
    ensure!(
        output.status.success(),
        "store import failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

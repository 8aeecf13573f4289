//! The simulated tree as real `sync-host run` processes: configurations written by the
//! in-process builder, then every node spawned from its file, edited through its FHIR API,
//! synced with `sync-now` over the admin API, killed with SIGKILL and restarted; the links
//! stay in this process so a restarted parent is reached at the same address.

use std::time::{Duration, Instant};

use serde_json::Value;
use sync_host_store::hash::content_hash;

use crate::process::NodeProcess;
use crate::sim::ledger::{DELETED, Ledger};
use crate::sim::schedule::{Edit, NODES, Op, PARENT, POOL, Schedule};
use crate::sim::world::{NodeFiles, World, write_secret};

/// How long one triggered run may take before the tree is declared stuck.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Running node processes over the files of a [`World`].
pub struct ProcessTree {
    pub world: World,
    pub files: Vec<NodeFiles>,
    pub processes: Vec<Option<NodeProcess>>,
    pub user_token: String,
    pub ledger: Ledger,
    client: reqwest::Client,
}

impl ProcessTree {
    /// Writes the tree of `schedule`, gives each node a `user` client with read and write
    /// scopes, and starts every node as a process.
    pub async fn start(schedule: &Schedule) -> anyhow::Result<Self> {
        let mut world = World::start(schedule).await?;
        let files = world.stop_nodes().await;
        let user_token = sync_host::node::clients::internal_token();
        for f in &files {
            let token_file = f.dir.join("user.token");
            write_secret(&token_file, &user_token)?;
            let text = std::fs::read_to_string(&f.config_path)?;
            let client = format!(
                "[[server.clients]]\nname = \"user\"\ntoken = {{ file = {} }}\nscopes = [\"read\", \"write\"]\n\n[sync]\n",
                sync_host::network::toml_string(&token_file.display().to_string())
            );
            anyhow::ensure!(
                text.contains("\n[sync]\n"),
                "no [sync] in {}",
                f.config_path.display()
            );
            std::fs::write(
                &f.config_path,
                text.replacen("\n[sync]\n", &format!("\n{client}"), 1),
            )?;
        }
        let mut tree = Self {
            world,
            processes: files.iter().map(|_| None).collect(),
            files,
            user_token,
            ledger: Ledger::new(NODES.len()),
            client: reqwest::Client::new(),
        };
        for node in 0..NODES.len() {
            tree.launch(node).await?;
        }
        Ok(tree)
    }

    /// Starts node `i`'s process and points its children's links at it.
    async fn launch(&mut self, i: usize) -> anyhow::Result<()> {
        let log = self.files[i].dir.join("process.log");
        let process = NodeProcess::start(&self.files[i].config_path, &log).await?;
        for (child, parent) in PARENT.iter().enumerate() {
            if *parent == Some(i) {
                self.world.proxy(child).set_upstream(&process.base_url);
            }
        }
        self.processes[i] = Some(process);
        Ok(())
    }

    fn url(&self, i: usize) -> anyhow::Result<&str> {
        match &self.processes[i] {
            Some(p) => Ok(&p.base_url),
            None => anyhow::bail!("{} is not running", NODES[i]),
        }
    }

    /// Kills node `i` with SIGKILL and starts it again.
    pub async fn kill_and_restart(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(process) = self.processes[i].take() {
            process.kill().await?;
        }
        self.launch(i).await
    }

    /// Asks node `i` to run `direction` now, without waiting for it.
    pub async fn trigger(&self, i: usize, direction: &str) -> anyhow::Result<()> {
        self.client
            .post(format!(
                "{}/admin/sync-now?direction={direction}",
                self.url(i)?
            ))
            .bearer_auth(&self.files[i].admin_token)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Node `i`'s `/admin/status`.
    pub async fn status(&self, i: usize) -> anyhow::Result<Value> {
        let answer = self
            .client
            .get(format!("{}/admin/status", self.url(i)?))
            .bearer_auth(&self.files[i].admin_token)
            .send()
            .await?
            .error_for_status()?;
        Ok(answer.json().await?)
    }

    /// Runs `direction` of node `i` and waits until a run has finished since; returns the
    /// events that direction processed meanwhile.
    pub async fn sync_now(&self, i: usize, direction: &str) -> anyhow::Result<u64> {
        let before = self.status(i).await?;
        let runs = before[direction]["runs"].as_u64().unwrap_or(0);
        let events = before[direction]["events"].as_u64().unwrap_or(0);
        self.trigger(i, direction).await?;
        let started = Instant::now();
        loop {
            let now = self.status(i).await?;
            if now[direction]["runs"].as_u64().unwrap_or(0) > runs {
                return Ok(now[direction]["events"].as_u64().unwrap_or(0) - events);
            }
            anyhow::ensure!(
                started.elapsed() < RUN_LIMIT,
                "{} {direction} did not finish a run",
                NODES[i]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One edit through node `edit.node`'s FHIR API, guarded by the version read.
    pub async fn edit(&mut self, at: usize, edit: Edit) -> anyhow::Result<()> {
        let (resource_type, id) = POOL[edit.resource];
        let url = format!("{}/ws/fhir2/R4/{resource_type}/{id}", self.url(edit.node)?);
        for _ in 0..5 {
            let current = self
                .client
                .get(&url)
                .bearer_auth(&self.user_token)
                .send()
                .await?;
            let etag = current.headers().get("etag").cloned();
            let status = current.status().as_u16();
            let live = match status {
                200 => Some(current.text().await?),
                404 | 410 => None,
                other => anyhow::bail!("GET {url} answered {other}"),
            };
            let pre = match (&live, status) {
                (Some(body), _) => Some(content_hash(body)?),
                (None, 410) => Some(DELETED.to_string()),
                (None, _) => None,
            };
            self.ledger.share_all();
            let body = match edit.op {
                Op::Put => Some(self.ledger.new_body(resource_type, id)),
                Op::Delete if live.is_none() => return Ok(()),
                Op::Delete => None,
                Op::Undo => match self.ledger.undo_body(edit.node, edit.resource) {
                    Some(body) => body,
                    None => return Ok(()),
                },
            };
            if body.is_none() && live.is_none() {
                return Ok(());
            }
            let hash = match &body {
                Some(text) => content_hash(text)?,
                None => DELETED.to_string(),
            };
            if pre.as_deref() == Some(hash.as_str()) {
                return Ok(());
            }
            let mut request = match &body {
                Some(text) => self
                    .client
                    .put(&url)
                    .header("content-type", "application/fhir+json")
                    .body(text.clone()),
                None => self.client.delete(&url),
            };
            // Guarded by what was read, a create included: a copy a sync run wrote after the
            // read must refuse the write, or the ledger would record the wrong predecessor.
            request = match etag {
                Some(etag) => request.header("if-match", etag),
                None => request.header("if-none-match", "*"),
            };
            let answer = request.bearer_auth(&self.user_token).send().await?;
            match answer.status().as_u16() {
                200 | 201 | 204 => {
                    self.ledger
                        .record(at, edit.node, edit.resource, hash, pre, live);
                    return Ok(());
                }
                412 => continue,
                other => anyhow::bail!("{edit} answered {other}: {}", answer.text().await?),
            }
        }
        anyhow::bail!("{edit}: the resource kept changing under the edit")
    }

    /// Resolves every open conflict through the admin API, keeping a side drawn from `pick`.
    pub async fn resolve_open(&self, pick: &mut impl FnMut() -> bool) -> anyhow::Result<usize> {
        let mut resolved = 0;
        for node in 1..NODES.len() {
            let list: Vec<Value> = self
                .client
                .get(format!("{}/admin/conflicts?status=open", self.url(node)?))
                .bearer_auth(&self.files[node].admin_token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            for conflict in list {
                let side = if pick() { "parent" } else { "child" };
                let answer = self
                    .client
                    .post(format!(
                        "{}/admin/conflicts/{}/resolve",
                        self.url(node)?,
                        conflict["id"]
                    ))
                    .bearer_auth(&self.files[node].admin_token)
                    .json(&serde_json::json!({ "side": side, "by": "sim-operator" }))
                    .send()
                    .await?;
                resolved += usize::from(answer.status().is_success());
            }
        }
        Ok(resolved)
    }

    /// Stops every process with SIGTERM and opens the nodes in this process for the checks.
    pub async fn into_world(mut self) -> anyhow::Result<(World, Ledger)> {
        for process in self.processes.iter_mut().rev().filter_map(Option::take) {
            process.terminate().await?;
        }
        let mut world = self.world;
        world.start_again(self.files).await?;
        Ok((world, self.ledger))
    }
}

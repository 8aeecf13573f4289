//! Operator commands that talk to a running node's `/admin` API: status, sync-now, audit,
//! retry and conflicts.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::Value;

use super::{AdminTarget, show};

/// `sync-host audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Records newest first, filtered, as a table.
    List {
        #[command(flatten)]
        filters: AuditFilters,
        /// Print the node's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One record by its id (the `key` a list shows).
    Show { id: String },
    /// Every matching record as JSON lines, oldest first.
    Export(AuditFilters),
}

/// Filters shared by `audit list` and `audit export`.
#[derive(Debug, clap::Args)]
pub struct AuditFilters {
    /// RFC 3339 time; records at or after it.
    #[arg(long)]
    since: Option<String>,
    /// RFC 3339 time; records before it.
    #[arg(long)]
    until: Option<String>,
    /// applied, unchanged, filtered, conflict, failed, settled, skipped.
    #[arg(long)]
    outcome: Option<String>,
    /// pull or push.
    #[arg(long)]
    direction: Option<String>,
    #[arg(long)]
    category: Option<String>,
    /// Resource type.
    #[arg(long = "type")]
    resource_type: Option<String>,
    /// Resource id.
    #[arg(long)]
    resource: Option<String>,
    #[arg(long)]
    node: Option<String>,
    /// Page cursor from a previous list.
    #[arg(long)]
    before: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

impl AuditFilters {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        let mut add = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        };
        add("since", &self.since);
        add("until", &self.until);
        add("outcome", &self.outcome);
        add("direction", &self.direction);
        add("category", &self.category);
        add("type", &self.resource_type);
        add("resource", &self.resource);
        add("node", &self.node);
        add("before", &self.before);
        q.push(("limit", self.limit.to_string()));
        q
    }
}

/// `sync-host conflicts ...`
#[derive(Debug, Subcommand)]
pub enum ConflictsCommand {
    /// Conflicts, open ones by default.
    List {
        /// open, resolved or all.
        #[arg(long, default_value = "open")]
        status: String,
        /// Print the node's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One conflict with both versions.
    Show { id: u64 },
    /// Resolve by keeping a side, or by writing a merged body from a file.
    Resolve {
        id: u64,
        /// `parent` or `child`.
        #[arg(long, conflicts_with = "merged")]
        keep: Option<String>,
        /// A file holding the merged JSON body.
        #[arg(long)]
        merged: Option<std::path::PathBuf>,
    },
}

struct Admin {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Admin {
    fn new(target: &AdminTarget) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                // Above the node's longest `sync-now --wait`.
                .timeout(std::time::Duration::from_secs(630))
                .build()?,
            url: target.url.trim_end_matches('/').to_string(),
            token: target.token.clone(),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .context("the node did not answer")?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            bail!("the node answered {status}: {body}");
        }
        Ok(response)
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let request = self.client.get(format!("{}{path}", self.url)).query(query);
        Ok(self.send(request).await?.json().await?)
    }

    async fn post(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.client.post(format!("{}{path}", self.url)).query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Ok(self.send(request).await?.json().await?)
    }
}

fn print_json(value: &Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

/// `sync-host status [--tree]`.
pub async fn status(target: &AdminTarget, json: bool, tree: bool) -> anyhow::Result<ExitCode> {
    let path = if tree {
        "/admin/network"
    } else {
        "/admin/status"
    };
    let answer = Admin::new(target)?.get(path, &[]).await?;
    if json {
        return print_json(&answer);
    }
    if tree {
        print!("{}", super::show_network::network(&answer)?);
    } else {
        print!("{}", show::status(&answer));
    }
    Ok(ExitCode::SUCCESS)
}

/// `sync-host sync-now [pull|push] [--wait]`: with `--wait`, what the runs did, and a
/// failure exit when a run failed or left failed events.
pub async fn sync_now(
    target: &AdminTarget,
    direction: Option<String>,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    let mut query: Vec<(&str, String)> = direction.into_iter().map(|d| ("direction", d)).collect();
    if wait {
        query.push(("wait", "true".into()));
    }
    let answer = Admin::new(target)?
        .post("/admin/sync-now", &query, None)
        .await?;
    if !wait {
        let names: Vec<String> = answer["triggered"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        println!("triggered: {}", names.join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    let (text, ok) = show::sync_runs(&answer);
    print!("{text}");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `sync-host audit ...`.
pub async fn audit(target: &AdminTarget, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let admin = Admin::new(target)?;
    match command {
        AuditCommand::List { filters, json } => {
            let page = admin.get("/admin/audit", &filters.query()).await?;
            if json {
                return print_json(&page);
            }
            print!("{}", show::audit(&page)?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Show { id } => {
            print_json(&admin.get(&format!("/admin/audit/{id}"), &[]).await?)
        }
        AuditCommand::Export(filters) => {
            let request = admin
                .client
                .get(format!("{}/admin/audit/export", admin.url))
                .query(&filters.query());
            let text = admin.send(request).await?.text().await?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `sync-host retry ID | --dead`.
pub async fn retry(target: &AdminTarget, id: Option<u64>, dead: bool) -> anyhow::Result<ExitCode> {
    let query = match (id, dead) {
        (_, true) => vec![("dead", "true".to_string())],
        (Some(id), false) => vec![("id", id.to_string())],
        (None, false) => bail!("give a dead-letter id, or --dead to retry all of them"),
    };
    print_json(
        &Admin::new(target)?
            .post("/admin/retry", &query, None)
            .await?,
    )
}

/// `sync-host conflicts ...`.
pub async fn conflicts(
    target: &AdminTarget,
    command: ConflictsCommand,
) -> anyhow::Result<ExitCode> {
    let admin = Admin::new(target)?;
    match command {
        ConflictsCommand::List { status, json } => {
            let list = admin.get("/admin/conflicts", &[("status", status)]).await?;
            if json {
                return print_json(&list);
            }
            print!("{}", show::conflicts(&list)?);
            Ok(ExitCode::SUCCESS)
        }
        ConflictsCommand::Show { id } => {
            print_json(&admin.get(&format!("/admin/conflicts/{id}"), &[]).await?)
        }
        ConflictsCommand::Resolve { id, keep, merged } => {
            // The merged body travels as the operator wrote it: parsing it into a JSON value
            // would round decimals (`72.50`) and reorder keys.
            let request = match (keep, merged) {
                (Some(side), None) => serde_json::json!({ "side": side }).to_string(),
                (None, Some(file)) => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("cannot read {}", file.display()))?;
                    let body: &serde_json::value::RawValue = serde_json::from_str(text.trim())
                        .with_context(|| format!("{} is not JSON", file.display()))?;
                    format!(r#"{{"body":{}}}"#, body.get())
                }
                _ => bail!("give --keep parent|child or --merged FILE"),
            };
            let url = format!("{}/admin/conflicts/{id}/resolve", admin.url);
            let response = admin
                .send(
                    admin
                        .client
                        .post(url)
                        .header("content-type", "application/json")
                        .body(request),
                )
                .await?;
            print_json(&response.json().await?)
        }
    }
}

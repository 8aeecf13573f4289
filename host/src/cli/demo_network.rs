//! The demo's network steps, done as an operator at the national office would: wait until
//! every node's report has reached the national node, resolve a clinic's conflict from there
//! (the decision travels down in the answers to the clinic's reports), and print the tree.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sync_host::network::{NetNode, Network};

/// The root of the demo's tree.
const ROOT: &str = "national";

/// How long the demo waits for reports to travel up (or a decision down) the tree.
const PATIENCE: Duration = Duration::from_secs(60);

fn root(network: &Network) -> anyhow::Result<&NetNode> {
    network.node(ROOT).context("the demo has a national node")
}

async fn admin_get(node: &NetNode, path: &str) -> anyhow::Result<Value> {
    let url = format!("{}{path}", node.running.base_url());
    Ok(reqwest::Client::new()
        .get(&url)
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("GET {url}"))?
        .json()
        .await?)
}

/// Polls the national network view until `done` holds.
async fn view_until(network: &Network, done: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    let national = root(network)?;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let view = admin_get(national, "/admin/network").await?;
        if done(&view) {
            return Ok(view);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the national network view did not get there in {PATIENCE:?}: {view}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn rows(view: &Value) -> impl Iterator<Item = &Value> {
    view["nodes"].as_array().into_iter().flatten()
}

/// Resolves, from the national node, every conflict the other nodes have reported, keeping
/// the child's version; returns how many.
pub async fn resolve_from_national(network: &Network) -> anyhow::Result<usize> {
    let expected: Vec<(String, usize)> = network
        .nodes
        .iter()
        .filter(|n| n.spec.id != ROOT)
        .map(|n| {
            let open = n
                .running
                .handle
                .state
                .counts(sync_host::audit::Timestamp::now());
            (n.spec.id.clone(), open.map_or(0, |c| c.open_conflicts))
        })
        .filter(|(_, open)| *open > 0)
        .collect();
    view_until(network, |view| {
        expected.iter().all(|(node, open)| {
            rows(view).any(|r| {
                r["node"] == node.as_str() && r["counts"]["open_conflicts"] == *open as u64
            })
        })
    })
    .await?;
    let national = root(network)?;
    let mut resolved = 0;
    for (node, _) in &expected {
        let detail = admin_get(national, &format!("/admin/network/{node}")).await?;
        for conflict in detail["report"]["conflicts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let id = conflict["id"]
                .as_u64()
                .context("a reported conflict has an id")?;
            println!(
                "   national sees conflict {id} on {node}: {} (parent version {}, child version {})",
                conflict["resource"].as_str().unwrap_or("?"),
                conflict["parent"]["version"].as_str().unwrap_or("?"),
                conflict["child"]["version"].as_str().unwrap_or("?"),
            );
            decide(national, node, id).await?;
            let outcome = outcome_of(national, node, id).await?;
            println!("   {node} answered through its next report: {outcome}");
            resolved += 1;
        }
    }
    Ok(resolved)
}

async fn decide(national: &NetNode, node: &str, id: u64) -> anyhow::Result<()> {
    let url = format!(
        "{}/admin/network/{node}/conflicts/{id}/resolve",
        national.running.base_url()
    );
    let answer = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&national.admin_token)
        .json(&json!({ "side": "child", "by": "demo-operator" }))
        .send()
        .await?;
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {url} answered {status}: {body}");
    }
    println!(
        "   resolved at national by demo-operator (keep the child's version): decision {} waits for {node}'s next report",
        body["decision"]["id"].as_str().unwrap_or("?")
    );
    Ok(())
}

async fn outcome_of(national: &NetNode, node: &str, id: u64) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let detail = admin_get(national, &format!("/admin/network/{node}")).await?;
        let outcome = detail["decisions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["decision"]["conflict_id"] == id)
            .map(|d| d["outcome"].clone())
            .unwrap_or(Value::Null);
        if !outcome.is_null() {
            if outcome["applied"] != true {
                bail!("{node} refused the decision: {outcome}");
            }
            return Ok(outcome["message"].as_str().unwrap_or("applied").to_string());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no outcome from {node} in {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Prints the tree as the national node sees it, once every node's latest report shows no
/// open conflict.
pub async fn print_network(network: &Network) -> anyhow::Result<()> {
    let count = network.nodes.len();
    let view = view_until(network, |view| {
        rows(view)
            .filter(|r| r["health"] == "ok" && r["counts"]["open_conflicts"] == 0)
            .count()
            == count
    })
    .await?;
    println!(
        "\nThe tree as the national node sees it (GET /admin/network, `sync-host status --tree`):"
    );
    print!("{}", super::show_network::network(&view)?);
    Ok(())
}

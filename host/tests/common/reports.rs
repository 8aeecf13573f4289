//! A reporting tree for the report, network and dashboard tests: `national` above
//! `district`, with `clinic-1` and `clinic-2` below it (`clinic-2` never reports), and helpers
//! for the admin API and for a clinic's parked conflict.

use std::time::Duration;

use serde_json::Value;
use sync_host::network::NodeSpec;

use super::TestNet;
use super::conflict::put;

/// A national node, a district, and two clinics below it; `clinic-2` never reports.
pub async fn tree() -> anyhow::Result<TestNet> {
    let mut specs = vec![
        NodeSpec::new("national", None),
        NodeSpec::new("district", Some("national")),
        NodeSpec::new("clinic-1", Some("district")),
        NodeSpec::new("clinic-2", Some("district")),
    ];
    for spec in &mut specs[..3] {
        spec.report_interval_secs = Some(1);
    }
    TestNet::start(specs).await
}

pub async fn get(t: &TestNet, node: &str, path: &str) -> anyhow::Result<Value> {
    let node = t.net.node(node).expect("node is started");
    let answer = reqwest::Client::new()
        .get(format!("{}{path}", node.running.base_url()))
        .bearer_auth(&node.admin_token)
        .send()
        .await?
        .error_for_status()?;
    Ok(answer.json().await?)
}

/// The row of `node` in `view`.
pub fn row<'a>(view: &'a Value, node: &str) -> &'a Value {
    view["nodes"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["node"] == node))
        .unwrap_or(&Value::Null)
}

/// Polls the national network view until `done` holds, for at most 30 s.
pub async fn national_view_until(
    t: &TestNet,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let view = get(t, "national", "/admin/network").await?;
        if done(&view) {
            return Ok(view);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the national view never got there: {view:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Edits `id` at the district and at clinic-1 so that clinic-1 parks a conflict; returns once
/// the national view shows it, with the conflict's id at clinic-1.
pub async fn clinic_conflict(t: &TestNet, id: &str) -> anyhow::Result<u64> {
    put(t.store("district"), id, "Original").await?;
    t.settle().await?;
    put(t.store("district"), id, "DistrictEdit").await?;
    tokio::time::sleep(Duration::from_millis(30)).await;
    put(t.store("clinic-1"), id, "ClinicEdit").await?;
    t.settle().await?;
    national_view_until(t, |v| row(v, "clinic-1")["counts"]["open_conflicts"] == 1).await?;
    let detail = get(t, "national", "/admin/network/clinic-1").await?;
    detail["report"]["conflicts"][0]["id"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no conflict id in {detail:#}"))
}

pub async fn post(
    t: &TestNet,
    node: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let node = t.net.node(node).expect("node is started");
    let answer = reqwest::Client::new()
        .post(format!("{}{path}", node.running.base_url()))
        .bearer_auth(&node.admin_token)
        .json(&body)
        .send()
        .await?;
    let status = answer.status().as_u16();
    Ok((status, answer.json().await.unwrap_or(Value::Null)))
}

//! Status reports up a real three-level tree on loopback: the root's network view lists every
//! node with its lag and counts, a clinic's parked conflict is visible at the root without
//! either body, a configured child that never reported is listed as such, and a child cannot
//! report for a node that is not below it.

mod common;

use std::time::Duration;

use common::conflict::put;
use common::reports::{clinic_conflict, get, national_view_until, post, row, tree};
use serde_json::{Value, json};
use sync_host::network::parent_token_file;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_sees_every_node_and_a_clinics_conflict() -> anyhow::Result<()> {
    let t = tree().await?;
    put(t.store("district"), "rep-1", "Original").await?;
    t.settle().await?;
    put(t.store("district"), "rep-1", "DistrictEdit").await?;
    tokio::time::sleep(Duration::from_millis(30)).await;
    put(t.store("clinic-1"), "rep-1", "ClinicEdit").await?;
    t.settle().await?;
    assert_eq!(
        t.conflicts("clinic-1").len(),
        1,
        "the manual policy parks it"
    );

    let view =
        national_view_until(&t, |v| row(v, "clinic-1")["counts"]["open_conflicts"] == 1).await?;
    let shape: Vec<(String, u64, String)> = view["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["node"].as_str().unwrap_or_default().to_string(),
                r["depth"].as_u64().unwrap_or(99),
                r["health"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected = [
        ("national", 0, "ok"),
        ("district", 1, "ok"),
        ("clinic-1", 2, "ok"),
        ("clinic-2", 2, "never-reported"),
    ]
    .map(|(n, d, h)| (n.to_string(), d, h.to_string()));
    assert_eq!(shape, expected, "{view:#}");
    for node in ["district", "clinic-1"] {
        let r = row(&view, node);
        assert_eq!(r["pull_lag"], 0, "{node}: {r}");
        assert_eq!(r["push_lag"], 0, "{node}: {r}");
        assert!(r["last_success"].is_string() || r["last_success"].is_null());
        assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
    }

    // The same view as an operator's table.
    let national = t.net.node("national").expect("started");
    let url = national.running.base_url().to_string();
    let token = national.admin_token.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sync-host"))
            .args(["status", "--url", &url, "--token", &token, "--tree"])
            .output()
    })
    .await??;
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NODE") && lines[0].contains("HEALTH"),
        "{table}"
    );
    assert!(lines[1].starts_with("national "), "{table}");
    assert!(lines[2].starts_with("  district "), "{table}");
    assert!(lines[3].starts_with("    clinic-1 "), "{table}");
    assert!(
        lines[4].starts_with("    clinic-2  never reported"),
        "{table}"
    );

    let detail = get(&t, "national", "/admin/network/clinic-1").await?;
    let conflict = &detail["report"]["conflicts"][0];
    assert_eq!(conflict["resource"], "Patient/rep-1", "{detail:#}");
    assert_ne!(
        conflict["parent"]["content_hash"],
        conflict["child"]["content_hash"]
    );
    let text = detail.to_string();
    for body_text in ["DistrictEdit", "ClinicEdit", "Imani"] {
        assert!(!text.contains(body_text), "a report carried a body: {text}");
    }
    let plugins = detail["report"]["plugins"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        plugins
            .iter()
            .any(|p| p["name"] == "fhir" && p["digest"].as_str().is_some_and(|d| d.len() == 64)),
        "{plugins:?}"
    );
    let unknown = reqwest::Client::new()
        .get(format!(
            "{}/admin/network/nowhere",
            t.net.node("national").expect("started").running.base_url()
        ))
        .bearer_auth(&t.net.node("national").expect("started").admin_token)
        .send()
        .await?;
    assert_eq!(unknown.status(), 404);
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_cannot_report_for_a_node_not_below_it() -> anyhow::Result<()> {
    let t = tree().await?;
    let district = t.net.node("district").expect("started");
    let clinic = t.net.node("clinic-1").expect("started");
    let token = std::fs::read_to_string(parent_token_file(&clinic.dir))?;
    let url = format!("{}/sync/report", district.running.base_url());
    let client = reqwest::Client::new();
    let report = |node: &str, parent: &str| {
        json!({
            "node": node, "parent": parent, "version": "0", "generated_at": "2026-01-01T00:00:00Z",
            "plugins": [], "pull": null, "push": null,
            "counts": { "open_conflicts": 0, "retries": 0, "dead_letters": 0 },
            "recent_failures": [], "conflicts": []
        })
    };
    let send = |token: Option<String>, body: Vec<u8>| {
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let as_json = |v: Value| serde_json::to_vec(&v).expect("encodes");
    let cases = [
        (
            "as another node",
            Some(token.clone()),
            as_json(json!({ "report": report("clinic-2", "district") })),
            403,
        ),
        (
            "naming another parent",
            Some(token.clone()),
            as_json(json!({ "report": report("clinic-1", "national") })),
            403,
        ),
        (
            "with an admin token",
            Some(district.admin_token.clone()),
            as_json(json!({ "report": report("clinic-1", "district") })),
            403,
        ),
        (
            "without a token",
            None,
            as_json(json!({ "report": report("clinic-1", "district") })),
            401,
        ),
        (
            "that is not JSON",
            Some(token.clone()),
            b"{not json".to_vec(),
            400,
        ),
    ];
    for (what, token, body, status) in cases {
        let answer = send(token, body).await?;
        assert_eq!(answer.status(), status, "a report {what}");
        let text = answer.text().await?;
        assert!(text.contains("\"message\""), "a report {what}: {text}");
    }
    assert_eq!(
        oversized_upload(district.running.base_url(), &token).await?,
        413,
        "a report over the size cap"
    );
    // A sibling relayed as if below the sender is left out, and the rest is kept.
    let sibling = send(
        Some(token.clone()),
        as_json(json!({
            "report": report("clinic-1", "district"),
            "below": [{ "node": "clinic-2", "parent": "clinic-1", "age_secs": 1, "report": report("clinic-2", "clinic-1") }]
        })),
    )
    .await?;
    assert_eq!(sibling.status(), 200);
    let answer: Value = sibling.json().await?;
    assert_eq!(answer["accepted"], 1, "{answer}");
    // Nothing refused or left out was kept: clinic-2 is still unheard of.
    let view = get(&t, "district", "/admin/network").await?;
    assert_eq!(
        row(&view, "clinic-2")["health"],
        "never-reported",
        "{view:#}"
    );
    let good = send(
        Some(token),
        as_json(json!({
            "report": report("clinic-1", "district"),
            "below": [{ "node": "post-1", "parent": "clinic-1", "age_secs": 5, "report": report("post-1", "clinic-1") }]
        })),
    )
    .await?;
    assert_eq!(good.status(), 200);
    let view = get(&t, "district", "/admin/network").await?;
    assert_eq!(row(&view, "post-1")["depth"], 3 - 1, "{view:#}");
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_national_office_resolves_a_clinics_conflict() -> anyhow::Result<()> {
    let t = tree().await?;
    let id = clinic_conflict(&t, "remote-1").await?;
    let path = format!("/admin/network/clinic-1/conflicts/{id}/resolve");
    let wrong = json!({ "body": { "resourceType": "Patient", "id": "other" }, "by": "ana" });
    let (status, answer) = post(&t, "national", &path, wrong).await?;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = post(
        &t,
        "national",
        "/admin/network/clinic-1/conflicts/999999/resolve",
        json!({ "side": "parent" }),
    )
    .await?;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = post(
        &t,
        "national",
        &path,
        json!({ "side": "parent", "by": "ana" }),
    )
    .await?;
    assert_eq!(status, 202, "{answer}");
    let decision_id = answer["decision"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // The decision travels down two levels in report answers; its outcome comes back up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let outcome = loop {
        let detail = get(&t, "national", "/admin/network/clinic-1").await?;
        let decision = detail["decisions"]
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|d| d["decision"]["id"] == decision_id.as_str())
            })
            .cloned()
            .unwrap_or(Value::Null);
        if !decision["outcome"].is_null() {
            break decision["outcome"].clone();
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no outcome: {detail:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(outcome["applied"], true, "{outcome}");
    let record = t
        .handle("clinic-1")
        .state
        .conflict(id)?
        .expect("the conflict is kept");
    let resolution = record.resolution.expect("resolved");
    assert!(
        resolution.by.starts_with("ana at national"),
        "{}",
        resolution.by
    );
    t.settle().await?;
    for node in ["district", "clinic-1"] {
        common::conflict::assert_holds(&t, node, "remote-1", "DistrictEdit");
    }
    national_view_until(&t, |v| row(v, "clinic-1")["counts"]["open_conflicts"] == 0).await?;
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_for_a_conflict_settled_meanwhile_is_refused_as_stale() -> anyhow::Result<()> {
    use sync_host::node::resolve::{Resolve, resolve_conflict};
    use sync_host::report::Decision;
    use sync_host::sync::conflict::Side;
    let t = tree().await?;
    let id = clinic_conflict(&t, "stale-1").await?;
    let clinic = t.handle("clinic-1");
    let local = Resolve {
        side: Some(Side::Child),
        body: None,
        by: "clinic-nurse".into(),
    };
    resolve_conflict(clinic, id, local).await?;
    let decision = Decision {
        id: "national-test-1".into(),
        target: "clinic-1".into(),
        conflict_id: id,
        resource: "Patient/stale-1".into(),
        side: Some(Side::Parent),
        body: None,
        by: "ana".into(),
        from_node: "national".into(),
        issued_at: sync_host::audit::Timestamp::now(),
    };
    let settled =
        sync_host::node::remote_resolve::apply_decisions(clinic, vec![decision.clone()]).await;
    assert_eq!(settled, 1);
    let kept = clinic.reporting.decisions.get(&decision.id)?.expect("kept");
    let outcome = kept.outcome.expect("an outcome");
    assert!(
        !outcome.applied && outcome.message.contains("stale"),
        "{outcome:?}"
    );
    // Delivered again, it is not applied again.
    let again = sync_host::node::remote_resolve::apply_decisions(clinic, vec![decision]).await;
    assert_eq!(again, 0);
    common::conflict::assert_holds(&t, "clinic-1", "stale-1", "ClinicEdit");
    t.shutdown().await;
    Ok(())
}

/// The status a parent answers to an upload that declares more than the 16 MiB cap. Only the
/// headers are sent: the parent answers from the declared length, before any body, and a
/// client still writing the body could see the connection closed instead of the answer.
async fn oversized_upload(base_url: &str, token: &str) -> anyhow::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let length = 17 * 1024 * 1024;
    let head = format!(
        "POST /sync/report HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await??;
        anyhow::ensure!(
            read > 0,
            "the parent closed the connection without an answer"
        );
        answer.extend_from_slice(&chunk[..read]);
    }
    let status_line = String::from_utf8_lossy(&answer);
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status in {status_line}"))?;
    Ok(status)
}

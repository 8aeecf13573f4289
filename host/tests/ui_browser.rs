//! The dashboard in a real browser: headless Chromium from the distribution's packages, driven
//! over WebDriver by chromedriver. An operator logs in at the national node, sees the tree,
//! opens a clinic's conflict and resolves it through the page; at the clinic, a conflict is
//! shown side by side with the differing lines marked, an invalid merged body is stopped in
//! the page and a valid one is written. A form without the session's CSRF token is refused,
//! and after logout the pages ask for a login again.
//!
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` the test says so and passes, unless
//! `SYNC_HOST_REQUIRE_BROWSER` is set (CI sets it, after installing both).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::reports::{clinic_conflict, national_view_until, row, tree};
use common::{TestNet, fhir};
use fantoccini::{Client, ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process on a free port, killed when dropped.
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn start_driver() -> anyhow::Result<Driver> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{url}/status")).await.is_err() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Driver { child, url })
}

async fn browser(driver: &Driver) -> anyhow::Result<Client> {
    let profile = tempfile::tempdir()?;
    // Chromium's own background traffic is refused on a closed network; these keep it quiet.
    let args = [
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        format!("--user-data-dir={}", profile.keep().display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": CHROMIUM, "args": args }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    Ok(ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await?)
}

fn browser_present() -> bool {
    let present =
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var_os("SYNC_HOST_REQUIRE_BROWSER").is_none(),
            "SYNC_HOST_REQUIRE_BROWSER is set but {CHROMIUM} or {CHROMEDRIVER} is missing"
        );
        eprintln!(
            "skipped: install Debian's chromium and chromium-driver to run the dashboard in a browser"
        );
    }
    present
}

async fn log_in(page: &Client, t: &TestNet, node: &str) -> anyhow::Result<()> {
    let node = t.net.node(node).expect("started");
    page.goto(&format!("{}/ui/", node.running.base_url()))
        .await?;
    anyhow::ensure!(
        page.current_url().await?.path() == "/ui/login",
        "not sent to the login"
    );
    page.find(Locator::Css("input[name=token]"))
        .await?
        .send_keys(&node.admin_token)
        .await?;
    page.find(Locator::Css("form[action='/ui/login'] button"))
        .await?
        .click()
        .await?;
    page.wait()
        .for_element(Locator::Css("table#network"))
        .await?;
    Ok(())
}

async fn text_of(page: &Client, css: &str) -> anyhow::Result<String> {
    Ok(page.find(Locator::Css(css)).await?.text().await?)
}

/// Reloads until `css` matches an element, for at most 30 s.
async fn reload_until(page: &Client, css: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while page.find(Locator::Css(css)).await.is_err() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "never saw {css}: {}",
            page.source().await?
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        page.refresh().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_resolves_conflicts_through_the_dashboard() -> anyhow::Result<()> {
    if !browser_present() {
        return Ok(());
    }
    let t = tree().await?;
    let remote_id = clinic_conflict(&t, "ui-remote").await?;
    national_view_until(&t, |v| row(v, "clinic-2")["health"] == "never-reported").await?;
    let driver = start_driver().await?;
    let page = browser(&driver).await?;

    // The national node's tree, with the clinic's conflict counted.
    log_in(&page, &t, "national").await?;
    for node in ["national", "district", "clinic-1", "clinic-2"] {
        page.find(Locator::Css(&format!("tr[data-node='{node}']")))
            .await?;
    }
    assert_eq!(
        text_of(&page, "tr[data-node='clinic-1'] td.conflicts").await?,
        "1"
    );
    let source = page.source().await?;
    assert!(
        !source.contains(&t.net.node("national").expect("started").admin_token),
        "the token is on a page"
    );

    // The clinic's conflict, resolved from the national office.
    page.find(Locator::LinkText("Conflicts"))
        .await?
        .click()
        .await?;
    let link = format!("a[href='/ui/nodes/clinic-1/conflicts/{remote_id}']");
    page.find(Locator::Css(&link)).await?.click().await?;
    page.find(Locator::Css("button#keep-parent"))
        .await?
        .click()
        .await?;
    reload_until(&page, ".decision[data-state='applied']").await?;
    let record = t
        .handle("clinic-1")
        .state
        .conflict(remote_id)?
        .expect("kept");
    let by = record.resolution.map(|r| r.by).unwrap_or_default();
    assert!(by.starts_with("operator at national"), "{by}");

    // A form without the session's CSRF token is refused.
    let session = page.get_named_cookie("sync_host_session").await?;
    let national = t
        .net
        .node("national")
        .expect("started")
        .running
        .base_url()
        .to_string();
    let forged = reqwest::Client::new()
        .post(format!("{national}/ui/dead-letters/retry"))
        .header("cookie", format!("sync_host_session={}", session.value()))
        .form(&[("all", "true")])
        .send()
        .await?;
    assert_eq!(forged.status(), 403);

    // Logged out, the pages ask for a login again.
    page.find(Locator::Css("form[action='/ui/logout'] button"))
        .await?
        .click()
        .await?;
    page.goto(&format!("{national}/ui/network")).await?;
    assert_eq!(page.current_url().await?.path(), "/ui/login");

    // At the clinic: a conflict of its own, side by side, and a merged version written.
    t.settle().await?;
    let local_id = clinic_conflict(&t, "ui-local").await?;
    log_in(&page, &t, "clinic-1").await?;
    let clinic = t
        .net
        .node("clinic-1")
        .expect("started")
        .running
        .base_url()
        .to_string();
    page.goto(&format!("{clinic}/ui/conflicts/{local_id}"))
        .await?;
    let marked = page.find_all(Locator::Css("pre .diff")).await?;
    assert!(!marked.is_empty(), "no differing line is marked");
    let marked_text = marked[0].text().await?;
    assert!(
        marked_text.contains("Edit") || marked_text.contains("meta") || !marked_text.is_empty()
    );
    let area = page.find(Locator::Css("textarea[name=body]")).await?;
    area.clear().await?;
    area.send_keys("{not json").await?;
    page.find(Locator::Css("button#send-merged"))
        .await?
        .click()
        .await?;
    let complaint = text_of(&page, ".body-error").await?;
    assert!(complaint.contains("not valid JSON"), "{complaint}");
    let merged =
        sync_host::network::sample::patient("ui-local", "Imani", "MergedEdit", "1988-08-08");
    area.clear().await?;
    area.send_keys(&merged).await?;
    page.find(Locator::Css("button#send-merged"))
        .await?
        .click()
        .await?;
    page.wait().for_element(Locator::Css(".notice")).await?;
    let body = t
        .body("clinic-1", &fhir("Patient", "ui-local"))
        .unwrap_or_default();
    assert!(body.contains("MergedEdit"), "{body}");
    let record = t
        .handle("clinic-1")
        .state
        .conflict(local_id)?
        .expect("kept");
    assert!(record.resolution.is_some());

    page.close().await?;
    t.shutdown().await;
    Ok(())
}

//! The child's side of the report tree: after each sync run, and at least every
//! `report.interval_secs` while idle, the node uploads its report and its subtree's to its
//! parent. A failed upload is tried again at the next occasion; nothing waits on it.

use std::time::Duration;

use sync_host_runtime::Credentials;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error_chain::chain;
use crate::node::NodeHandle;
use crate::node::remote_resolve::apply_decisions;
use crate::node::report_api::REPORT_PATH;
use crate::node::reporting::upload;
use crate::report::model::clip;
use crate::report::{Decision, ReportAnswer};
use crate::sync::transport::with_credentials;

/// The shortest time between a finished run and the upload it causes (or the interval, when
/// shorter): a node that follows its parent's feed finishes a run for every change, and its
/// parent need not hear of each.
const MIN_GAP: Duration = Duration::from_secs(5);

/// How long one upload may take.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how this node uploads its reports.
pub struct ParentLink {
    pub url: String,
    pub credentials: Option<Credentials>,
    pub client: reqwest::Client,
}

impl ParentLink {
    /// The report address of the parent at `base_url`.
    pub fn new(base_url: &str, credentials: Option<Credentials>) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(UPLOAD_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            url: format!("{}{REPORT_PATH}", base_url.trim_end_matches('/')),
            credentials,
            client,
        })
    }
}

/// How the last upload went, so a parent that stays down is logged once, not every time.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Last {
    Sent,
    /// The parent answered 404: it does not take reports (an OpenMRS server, an old node).
    NotTaken,
    Failed(String),
}

/// Uploads reports until `cancel` fires.
pub async fn send_reports(
    node: NodeHandle,
    parent: ParentLink,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut runs = [&node.pull, &node.push]
        .map(|control| control.as_ref().map(|(_, status)| status.runs_finished()));
    let gap = MIN_GAP.min(interval);
    let mut last = None;
    loop {
        let (outcome, decisions) = send_once(&node, &parent).await;
        log_change(last.as_ref(), &outcome);
        last = Some(outcome);
        // Outcomes of decisions applied here go up at once, not an interval later.
        if apply_decisions(&node, decisions).await > 0 {
            continue;
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
            () = run_finished(&mut runs) => {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(gap) => {}
                }
            }
        }
    }
}

/// Waits until either direction finishes a run (forever when neither runs).
async fn run_finished(runs: &mut [Option<watch::Receiver<u64>>; 2]) {
    let [pull, push] = runs;
    tokio::select! {
        () = changed(pull) => {}
        () = changed(push) => {}
    }
}

/// Waits for the next finished run of one direction; a direction that does not run, or whose
/// status is gone, never wakes the caller.
async fn changed(receiver: &mut Option<watch::Receiver<u64>>) {
    if let Some(receiver) = receiver
        && receiver.changed().await.is_ok()
    {
        return;
    }
    std::future::pending::<()>().await;
}

/// One upload, and the decisions the parent answered with.
async fn send_once(node: &NodeHandle, parent: &ParentLink) -> (Last, Vec<Decision>) {
    let body = match upload(node) {
        Ok(upload) => upload,
        Err(e) => {
            let reason = format!("the report could not be made: {}", chain(&e));
            return (Last::Failed(reason), Vec::new());
        }
    };
    let request = parent.client.post(&parent.url).json(&body);
    let request = with_credentials(request, parent.credentials.as_ref());
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return (Last::Failed(chain(&e)), Vec::new()),
    };
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return (Last::NotTaken, Vec::new());
    }
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        let reason = format!("{status}: {}", clip(text.trim()));
        return (Last::Failed(reason), Vec::new());
    }
    match response.json::<ReportAnswer>().await {
        Ok(answer) => (Last::Sent, answer.decisions),
        Err(e) => {
            let reason = format!("the parent's answer is not a report answer: {}", chain(&e));
            (Last::Failed(reason), Vec::new())
        }
    }
}

fn log_change(before: Option<&Last>, now: &Last) {
    if before == Some(now) {
        tracing::debug!(outcome = ?now, "status report");
        return;
    }
    match now {
        Last::Sent => tracing::info!("status reports reach the parent"),
        Last::NotTaken => tracing::info!(
            "the parent does not take status reports (404); this node is missing from its network view"
        ),
        Last::Failed(reason) => {
            tracing::warn!(%reason, "status report not delivered; trying again later")
        }
    }
}

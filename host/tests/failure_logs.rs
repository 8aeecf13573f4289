//! Failed events reach the log, not only the audit: a node syncing an OpenMRS-shaped parent
//! that links a document it does not serve logs the failure at `warn` with structured fields.

#[path = "support_faults/mod.rs"]
mod support;

use sync_host::audit::Outcome;

use support::nodes::{audit, describe, handle, openmrs_child};
use support::openmrs::OpenMrs;
use support::pages::FeedEntry;

/// A log sink for one test: what the node logs while the test's runtime runs.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A failed event is not only in the audit: it is logged at `warn` with its resource, kind
/// and message as fields. (A current-thread runtime keeps every node task on this thread,
/// where the capturing subscriber is installed.)
#[tokio::test(flavor = "current_thread")]
async fn a_failed_event_is_logged_at_warn_with_its_resource() -> anyhow::Result<()> {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = OpenMrs::start().await?;
    let missing = "5e7a0c1d-0000-4000-8000-00000000dead";
    server.publish(
        "patient",
        FeedEntry::json_links(
            "tag:atomfeed.ict4h.org:5e7a0c1d-0000-4000-8000-000000000002",
            Some(&format!("/ws/rest/v1/patient/{missing}?v=full")),
            None,
        ),
    );
    let dir = tempfile::tempdir()?;
    let network = openmrs_child(dir.path(), &server, &["patient"], "").await?;
    network.sync_round().await?;
    let records = audit(handle(&network, "clinic"));
    assert!(
        matches!(records[0].outcome, Outcome::Failed { .. }),
        "{}",
        describe(&records)
    );
    network.shutdown().await;
    let text = String::from_utf8(captured.0.lock().map(|b| b.clone()).unwrap_or_default())?;
    let line = text
        .lines()
        .find(|l| l.contains("event failed"))
        .unwrap_or_else(|| panic!("no failed event was logged:\n{text}"));
    assert!(line.contains("WARN"), "{line}");
    for field in [
        "resource_type=patient",
        &format!("resource_id={missing}"),
        "kind=NotFound",
        "error=no resource at /ws/rest/v1/patient/",
    ] {
        assert!(line.contains(field), "{field} missing from: {line}");
    }
    Ok(())
}

//! The page window of a catch-up: while one page waits for its commit, the next page is already
//! read and its resources fetched from the parent, and the feed page after it is read. The
//! tests hold a page right before its commit and watch what the parent answers meanwhile; one
//! changes a resource of the next page only once it was fetched, and checks what the child made
//! of the copy it fetched ahead.

#[path = "support_faults/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sync_host::audit::Outcome;
use sync_host::network::{Network, differences, sample};
use sync_host::state::{DurablePoint, StepHook};
use sync_host::sync::conflict::Direction;
use tokio::sync::{Notify, oneshot};

use support::nodes::{audit, handle, node, store};
use support::tree::{TYPES, parent_and_child};

/// Holds the first run that reaches `point` until released.
struct HoldGate {
    point: DurablePoint,
    held: Mutex<Option<oneshot::Sender<()>>>,
    release: Notify,
}

#[async_trait::async_trait]
impl StepHook for HoldGate {
    async fn reached(&self, point: DurablePoint) {
        if point != self.point {
            return;
        }
        let first = self.held.lock().expect("gate lock").take();
        if let Some(held) = first {
            let released = self.release.notified();
            let _ = held.send(());
            released.await;
        }
    }
}

/// Successful FHIR reads (each a batched `_id` search of a page).
const FHIR_READS: [&str; 3] = ["method=\"GET\"", "api=\"fhir\"", "status=\"2xx\""];
/// Feed pages served.
const FEED_READS: [&str; 3] = ["method=\"GET\"", "api=\"feed\"", "status=\"2xx\""];

/// Requests matching `labels` the parent has served.
async fn served(network: &Network, labels: &[&str]) -> anyhow::Result<u64> {
    Ok(node(network, "national").http_requests(labels).await?)
}

/// Waits, up to 30 s, until the parent has served `at_least` requests matching `labels`;
/// otherwise fails saying `missed` and how many it served.
async fn until_served(
    network: &Network,
    labels: &[&str],
    at_least: u64,
    missed: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let count = served(network, labels).await?;
        if count >= at_least {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "{missed} ({count} served, {at_least} awaited)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A gate that holds the first commit of a run until released, installed on the clinic.
fn hold_first_commit(network: &Network) -> (Arc<HoldGate>, oneshot::Receiver<()>) {
    let (held_tx, held) = oneshot::channel();
    let gate = Arc::new(HoldGate {
        point: DurablePoint::BeforeCommit,
        held: Mutex::new(Some(held_tx)),
        release: Notify::new(),
    });
    handle(network, "clinic")
        .state
        .set_step_hook(Some(gate.clone()));
    (gate, held)
}

/// Runs a sync round whose first commit on the clinic is held until `while_held` is done,
/// then lets the tree settle and checks that it converged.
async fn round_with_first_commit_held<F, Fut>(
    network: &Network,
    while_held: F,
) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let (gate, held) = hold_first_commit(network);
    let steer = async {
        let outcome = match held.await {
            Ok(()) => while_held().await,
            Err(_) => Err(anyhow::anyhow!("the first page never reached its commit")),
        };
        gate.release.notify_one();
        outcome
    };
    let (round, steered) = tokio::join!(network.sync_round(), steer);
    steered?;
    round?;
    handle(network, "clinic").state.set_step_hook(None);
    network.sync_until_quiet(5).await?;
    assert!(differences(network, TYPES)?.is_empty());
    Ok(())
}

/// How many of `records` applied resource `id` on pull.
fn applied_on_pull(records: &[sync_host::audit::AuditRecord], id: &str) -> usize {
    records
        .iter()
        .filter(|r| r.direction == Direction::Pull && r.resource_id == id)
        .filter(|r| matches!(r.outcome, Outcome::Applied))
        .count()
}

/// A parent and a fresh child, the parent holding patients `p00` to `count - 1`.
async fn tree_with_patients(dir: &std::path::Path, count: usize) -> anyhow::Result<Network> {
    let network = Network::start(dir, parent_and_child(0)).await?;
    for n in 0..count {
        let (id, body) = patient(n, "First");
        sample::put_fhir(store(&network, "national"), "Patient", &id, body).await?;
    }
    Ok(network)
}

fn patient(n: usize, family: &str) -> (String, String) {
    let id = format!("p{n:02}");
    let body = sample::patient(&id, "Amina", family, "1990-01-01");
    (id, body)
}

/// Waits, with page 1 held before its commit, until the parent has answered the fetch of
/// page 2 as well, then changes a patient of page 2.
async fn change_page_two_once_fetched(network: &Network, before: u64) -> anyhow::Result<()> {
    let missed = "page 2 was not fetched while page 1 waited for its commit";
    until_served(network, &FHIR_READS, before + 2, missed).await?;
    let (id, body) = patient(27, "Changed");
    sample::put_fhir(store(network, "national"), "Patient", &id, body).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_page_is_fetched_while_a_page_waits_for_its_commit() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Pages of 5 served up to 25 at a time: patients 0-24 are the first page the child reads,
    // 25-29 the second.
    let network = tree_with_patients(dir.path(), 30).await?;
    let before = served(&network, &FHIR_READS).await?;
    round_with_first_commit_held(&network, || change_page_two_once_fetched(&network, before))
        .await?;
    let records = audit(handle(&network, "clinic"));
    let applied = |id: &str| applied_on_pull(&records, id);
    // The copy of p27 was fetched before the change, so its first entry applied the state it
    // announced; the change came down with its own entry after. A fetch in turn would have
    // seen the change, skipped the first entry as superseded and applied once.
    assert_eq!(
        applied("p27"),
        2,
        "p27: the copy fetched ahead, then the change"
    );
    for n in (0..30).filter(|n| *n != 27) {
        assert_eq!(applied(&format!("p{n:02}")), 1, "p{n:02} applied once");
    }
    network.shutdown().await;
    Ok(())
}

/// A fresh child over 90 patients (four pages of up to 25, each fetched with one `_id`
/// search) whose first page is held before its commit until the parent has served `more`
/// requests matching `labels`; then every patient must have been applied once.
async fn ninety_patients_with_page_one_held(
    labels: &[&str],
    more: u64,
    missed: &str,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let network = tree_with_patients(dir.path(), 90).await?;
    let before = served(&network, labels).await?;
    let served_ahead = || until_served(&network, labels, before + more, missed);
    round_with_first_commit_held(&network, served_ahead).await?;
    let records = audit(handle(&network, "clinic"));
    for n in 0..90 {
        let id = format!("p{n:02}");
        assert_eq!(applied_on_pull(&records, &id), 1, "{id} applied once");
    }
    network.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_page_after_the_next_is_read_while_a_page_waits_for_its_commit()
-> anyhow::Result<()> {
    // A fresh child reads `recent`, follows its `first` link to page 1 and works on it; while
    // page 1 waits for its commit it reads pages 2 and 3.
    let missed = "page 1 waited without the feed page after the next being read";
    ninety_patients_with_page_one_held(&FEED_READS, 4, missed).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copies_of_two_pages_ahead_are_fetched_while_a_page_waits_for_its_commit()
-> anyhow::Result<()> {
    // Page 1's own fetch, then pages 2 and 3 fetched ahead, all while page 1 is held: a slow
    // link then always has a request in flight.
    let missed = "page 1 waited without the copies of pages 2 and 3 being fetched";
    ninety_patients_with_page_one_held(&FHIR_READS, 3, missed).await
}

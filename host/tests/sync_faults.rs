//! Faults between a child and its parent during a catch-up of many small feed pages: the parent
//! going down mid-run and coming back, a parent that fails and stalls at random, and a child
//! process killed with SIGKILL again and again. After each the tree converges, nothing is lost,
//! the hot resource only ever moves forward, and every failure in the audit was later settled.
//! The parent serves a catching-up child spans of five archive pages, so the kills also land in
//! the middle of spans; a test of its own checks what a span catch-up reads and remembers.

#[path = "support_faults/mod.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sync_host::audit::Outcome;
use sync_host::network::{Network, differences, sample};
use sync_host::state::{ConflictFilter, FailureKey};
use sync_host::sync::conflict::Direction;
use sync_host::sync::retry::FailureKind;
use sync_host_store::store::{Precondition, ResourceKey, WriteRequest};

use support::nodes::{audit, handle, start_again, stop_node, store};
use support::process::{NodeProcess, marker_sequence};
use support::tree::{
    HOT, ParentWriter, TYPES, assert_applied_once, assert_failures_settled, assert_in_order,
    converge, converge_with, parent_and_child, requeue_exhausted, tree_behind_proxy,
};

/// Live patients on `node` (the hot one included).
fn patients_on(network: &Network, node: &str) -> usize {
    sync_host::network::contents(store(network, node), TYPES)
        .expect("contents")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parent_going_down_mid_catch_up_loses_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (network, proxy) = tree_behind_proxy(dir.path(), false).await?;
    let mut writer = ParentWriter::default();
    writer
        .add_patients(store(&network, "national"), 120, 6)
        .await?;

    // The upstream dies after six requests: the proxy answers 502 from then on. The first
    // page (`recent`, page 1, its fetch) always fits in them, whatever the pages read ahead
    // meanwhile take; the rest of a catch-up of six spans never does.
    proxy.faults().down_after.store(6, Ordering::SeqCst);
    let first = network.sync_round().await;
    assert!(first.is_err(), "the run stops when the feed cannot be read");
    let partial = patients_on(&network, "clinic");
    let total = patients_on(&network, "national");
    assert!(
        0 < partial && partial < total,
        "the catch-up stopped in the middle: {partial} of {total}"
    );
    let clinic = handle(&network, "clinic");
    let marker_before = clinic.state.markers()?;

    // While it is down the parent keeps changing; the child's runs fail and hold still.
    writer
        .add_patients(store(&network, "national"), 10, 2)
        .await?;
    assert!(network.sync_round().await.is_err());
    proxy.stop().await;
    let refused = network
        .sync_round()
        .await
        .expect_err("connection refused fails the run")
        .to_string();
    assert!(refused.contains("failed"), "{refused}");
    assert_eq!(clinic.state.markers()?, marker_before);

    // It comes back: the child resumes from its marker and catches up completely.
    proxy.faults().upstream_down.store(false, Ordering::SeqCst);
    proxy.restart().await?;
    let rounds = converge(&network, Duration::from_secs(60)).await?;
    eprintln!("converged {rounds} round(s) after the parent came back");
    assert!(differences(&network, TYPES)?.is_empty());
    assert_eq!(
        patients_on(&network, "clinic"),
        writer.patients() as usize + 1
    );
    assert_in_order(clinic, writer.hot_version());
    let failed = assert_failures_settled(clinic);
    for record in audit(clinic) {
        if let Outcome::Failed { failure, .. } = record.outcome {
            assert_eq!(failure, FailureKind::Transient, "{record:?}");
        }
    }
    eprintln!("{failed} failed attempt(s), all settled");
    network.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_and_slow_parent_still_converges_in_order() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (network, proxy) = tree_behind_proxy(dir.path(), true).await?;
    let mut writer = ParentWriter::default();
    writer
        .add_patients(store(&network, "national"), 60, 10)
        .await?;
    let faults = proxy.faults();
    faults.fail_one_in.store(5, Ordering::SeqCst);
    faults.delay_one_in.store(4, Ordering::SeqCst);
    faults.delay_ms.store(250, Ordering::SeqCst);

    // The parent keeps changing between runs, the hot patient most of all, and the clinic
    // registers patients of its own that travel up through the same faults.
    let mut failed_runs = 0;
    let mut clinic_writes = 0;
    for _ in 0..8 {
        writer
            .add_patients(store(&network, "national"), 5, 0)
            .await?;
        writer.update_hot(store(&network, "national")).await?;
        writer.update_hot(store(&network, "national")).await?;
        clinic_writes += add_clinic_patients(&network, clinic_writes, 3).await?;
        if network.sync_round().await.is_err() {
            failed_runs += 1;
        }
    }
    // Under a sustained fault rate some events use up their retries and are parked; an
    // operator requeues them (`sync-host retry --all`) and they go through.
    let requeued = std::sync::atomic::AtomicUsize::new(0);
    let rounds = converge_with(&network, Duration::from_secs(90), |network| {
        let count = requeue_exhausted(handle(network, "clinic"), MAX_ATTEMPTS)?;
        requeued.fetch_add(count, Ordering::SeqCst);
        Ok(())
    })
    .await?;
    let (requests, failed, delayed, _) = proxy.counts();
    eprintln!(
        "{requests} requests through the proxy, {failed} answered 500, {delayed} delayed; \
         {failed_runs} of 8 runs failed; converged after {rounds} more round(s), {} parked \
         event(s) requeued",
        requeued.load(Ordering::SeqCst)
    );
    assert!(failed > 0 && delayed > 0, "faults were injected");
    let clinic = handle(&network, "clinic");
    let expected = writer.patients() as usize + 1 + clinic_writes;
    assert_eq!(patients_on(&network, "clinic"), expected);
    assert_eq!(patients_on(&network, "national"), expected);
    assert_in_order(clinic, writer.hot_version());
    let failed_records = assert_failures_settled(clinic);
    let injected = audit(clinic).iter().any(|r| {
        matches!(
            r.outcome,
            Outcome::Failed {
                failure: FailureKind::Transient,
                status: Some(500),
                ..
            }
        )
    });
    assert!(
        injected || failed_runs > 0,
        "an injected 500 shows as a failed run or a transient failure in the audit"
    );
    eprintln!("{failed_records} failed attempt(s) in the audit, all settled");
    network.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_reads_spans_of_archives_and_its_marker_names_an_ordinary_page()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Pages of 5 served up to 25 at a time.
    let network = Network::start(dir.path(), parent_and_child(0)).await?;
    let mut writer = ParentWriter::default();
    let national = store(&network, "national");
    // 62 changes: archives 1 to 12 and two on the newest page, 13.
    writer.add_patients(national, 62, 0).await?;
    let pages_read = |report: &sync_host::network::RoundReport| {
        report
            .runs
            .get(&("clinic".to_string(), "pull"))
            .map(|run| run.pages)
    };
    let first = network.sync_round().await?;
    // Spans 1-5, 6-10 and 11-12, then the newest page: 4 reads where pages alone take 13.
    assert_eq!(pages_read(&first), Some(4));
    let clinic = handle(&network, "clinic");
    let page_of_marker = || -> anyhow::Result<Vec<Option<String>>> {
        let markers = clinic.state.markers()?;
        Ok(markers.into_iter().map(|(_, marker)| marker.page).collect())
    };
    assert_eq!(page_of_marker()?, [Some("all/13".to_string())]);
    // The newest page fills and the feed moves on: the marker's page is now an archive, and
    // the next run reads on from it as the start of a span.
    writer.add_patients(national, 40, 0).await?;
    let second = network.sync_round().await?;
    // Pages 13-17 and 18-20, then the newest page, 21.
    assert_eq!(pages_read(&second), Some(3));
    assert_eq!(page_of_marker()?, [Some("all/21".to_string())]);
    assert!(differences(&network, TYPES)?.is_empty());
    let applied = audit(clinic)
        .iter()
        .filter(|r| r.direction == Direction::Pull && matches!(r.outcome, Outcome::Applied))
        .count();
    assert_eq!(applied, 102, "each change applied exactly once");
    network.shutdown().await;
    Ok(())
}

/// `[sync.retry] max_attempts` of the nodes `Network` starts.
const MAX_ATTEMPTS: u32 = 5;

/// Registers `count` patients at the clinic, numbered from `from`; returns `count`.
async fn add_clinic_patients(
    network: &Network,
    from: usize,
    count: usize,
) -> anyhow::Result<usize> {
    for n in from..from + count {
        let id = format!("c{n:05}");
        let body = sample::patient(&id, "Imani", &format!("Clinic-{n}"), "2001-02-03");
        sample::put_fhir(store(network, "clinic"), "Patient", &id, body).await?;
    }
    Ok(count)
}

/// Kills between catch-ups, each at a random moment of a run.
const KILLS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_process_killed_again_and_again_mid_catch_up_converges() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut network = Network::start(dir.path(), parent_and_child(0)).await?;
    let mut writer = ParentWriter::default();
    writer
        .add_patients(store(&network, "national"), 300, 8)
        .await?;
    // From here the child runs as its own process, syncing every second on its own.
    let child = stop_node(&mut network, "clinic").await?;
    let text = std::fs::read_to_string(&child.config_path)?;
    anyhow::ensure!(text.contains("interval_secs = 0"), "unexpected config");
    std::fs::write(
        &child.config_path,
        text.replace("interval_secs = 0", "interval_secs = 1"),
    )?;
    let log = child.dir.join("clinic.log");

    let mut dice = StdRng::seed_from_u64(0x6b11);
    let mut mid_catch_up = 0;
    for _ in 0..KILLS {
        let process = NodeProcess::start(&child.config_path, &log).await?;
        // A catch-up of a hundred changes takes a couple of hundred milliseconds in a debug
        // build, with the next page fetched while one commits.
        let wait = Duration::from_millis(dice.random_range(20..200));
        tokio::time::sleep(wait).await;
        let parent_last = store(&network, "national").change_count(None)?;
        if let Ok(status) = process.status(&child.admin_token).await {
            let at = marker_sequence(&status, "national").unwrap_or(0);
            if at < parent_last {
                mid_catch_up += 1;
            }
        }
        process.kill().await?;
        // The parent moves on while the child is down.
        writer
            .add_patients(store(&network, "national"), 100, 5)
            .await?;
    }
    eprintln!("{mid_catch_up} of {KILLS} kills landed in the middle of a catch-up");
    assert!(
        mid_catch_up >= KILLS / 3,
        "too few kills interrupted a catch-up"
    );

    // Finally the child runs undisturbed until it has everything, then stops cleanly.
    let process = NodeProcess::start(&child.config_path, &log).await?;
    let parent_last = store(&network, "national").change_count(None)?;
    wait_until_caught_up(&process, &child.admin_token, parent_last).await?;
    process.terminate().await?;
    let log_text = std::fs::read_to_string(&log)?;
    assert!(
        !log_text.contains("panicked"),
        "a restarted node panicked; see {}",
        log.display()
    );

    // Its databases, opened again (driven by hand), hold exactly what the parent holds.
    start_again(&mut network, child, |text| {
        text.replace("interval_secs = 1", "interval_secs = 0")
    })
    .await?;
    let diffs = differences(&network, TYPES)?;
    let clinic = handle(&network, "clinic");
    let open = clinic.state.conflicts(ConflictFilter::Open, 10)?;
    assert!(
        diffs.is_empty(),
        "{} differences: {:?}; open conflicts on the child: {open:?}",
        diffs.len(),
        diffs.first()
    );
    assert_in_order(clinic, writer.hot_version());
    assert_applied_once(clinic);
    let failed = assert_failures_settled(clinic);
    eprintln!("{failed} failed attempt(s) in the child's audit, all settled");
    network.shutdown().await;
    Ok(())
}

/// Polls the process until its pull marker reaches `sequence` with nothing left to retry.
async fn wait_until_caught_up(
    process: &NodeProcess,
    token: &str,
    sequence: u64,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        if let Ok(status) = process.status(token).await {
            let at = marker_sequence(&status, "national").unwrap_or(0);
            let retries = status["counts"]["retries"].as_u64().unwrap_or(u64::MAX);
            if at >= sequence && retries == 0 {
                return Ok(());
            }
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the child did not catch up to sequence {sequence}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How a pull of the hot patient was interrupted before the parent changed it again.
#[derive(Clone, Copy)]
enum Interrupted {
    /// Its write landed, then the node died before the batch (and the sync base) committed.
    Once,
    /// As `Once`, and after the restart the parent moved on by more than a page before
    /// changing the patient again: the replayed entry is superseded a page earlier than the
    /// change that follows it.
    ThenPagesLater,
    /// As `Once`, and the next attempt died too, after its intent became durable but
    /// before its write landed.
    ThenAgainBeforeWrite,
}

/// Builds the state `how` leaves on the child, lets the parent change the hot patient again,
/// and syncs: the child never edited the patient, so no conflict may be raised.
async fn interrupted_pull_is_not_taken_for_a_local_edit(how: Interrupted) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let network = Network::start(dir.path(), parent_and_child(0)).await?;
    let mut writer = ParentWriter::default();
    let national = store(&network, "national");
    writer.update_hot(national).await?;
    let key = ResourceKey::fhir("Patient", HOT);
    let hot_body = |store: &sync_host_store::store::Store| -> anyhow::Result<String> {
        let body = store.read(&key)?.and_then(|r| r.body);
        body.ok_or_else(|| anyhow::anyhow!("no hot patient on the parent"))
    };
    let pulled = hot_body(national)?;
    let intent = FailureKey {
        direction: Direction::Pull,
        resource_type: "Patient".into(),
        resource_id: HOT.into(),
    };
    let clinic = handle(&network, "clinic");
    let hash = sync_host_store::hash::content_hash(&pulled)?;
    clinic
        .state
        .record_intents(&[(intent.clone(), hash)], &[])
        .await?;
    store(&network, "clinic")
        .write(WriteRequest {
            key: key.clone(),
            body: Some(pulled),
            precondition: Precondition::Any,
            origin: Some("national".into()),
        })
        .await?;
    match how {
        Interrupted::Once => {}
        Interrupted::ThenPagesLater => writer.add_patients(national, 12, 0).await?,
        Interrupted::ThenAgainBeforeWrite => {
            writer.update_hot(national).await?;
            let never_written = sync_host_store::hash::content_hash(&hot_body(national)?)?;
            clinic
                .state
                .record_intents(&[(intent, never_written)], &[])
                .await?;
        }
    }
    writer.update_hot(national).await?;
    network.sync_until_quiet(10).await?;
    let clinic = handle(&network, "clinic");
    let open = clinic.state.conflicts(ConflictFilter::Open, 10)?;
    assert!(open.is_empty(), "a false conflict was parked: {open:?}");
    assert_in_order(clinic, writer.hot_version());
    network.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_interrupted_between_write_and_commit_is_not_taken_for_a_local_edit()
-> anyhow::Result<()> {
    interrupted_pull_is_not_taken_for_a_local_edit(Interrupted::Once).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_pull_replayed_pages_before_the_next_change_is_no_local_edit()
-> anyhow::Result<()> {
    interrupted_pull_is_not_taken_for_a_local_edit(Interrupted::ThenPagesLater).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_interrupted_twice_in_a_row_is_no_local_edit() -> anyhow::Result<()> {
    interrupted_pull_is_not_taken_for_a_local_edit(Interrupted::ThenAgainBeforeWrite).await
}

//! Convergence regressions: a relayed change is written under the origin of the content it
//! carries, an undo is a change, a create never replaces a resource created meanwhile, and the
//! two directions of one node never race on a sync base.

mod common;

use std::time::Duration;

use common::conflict::{conflict_of, create_synced, pair, put};
use common::proxy::race_create;
use common::{TestNet, fhir};
use sync_host::audit::{Outcome, SkipReason};
use sync_host::network::NodeSpec;
use sync_host::sync::conflict::{Direction, Policy, Side};

/// Root, district and clinic; the clinic publishes one entry per feed page and serves no
/// spans, so every change of its own feed is read as a page of its own.
async fn three_levels(policy: Policy) -> anyhow::Result<TestNet> {
    let mut district = NodeSpec::new("district", Some("root"));
    district.policy = policy;
    let mut clinic = NodeSpec::new("clinic", Some("district"));
    clinic.policy = policy;
    clinic.page_size = Some(1);
    clinic.catch_up_page_max = Some(1);
    TestNet::start(vec![NodeSpec::new("root", None), district, clinic]).await
}

async fn pull_down(t: &TestNet) -> anyhow::Result<()> {
    t.run("district", Direction::Pull).await?;
    t.run("clinic", Direction::Pull).await?;
    Ok(())
}

async fn assert_everywhere(t: &TestNet, id: &str, family: &str) {
    for node in ["root", "district", "clinic"] {
        let body = t.body(node, &fhir("Patient", id)).unwrap_or_default();
        assert!(body.contains(family), "{node} holds {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_edit_behind_an_older_relayed_event_reaches_the_root() -> anyhow::Result<()> {
    let t = three_levels(Policy::Manual).await?;
    // The root writes x twice; each version reaches the clinic, whose own feed then holds two
    // entries for x, both with the root as origin.
    put(t.store("root"), "x", "First").await?;
    pull_down(&t).await?;
    put(t.store("root"), "x", "Second").await?;
    pull_down(&t).await?;
    // The clinic edits x before it pushes anything: its push meets the root's first entry,
    // whose announced state is gone, while the clinic's current state is its own edit.
    put(t.store("clinic"), "x", "ClinicEdit").await?;
    t.settle().await?;
    assert_everywhere(&t, "x", "ClinicEdit").await;
    t.assert_converged();
    let superseded = t
        .audit_for("clinic", Direction::Push, "x")
        .into_iter()
        .filter(|r| common::is_skip(r, SkipReason::Superseded))
        .count();
    assert_eq!(superseded, 1, "the root's first entry is superseded");
    assert!(t.conflicts("clinic").is_empty());
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_delete_behind_an_older_relayed_event_reaches_the_root() -> anyhow::Result<()> {
    let t = three_levels(Policy::Manual).await?;
    put(t.store("root"), "y", "First").await?;
    pull_down(&t).await?;
    put(t.store("root"), "y", "Second").await?;
    pull_down(&t).await?;
    sync_host::network::sample::delete_fhir(t.store("clinic"), "Patient", "y").await?;
    t.settle().await?;
    assert!(t.holders(&fhir("Patient", "y")).is_empty());
    t.assert_converged();
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_at_the_parent_is_a_change_and_the_newer_side_wins() -> anyhow::Result<()> {
    let t = pair(Policy::NewestWins).await?;
    create_synced(&t, &["undo-1"]).await?;
    // The child edits first; later the parent edits and then brings its content back to what
    // both sides last agreed on. The parent's version moved, so both sides changed.
    put(t.store("child"), "undo-1", "ChildEdit").await?;
    tokio::time::sleep(Duration::from_millis(30)).await;
    put(t.store("root"), "undo-1", "ParentEdit").await?;
    put(t.store("root"), "undo-1", "Original").await?;
    t.settle().await?;
    let record = conflict_of(&t, "undo-1");
    assert_eq!(record.resolution.map(|r| r.winner), Some(Side::Parent));
    assert!(record.child.body.contains("ChildEdit"), "the loser is kept");
    for node in ["root", "child"] {
        let body = t.body(node, &fhir("Patient", "undo-1")).unwrap_or_default();
        assert!(body.contains("Original"), "{node} holds {body}");
    }
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_at_the_child_does_not_replace_a_parent_edit() -> anyhow::Result<()> {
    let t = pair(Policy::Manual).await?;
    create_synced(&t, &["undo-2"]).await?;
    put(t.store("root"), "undo-2", "ParentEdit").await?;
    put(t.store("child"), "undo-2", "ChildEdit").await?;
    put(t.store("child"), "undo-2", "Original").await?;
    // The child pushes first: its state equals the base by content, but not by version.
    t.run("child", Direction::Push).await?;
    let at_root = t
        .body("root", &fhir("Patient", "undo-2"))
        .unwrap_or_default();
    assert!(
        at_root.contains("ParentEdit"),
        "root kept its edit: {at_root}"
    );
    let record = conflict_of(&t, "undo-2");
    assert!(record.parent.body.contains("ParentEdit"));
    assert!(record.child.body.contains("Original"));
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_never_replaces_one_made_meanwhile_at_the_target() -> anyhow::Result<()> {
    let race = race_create(Policy::Manual).await?;
    assert_eq!(
        race.write_statuses,
        [412],
        "the parent must refuse the create: it holds race-1 by then"
    );
    let at_root = race.at_root();
    assert!(at_root.contains("RacingParentEdit"), "{at_root}");
    assert!(race.at_edge().contains("EdgeEdit"));
    let open = race.open_conflicts()?;
    assert_eq!(open.len(), 1, "{open:?}");
    assert!(open[0].parent.body.contains("RacingParentEdit"));
    assert!(open[0].child.body.contains("EdgeEdit"));
    race.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_and_push_meeting_one_conflict_at_once_agree_on_the_base() -> anyhow::Result<()> {
    for policy in [Policy::ChildWins, Policy::ParentWins] {
        let t = pair(policy).await?;
        let ids: Vec<String> = (0..6).map(|i| format!("both-{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        create_synced(&t, &refs).await?;
        for id in &ids {
            put(t.store("root"), id, "ParentEdit").await?;
            put(t.store("child"), id, "ChildEdit").await?;
        }
        let (pulled, pushed) = tokio::join!(
            t.run("child", Direction::Pull),
            t.run("child", Direction::Push)
        );
        pulled?;
        pushed?;
        t.settle().await?;
        t.assert_converged();
        // A later edit on either side is a plain change, not a conflict, and travels.
        let conflicts_before = t.conflicts("child").len();
        for id in &ids {
            put(t.store("root"), id, "LaterParent").await?;
        }
        t.settle().await?;
        for id in &ids {
            put(t.store("child"), id, "LaterChild").await?;
        }
        t.settle().await?;
        t.assert_converged();
        for id in &ids {
            let body = t.body("root", &fhir("Patient", id)).unwrap_or_default();
            assert!(body.contains("LaterChild"), "{policy:?}: root holds {body}");
        }
        assert_eq!(t.conflicts("child").len(), conflicts_before, "{policy:?}");
        let failed = t
            .audit("child")
            .into_iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
            .count();
        assert_eq!(failed, 0, "{policy:?}");
        t.shutdown().await;
    }
    Ok(())
}

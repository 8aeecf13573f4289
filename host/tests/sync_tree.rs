//! End-to-end sync over a three-level tree of real nodes on loopback: creates, updates,
//! deletes, voids and un-voids made at every level reach every node, nothing is echoed back,
//! and one-way children only sync the direction they are configured for.

mod common;

use common::{TestNet, fhir, is_skip, rest, visit};
use sync_host::audit::{Outcome, OutcomeKind, SkipReason};
use sync_host::network::{NodeSpec, sample};
use sync_host::sync::conflict::Direction;

const LEVELS: [&str; 4] = ["root", "child-a", "child-b", "grand"];

/// root with children child-a and child-b; grand is child-a's child.
fn tree() -> Vec<NodeSpec> {
    vec![
        NodeSpec::new("root", None),
        NodeSpec::new("child-a", Some("root")),
        NodeSpec::new("child-b", Some("root")),
        NodeSpec::new("grand", Some("child-a")),
    ]
}

async fn put_patient(t: &TestNet, node: &str, id: &str, family: &str) -> anyhow::Result<()> {
    let body = sample::patient(id, "Zawadi", family, "1990-05-01");
    sample::put_fhir(t.store(node), "Patient", id, body).await?;
    Ok(())
}

async fn put_visit(
    t: &TestNet,
    node: &str,
    uuid: &str,
    note: &str,
    voided: bool,
) -> anyhow::Result<()> {
    sample::put_rest(t.store(node), "visit", uuid, visit(uuid, note, voided)).await?;
    Ok(())
}

/// Asserts every node holds `key` with a body containing `needle`.
fn assert_everywhere(t: &TestNet, key: &sync_host_store::store::ResourceKey, needle: &str) {
    for node in LEVELS {
        let body = t.body(node, key).unwrap_or_default();
        assert!(
            body.contains(needle),
            "{node}: {key:?} lacks {needle}: {body}"
        );
    }
}

/// True when some node applied a change to `resource_id` recorded with `action`.
fn applied_with_action(t: &TestNet, resource_id: &str, action: &str) -> bool {
    LEVELS.iter().any(|node| {
        t.audit(node).iter().any(|r| {
            r.resource_id == resource_id && r.action == action && r.outcome == Outcome::Applied
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_at_every_level_reach_every_node() -> anyhow::Result<()> {
    let t = TestNet::start(tree()).await?;
    for node in LEVELS {
        put_patient(&t, node, &format!("p-{node}"), "Created").await?;
        put_visit(&t, node, &format!("v-{node}"), "created", false).await?;
    }
    t.settle().await?;
    t.assert_converged();
    for node in LEVELS {
        assert_eq!(t.holders(&fhir("Patient", &format!("p-{node}"))).len(), 4);
        assert_eq!(t.holders(&rest("visit", &format!("v-{node}"))).len(), 4);
    }

    // Each level changes a record that was made at another level.
    let others = [
        ("root", "grand"),
        ("grand", "root"),
        ("child-a", "child-b"),
        ("child-b", "child-a"),
    ];
    for (node, owner) in others {
        put_patient(&t, node, &format!("p-{owner}"), &format!("UpdatedAt{node}")).await?;
    }
    t.settle().await?;
    t.assert_converged();
    for (node, owner) in others {
        assert_everywhere(
            &t,
            &fhir("Patient", &format!("p-{owner}")),
            &format!("UpdatedAt{node}"),
        );
    }

    for (node, owner) in others {
        put_visit(&t, node, &format!("v-{owner}"), "created", true).await?;
    }
    t.settle().await?;
    t.assert_converged();
    for (_, owner) in others {
        let uuid = format!("v-{owner}");
        assert_everywhere(&t, &rest("visit", &uuid), "\"voided\":true");
        assert!(
            applied_with_action(&t, &uuid, "voided"),
            "no node applied the void of {uuid}"
        );
    }

    // Un-voids come from yet another level than the voids.
    let unvoiders = [
        ("child-a", "grand"),
        ("child-b", "root"),
        ("grand", "child-b"),
        ("root", "child-a"),
    ];
    for (node, owner) in unvoiders {
        put_visit(&t, node, &format!("v-{owner}"), "restored", false).await?;
    }
    t.settle().await?;
    t.assert_converged();
    for (_, owner) in unvoiders {
        let uuid = format!("v-{owner}");
        assert_everywhere(&t, &rest("visit", &uuid), "\"voided\":false");
        assert!(
            applied_with_action(&t, &uuid, "unvoided"),
            "no node applied the un-void of {uuid}"
        );
    }

    // Retire at the grandchild, un-retire at the other branch.
    let clinic = |retired| sample::location("loc-tree", "Kariobangi", retired);
    sample::put_rest(t.store("root"), "location", "loc-tree", clinic(false)).await?;
    t.settle().await?;
    for (node, retired, action) in [("grand", true, "retired"), ("child-b", false, "unretired")] {
        sample::put_rest(t.store(node), "location", "loc-tree", clinic(retired)).await?;
        t.settle().await?;
        assert_everywhere(
            &t,
            &rest("location", "loc-tree"),
            &format!("\"retired\":{retired}"),
        );
        assert!(
            applied_with_action(&t, "loc-tree", action),
            "no node applied {action}"
        );
    }

    let deleters = [
        ("root", "child-b"),
        ("child-a", "grand"),
        ("child-b", "root"),
        ("grand", "child-a"),
    ];
    for (node, owner) in deleters {
        sample::delete_fhir(t.store(node), "Patient", &format!("p-{owner}")).await?;
    }
    t.settle().await?;
    t.assert_converged();
    for (_, owner) in deleters {
        let key = fhir("Patient", &format!("p-{owner}"));
        assert!(
            t.holders(&key).is_empty(),
            "{key:?} survives on {:?}",
            t.holders(&key)
        );
        assert!(applied_with_action(&t, &format!("p-{owner}"), "deleted"));
    }
    for node in LEVELS {
        let failed = t
            .audit(node)
            .iter()
            .filter(|r| r.outcome.kind() == OutcomeKind::Failed)
            .count();
        assert_eq!(failed, 0, "{node} recorded failures");
        assert!(
            t.conflicts(node).is_empty(),
            "{node} saw conflicts on unconflicting edits"
        );
    }
    t.shutdown().await;
    Ok(())
}

/// Per node, (pulls applied, pushes applied) of one resource.
fn applied(t: &TestNet, resource_id: &str) -> Vec<(String, usize, usize)> {
    let pulls = t.counts(Direction::Pull, resource_id, OutcomeKind::Applied);
    let pushes = t.counts(Direction::Push, resource_id, OutcomeKind::Applied);
    LEVELS
        .iter()
        .map(|n| (n.to_string(), pulls[*n], pushes[*n]))
        .collect()
}

fn expect(rows: &[(&str, usize, usize)]) -> Vec<(String, usize, usize)> {
    rows.iter()
        .map(|(n, a, b)| (n.to_string(), *a, *b))
        .collect()
}

/// Successful FHIR `PUT`s each node served, from its Prometheus `/metrics`.
async fn fhir_puts(t: &TestNet) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let mut out = Vec::new();
    for node in LEVELS {
        let labels = ["method=\"PUT\"", "api=\"fhir\"", "status=\"2xx\""];
        out.push((node, t.http_requests(node, &labels).await?));
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_fetched_once_per_node_and_never_echoed() -> anyhow::Result<()> {
    let t = TestNet::start(tree()).await?;
    put_patient(&t, "grand", "g-1", "FromGrand").await?;
    put_visit(&t, "grand", "g-visit", "from grand", false).await?;
    t.settle().await?;
    t.assert_converged();
    // Up the chain by push (grand, then child-a), down to child-b by one pull; nobody else
    // fetches it, and nobody pushes it twice.
    let once = expect(&[
        ("root", 0, 0),
        ("child-a", 0, 1),
        ("child-b", 1, 0),
        ("grand", 0, 1),
    ]);
    assert_eq!(applied(&t, "g-1"), once);
    assert_eq!(
        applied(&t, "g-visit"),
        once,
        "a REST document travels the same way"
    );
    for id in ["g-1", "g-visit"] {
        let grand_pulls = t.audit_for("grand", Direction::Pull, id);
        assert!(
            grand_pulls.iter().any(|r| is_skip(r, SkipReason::Echo)),
            "grand must see its own change to {id} come back as an echo: {grand_pulls:?}"
        );
    }
    let child_a_pulls = t.audit_for("child-a", Direction::Pull, "g-1");
    assert!(
        child_a_pulls
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Skipped { .. })),
        "child-a pushed g-1 up, so pulling it back must be skipped: {child_a_pulls:?}"
    );

    // The servers saw the same: one write on each node of the chain above grand, none below.
    let puts = fhir_puts(&t).await?;
    assert_eq!(
        puts,
        [("root", 1), ("child-a", 1), ("child-b", 0), ("grand", 0)]
    );

    // A second change counts once more, and more rounds change nothing.
    put_patient(&t, "grand", "g-1", "FromGrandAgain").await?;
    t.settle().await?;
    t.net.sync_round().await?;
    assert_eq!(
        fhir_puts(&t).await?,
        [("root", 2), ("child-a", 2), ("child-b", 0), ("grand", 0)]
    );
    let twice = expect(&[
        ("root", 0, 0),
        ("child-a", 0, 2),
        ("child-b", 2, 0),
        ("grand", 0, 2),
    ]);
    assert_eq!(applied(&t, "g-1"), twice);
    assert_everywhere(&t, &fhir("Patient", "g-1"), "FromGrandAgain");

    // A root change travels only down; each child's push sees it as an echo of its parent's
    // change, and grand's push knows the content is already there.
    put_patient(&t, "root", "r-1", "FromRoot").await?;
    t.settle().await?;
    let down = expect(&[
        ("root", 0, 0),
        ("child-a", 1, 0),
        ("child-b", 1, 0),
        ("grand", 1, 0),
    ]);
    assert_eq!(applied(&t, "r-1"), down);
    for child in ["child-a", "child-b"] {
        let pushes = t.audit_for(child, Direction::Push, "r-1");
        assert!(
            !pushes.is_empty() && pushes.iter().all(|r| is_skip(r, SkipReason::Echo)),
            "{child}: {pushes:?}"
        );
    }
    let grand_pushes = t.audit_for("grand", Direction::Push, "r-1");
    assert!(
        !grand_pushes.is_empty()
            && grand_pushes
                .iter()
                .all(|r| matches!(r.outcome, Outcome::Skipped { .. })),
        "grand: {grand_pushes:?}"
    );
    t.assert_converged();
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_children_sync_only_their_direction() -> anyhow::Result<()> {
    let mut reader = NodeSpec::new("reader", Some("root"));
    reader.push = false;
    let mut sender = NodeSpec::new("sender", Some("root"));
    sender.pull = false;
    let t = TestNet::start(vec![NodeSpec::new("root", None), reader, sender]).await?;
    for node in ["root", "reader", "sender"] {
        put_patient(&t, node, &format!("p-{node}"), "Created").await?;
    }
    t.settle().await?;
    let holders = |id: &str| t.holders(&fhir("Patient", id));
    assert_eq!(holders("p-root"), ["root", "reader"]);
    assert_eq!(
        holders("p-reader"),
        ["reader"],
        "a pull-only child must keep its changes local"
    );
    assert_eq!(holders("p-sender"), ["root", "reader", "sender"]);

    put_patient(&t, "root", "p-sender", "ChangedAtRoot").await?;
    t.settle().await?;
    let key = fhir("Patient", "p-sender");
    assert!(
        t.body("reader", &key)
            .unwrap_or_default()
            .contains("ChangedAtRoot")
    );
    assert!(
        t.body("root", &key)
            .unwrap_or_default()
            .contains("ChangedAtRoot")
    );
    let at_sender = t.body("sender", &key).unwrap_or_default();
    assert!(
        at_sender.contains("Created") && !at_sender.contains("ChangedAtRoot"),
        "a push-only child must not receive the parent's changes: {at_sender}"
    );
    assert!(
        t.audit("reader")
            .iter()
            .all(|r| r.direction == Direction::Pull)
    );
    assert!(
        t.audit("sender")
            .iter()
            .all(|r| r.direction == Direction::Push)
    );
    assert!(!t.audit("sender").is_empty() && !t.audit("reader").is_empty());
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_a_page_crosses_every_page() -> anyhow::Result<()> {
    let mut specs = tree();
    for spec in &mut specs {
        // Pages of 4, each read on its own (no spans of archive pages).
        spec.page_size = Some(4);
        spec.catch_up_page_max = Some(4);
    }
    let t = TestNet::start(specs).await?;
    for i in 0..30 {
        put_patient(&t, "root", &format!("bulk-root-{i:02}"), "Backlog").await?;
    }
    for i in 0..10 {
        put_visit(&t, "grand", &format!("bulk-grand-{i:02}"), "backlog", false).await?;
    }
    let first = t.net.sync_round().await?;
    let pages = |node: &str, direction| {
        first
            .runs
            .get(&(node.to_string(), direction))
            .map_or(0, |r| r.pages)
    };
    assert!(
        pages("child-b", "pull") >= 30 / 4,
        "child-b read {} pages",
        pages("child-b", "pull")
    );
    assert!(
        pages("grand", "push") >= 10 / 4,
        "grand pushed {} pages",
        pages("grand", "push")
    );
    t.settle().await?;
    t.assert_converged();
    for node in LEVELS {
        let store = t.store(node);
        let patients = store.list(sync_host_store::store::Kind::Fhir, "Patient", None, 100)?;
        let visits = store.list(sync_host_store::store::Kind::Rest, "visit", None, 100)?;
        assert_eq!((patients.len(), visits.len()), (30, 10), "{node}");
    }
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_deletions_and_resurrections_arrive_as_their_final_state() -> anyhow::Result<()> {
    let t = TestNet::start(tree()).await?;
    // Several changes to one record before anyone syncs: only the last state travels.
    for family in ["First", "Second", "Third"] {
        put_patient(&t, "root", "burst", family).await?;
    }
    put_visit(&t, "root", "burst-visit", "made", false).await?;
    put_visit(&t, "root", "burst-visit", "voided", true).await?;
    put_visit(&t, "root", "burst-visit", "restored", false).await?;
    put_patient(&t, "grand", "short-lived", "Gone").await?;
    sample::delete_fhir(t.store("grand"), "Patient", "short-lived").await?;
    t.settle().await?;
    t.assert_converged();
    assert_everywhere(&t, &fhir("Patient", "burst"), "Third");
    assert_everywhere(&t, &rest("visit", "burst-visit"), "restored");
    assert!(t.holders(&fhir("Patient", "short-lived")).is_empty());
    for node in ["child-a", "child-b", "grand"] {
        let pulls = t.audit_for(node, Direction::Pull, "burst");
        let applied = pulls
            .iter()
            .filter(|r| r.outcome == Outcome::Applied)
            .count();
        assert_eq!(applied, 1, "{node} fetched the burst once: {pulls:?}");
    }
    let superseded = t.audit_for("child-a", Direction::Pull, "burst");
    let skipped = superseded
        .iter()
        .filter(|r| is_skip(r, SkipReason::AlreadyPresent))
        .count();
    assert_eq!(
        skipped, 2,
        "the two older changes are recorded as skipped: {superseded:?}"
    );

    // Deleted at one level, then made again elsewhere: the new record reaches everyone.
    sample::delete_fhir(t.store("child-b"), "Patient", "burst").await?;
    common::delete_rest(t.store("grand"), "visit", "burst-visit").await?;
    t.settle().await?;
    assert!(t.holders(&fhir("Patient", "burst")).is_empty());
    assert!(
        t.holders(&rest("visit", "burst-visit")).is_empty(),
        "a REST deletion travels"
    );
    put_patient(&t, "grand", "burst", "Reborn").await?;
    put_visit(&t, "child-b", "burst-visit", "reopened", false).await?;
    t.settle().await?;
    t.assert_converged();
    assert_everywhere(&t, &fhir("Patient", "burst"), "Reborn");
    assert_everywhere(&t, &rest("visit", "burst-visit"), "reopened");
    for node in LEVELS {
        let failed = t
            .audit(node)
            .iter()
            .filter(|r| r.outcome.kind() == OutcomeKind::Failed)
            .count();
        assert_eq!(failed, 0, "{node} recorded failures: {:?}", t.audit(node));
        assert!(
            t.conflicts(node).is_empty(),
            "{node}: {:?}",
            t.conflicts(node)
        );
    }
    t.shutdown().await;
    Ok(())
}

//! End-to-end conflicts between a parent and a child that both edited a record: each policy
//! settles it with the winner on both sides and the loser kept in the conflict record; the
//! manual policy waits for an operator; a parent change that lands between the child's read
//! and its write is refused with 412 and becomes a conflict instead of an overwrite.

mod common;

use std::time::Duration;

use common::conflict::{
    assert_delete_kept_against_edit, assert_holds, assert_settled, conflict_of, create_synced,
    delete_against_edit, edit_both, pair, put,
};
use common::proxy::race_push;
use common::{TestNet, fhir};
use sync_host::audit::Outcome;
use sync_host::network::{NodeSpec, sample};
use sync_host::node::resolve::{Resolve, ResolveError, resolve_conflict};
use sync_host::state::ConflictStatus;
use sync_host::sync::conflict::{Direction, Policy, Side};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_wins_keeps_the_childs_version_in_the_record() -> anyhow::Result<()> {
    let t = pair(Policy::ParentWins).await?;
    create_synced(&t, &["pw-1", "pw-del"]).await?;
    edit_both(&t, "pw-1", "root").await?;
    delete_against_edit(&t, "pw-del").await?;
    t.settle().await?;
    assert_settled(&t, "pw-1", Side::Parent, Policy::ParentWins, "parent-wins");
    assert!(
        t.holders(&fhir("Patient", "pw-del")).is_empty(),
        "the deletion wins"
    );
    assert_delete_kept_against_edit(&t, "pw-del", Side::Parent);
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_wins_keeps_the_parents_version_in_the_record() -> anyhow::Result<()> {
    let t = pair(Policy::ChildWins).await?;
    create_synced(&t, &["cw-1", "cw-del", "cw-child-del"]).await?;
    let visit = |note| common::visit("cw-visit", note, false);
    sample::put_rest(t.store("root"), "visit", "cw-visit", visit("first")).await?;
    t.settle().await?;
    edit_both(&t, "cw-1", "child").await?;
    delete_against_edit(&t, "cw-del").await?;
    // The mirror case: the child deletes what the parent edits.
    sample::delete_fhir(t.store("child"), "Patient", "cw-child-del").await?;
    put(t.store("root"), "cw-child-del", "ParentEdit").await?;
    sample::put_rest(t.store("root"), "visit", "cw-visit", visit("parent note")).await?;
    sample::put_rest(t.store("child"), "visit", "cw-visit", visit("child note")).await?;
    t.settle().await?;
    assert_settled(&t, "cw-1", Side::Child, Policy::ChildWins, "child-wins");
    assert_eq!(
        t.holders(&fhir("Patient", "cw-del")),
        ["root", "child"],
        "the edit wins"
    );
    assert_delete_kept_against_edit(&t, "cw-del", Side::Child);
    assert!(
        t.holders(&fhir("Patient", "cw-child-del")).is_empty(),
        "the deletion wins"
    );
    let mirror = conflict_of(&t, "cw-child-del");
    assert!(mirror.child.deleted && mirror.parent.body.contains("ParentEdit"));
    // A REST document (versions from ETag, no meta) is settled the same way.
    for node in ["root", "child"] {
        let body = t
            .body(node, &common::rest("visit", "cw-visit"))
            .unwrap_or_default();
        assert!(body.contains("child note"), "{node}: {body}");
    }
    let record = conflict_of(&t, "cw-visit");
    assert!(
        record.parent.body.contains("parent note"),
        "{}",
        record.parent.body
    );
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_wins_picks_the_later_edit_on_either_side() -> anyhow::Result<()> {
    let t = pair(Policy::NewestWins).await?;
    // The child edits last here, the parent last there.
    create_synced(&t, &["nw-child", "nw-parent"]).await?;
    edit_both(&t, "nw-child", "root").await?;
    edit_both(&t, "nw-parent", "child").await?;
    t.settle().await?;
    assert_settled(
        &t,
        "nw-child",
        Side::Child,
        Policy::NewestWins,
        "newest-wins",
    );
    assert_settled(
        &t,
        "nw-parent",
        Side::Parent,
        Policy::NewestWins,
        "newest-wins",
    );
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_waits_for_an_operator_to_pick_a_side_or_merge() -> anyhow::Result<()> {
    let t = pair(Policy::Manual).await?;
    create_synced(&t, &["m-side", "m-merge"]).await?;
    edit_both(&t, "m-side", "root").await?;
    edit_both(&t, "m-merge", "child").await?;

    // The child pushes first: the parent's concurrent edit is detected, not overwritten.
    t.run("child", Direction::Push).await?;
    assert_holds(&t, "root", "m-side", "ParentEdit");
    assert_holds(&t, "root", "m-merge", "ParentEdit");
    for id in ["m-side", "m-merge"] {
        let record = conflict_of(&t, id);
        assert_eq!(
            (record.direction, record.status),
            (Direction::Push, ConflictStatus::Open)
        );
    }

    // More syncing changes nothing on either side until someone decides.
    t.settle().await?;
    t.net.sync_round().await?;
    for id in ["m-side", "m-merge"] {
        assert_holds(&t, "root", id, "ParentEdit");
        assert_holds(&t, "child", id, "ChildEdit");
        let record = conflict_of(&t, id);
        assert_eq!(record.status, ConflictStatus::Open);
        assert!(
            record.parent.body.contains("ParentEdit") && record.child.body.contains("ChildEdit")
        );
        let parked = t.audit("child").into_iter().any(|r| {
            r.resource_id == id
                && matches!(
                    r.outcome,
                    Outcome::Conflict {
                        winner: None,
                        policy: Policy::Manual,
                        ..
                    }
                )
        });
        assert!(
            parked,
            "the child's audit records the parked conflict on {id}"
        );
    }

    let child = t.handle("child");
    let pick = Resolve {
        side: Some(Side::Parent),
        body: None,
        by: "nurse-amina".into(),
    };
    resolve_conflict(child, conflict_of(&t, "m-side").id, pick).await?;
    // The merged body carries a decimal and a key order that must survive as written.
    let merged = sample::patient("m-merge", "Imani", "Merged", "1988-08-18").replace(
        r#""gender""#,
        r#""extension":[{"url":"http://example.org/height","valueDecimal":162.50}],"gender""#,
    );
    let merged = serde_json::from_str(&merged)?;
    let merge = Resolve {
        side: None,
        body: Some(merged),
        by: "nurse-amina".into(),
    };
    resolve_conflict(child, conflict_of(&t, "m-merge").id, merge).await?;
    t.settle().await?;

    for node in ["root", "child"] {
        assert_holds(&t, node, "m-side", "ParentEdit");
        assert_holds(&t, node, "m-merge", "Merged");
        assert_holds(&t, node, "m-merge", "1988-08-18");
        assert_holds(&t, node, "m-merge", r#""valueDecimal":162.50"#);
        let body = t
            .body(node, &fhir("Patient", "m-merge"))
            .unwrap_or_default();
        let at = |key: &str| body.find(key).unwrap_or(usize::MAX);
        assert!(
            at("\"resourceType\"") < at("\"active\""),
            "key order kept: {body}"
        );
    }
    t.assert_converged();
    for (id, winner) in [("m-side", Side::Parent), ("m-merge", Side::Child)] {
        let record = conflict_of(&t, id);
        assert_eq!(record.status, ConflictStatus::Resolved);
        let resolution = record.resolution.as_ref().expect("resolved");
        assert!(resolution.by.starts_with("nurse-amina"), "{resolution:?}");
        assert!(
            record.child.body.contains("ChildEdit"),
            "the child's version stays on record"
        );
        let audited = t.audit("child").into_iter().any(|r| {
            r.resource_id == id
                && r.outcome
                    == Outcome::Conflict {
                        conflict_id: record.id,
                        policy: Policy::Manual,
                        winner: Some(winner),
                    }
        });
        assert!(
            audited,
            "the audit records the operator's resolution of {id}"
        );
    }
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_change_between_read_and_write_is_refused_and_parked() -> anyhow::Result<()> {
    let race = race_push(Policy::Manual).await?;
    assert_eq!(
        race.write_statuses,
        [412],
        "the parent must refuse the stale write"
    );
    let at_root = race.at_root();
    assert!(
        at_root.contains("RacingParentEdit"),
        "the parent's change survives: {at_root}"
    );
    assert!(race.at_edge().contains("EdgeEdit"));
    let open = race.open_conflicts()?;
    let [record] = open.as_slice() else {
        panic!("one open conflict expected: {open:?}");
    };
    assert_eq!(
        (record.direction, record.resource_id.as_str()),
        (Direction::Push, "race-1")
    );
    assert!(
        record.parent.body.contains("RacingParentEdit"),
        "{}",
        record.parent.body
    );
    assert!(
        record.child.body.contains("EdgeEdit"),
        "{}",
        record.child.body
    );
    race.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_push_is_decided_by_policy_and_written_once_more() -> anyhow::Result<()> {
    let race = race_push(Policy::ChildWins).await?;
    assert_eq!(
        race.write_statuses,
        [412, 200],
        "refused, then written at the new version"
    );
    let at_root = race.at_root();
    assert!(
        at_root.contains("EdgeEdit"),
        "the child's version wins: {at_root}"
    );
    let all = race
        .edge
        .handle
        .state
        .conflicts(sync_host::state::ConflictFilter::All, 10)?;
    let [record] = all.as_slice() else {
        panic!("one conflict expected: {all:?}");
    };
    assert_eq!(record.status, ConflictStatus::Resolved);
    assert!(
        record.parent.body.contains("RacingParentEdit"),
        "the loser is kept"
    );
    race.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_can_keep_the_parents_deletion() -> anyhow::Result<()> {
    let t = pair(Policy::Manual).await?;
    create_synced(&t, &["m-del"]).await?;
    delete_against_edit(&t, "m-del").await?;
    t.settle().await?;
    assert_eq!(
        t.holders(&fhir("Patient", "m-del")),
        ["child"],
        "parked: nothing moves"
    );
    // This time through the admin API, as `sync-host conflicts resolve` does.
    let child = t.net.node("child").expect("started");
    let id = conflict_of(&t, "m-del").id;
    let response = reqwest::Client::new()
        .post(format!(
            "{}/admin/conflicts/{id}/resolve",
            child.running.base_url()
        ))
        .bearer_auth(&child.admin_token)
        .json(&serde_json::json!({ "side": "parent", "by": "records-officer" }))
        .send()
        .await?;
    assert_eq!(
        response.status(),
        reqwest::StatusCode::OK,
        "{}",
        response.text().await?
    );
    t.settle().await?;
    assert!(t.holders(&fhir("Patient", "m-del")).is_empty());
    let resolution = conflict_of(&t, "m-del").resolution.expect("resolved");
    assert!(
        resolution.by.starts_with("records-officer"),
        "{resolution:?}"
    );
    assert_delete_kept_against_edit(&t, "m-del", Side::Parent);
    t.assert_converged();
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_edit_on_both_sides_is_no_conflict() -> anyhow::Result<()> {
    let t = pair(Policy::Manual).await?;
    create_synced(&t, &["same"]).await?;
    put(t.store("root"), "same", "AgreedEdit").await?;
    // The same content with other key order, whitespace and a different `meta`: the
    // canonical hash leaves those out, so both sides already agree.
    let reordered = r#"{ "id": "same", "resourceType": "Patient",
        "meta": {"versionId": "77", "lastUpdated": "2020-01-01T00:00:00Z"},
        "name": [ {"given": ["Imani"], "family": "AgreedEdit", "use": "official"} ],
        "birthDate": "1988-08-08", "gender": "female", "active": true }"#;
    sample::put_fhir(t.store("child"), "Patient", "same", reordered.to_string()).await?;
    t.settle().await?;
    assert!(
        t.conflicts("child").is_empty(),
        "{:?}",
        t.conflicts("child")
    );
    for direction in [Direction::Push, Direction::Pull] {
        let mut records = t.audit_for("child", direction, "same");
        records.retain(|r| r.action == "updated");
        assert!(
            !records.is_empty()
                && records
                    .iter()
                    .all(|r| r.outcome.kind() != sync_host::audit::OutcomeKind::Applied),
            "nothing needed writing {direction:?}: {records:?}"
        );
    }
    t.assert_converged();
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolution_never_overwrites_a_newer_parent_edit() -> anyhow::Result<()> {
    let t = pair(Policy::Manual).await?;
    create_synced(&t, &["stale"]).await?;
    edit_both(&t, "stale", "root").await?;
    t.settle().await?;
    let parked = conflict_of(&t, "stale");
    // The parent edits again after the operator looked at the conflict.
    put(t.store("root"), "stale", "ParentEditAgain").await?;
    let pick = |by: &str| Resolve {
        side: Some(Side::Child),
        body: None,
        by: by.into(),
    };
    let refused = resolve_conflict(t.handle("child"), parked.id, pick("hasty")).await;
    assert!(
        matches!(
            refused,
            Err(ResolveError::Stale {
                side: "the parent",
                ..
            })
        ),
        "a resolution based on a stale parent version must be refused: {refused:?}"
    );
    assert_eq!(
        ResolveError::Stale {
            side: "the parent",
            id: 1
        }
        .status(),
        http::StatusCode::CONFLICT
    );
    assert_holds(&t, "root", "stale", "ParentEditAgain");
    assert_holds(&t, "child", "stale", "ChildEdit");
    // After the next sync the record shows the newer parent version, and resolving works.
    t.settle().await?;
    let updated = conflict_of(&t, "stale");
    assert_eq!(updated.status, ConflictStatus::Open);
    assert!(
        updated.parent.body.contains("ParentEditAgain"),
        "{}",
        updated.parent.body
    );
    resolve_conflict(t.handle("child"), updated.id, pick("careful")).await?;
    t.settle().await?;
    assert_holds(&t, "root", "stale", "ChildEdit");
    t.assert_converged();
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn category_policies_override_the_default() -> anyhow::Result<()> {
    let mut child = NodeSpec::new("child", Some("root"));
    child.extra_toml = "\n[sync.category_policies]\npatient = \"child-wins\"\n".into();
    let t = TestNet::start(vec![NodeSpec::new("root", None), child]).await?;
    create_synced(&t, &["by-category"]).await?;
    let encounter = |date| sample::encounter("enc-manual", "by-category", date);
    sample::put_fhir(
        t.store("root"),
        "Encounter",
        "enc-manual",
        encounter("2026-01-01"),
    )
    .await?;
    t.settle().await?;
    edit_both(&t, "by-category", "root").await?;
    sample::put_fhir(
        t.store("root"),
        "Encounter",
        "enc-manual",
        encounter("2026-02-02"),
    )
    .await?;
    sample::put_fhir(
        t.store("child"),
        "Encounter",
        "enc-manual",
        encounter("2026-03-03"),
    )
    .await?;
    t.settle().await?;
    // Encounters keep the default (manual): parked, both sides untouched.
    let parked = conflict_of(&t, "enc-manual");
    assert_eq!(
        (parked.policy, parked.status),
        (Policy::Manual, ConflictStatus::Open)
    );
    let at = |node| {
        t.body(node, &fhir("Encounter", "enc-manual"))
            .unwrap_or_default()
    };
    assert!(at("root").contains("2026-02-02") && at("child").contains("2026-03-03"));
    let keep_child = Resolve {
        side: Some(Side::Child),
        body: None,
        by: "clerk".into(),
    };
    resolve_conflict(t.handle("child"), parked.id, keep_child).await?;
    t.settle().await?;
    assert!(at("root").contains("2026-03-03"));
    // Patients follow their override (child-wins) without anyone deciding.
    assert_settled(
        &t,
        "by-category",
        Side::Child,
        Policy::ChildWins,
        "child-wins",
    );
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_wins_compares_edit_times_not_relay_times() -> anyhow::Result<()> {
    let mut mid = NodeSpec::new("mid", Some("root"));
    mid.policy = Policy::NewestWins;
    let mut leaf = NodeSpec::new("leaf", Some("mid"));
    leaf.policy = Policy::NewestWins;
    let t = TestNet::start(vec![NodeSpec::new("root", None), mid, leaf]).await?;
    put(t.store("root"), "relay", "Original").await?;
    t.settle().await?;
    // The leaf edits first; the root edits later. The leaf's edit reaches `mid` only when
    // the next round runs, after the root's edit was made.
    put(t.store("leaf"), "relay", "OlderLeafEdit").await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    put(t.store("root"), "relay", "NewerRootEdit").await?;
    t.settle().await?;
    for node in ["root", "mid", "leaf"] {
        assert_holds(&t, node, "relay", "NewerRootEdit");
    }
    t.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_only_child_keeps_its_resolution_local() -> anyhow::Result<()> {
    let mut child = NodeSpec::new("child", Some("root"));
    child.push = false;
    let t = TestNet::start(vec![NodeSpec::new("root", None), child]).await?;
    create_synced(&t, &["local-only"]).await?;
    edit_both(&t, "local-only", "root").await?;
    t.settle().await?;
    let record = conflict_of(&t, "local-only");
    assert_eq!(record.direction, Direction::Pull);
    let keep = Resolve {
        side: Some(Side::Child),
        body: None,
        by: "clinic-nurse".into(),
    };
    resolve_conflict(t.handle("child"), record.id, keep).await?;
    t.settle().await?;
    assert_holds(&t, "child", "local-only", "ChildEdit");
    assert_holds(&t, "root", "local-only", "ParentEdit");
    assert_eq!(
        conflict_of(&t, "local-only").status,
        ConflictStatus::Resolved
    );
    // The parent's next change still arrives, as pulls always do.
    put(t.store("root"), "local-only", "ParentLater").await?;
    t.settle().await?;
    assert_holds(&t, "child", "local-only", "ParentLater");
    t.shutdown().await;
    Ok(())
}

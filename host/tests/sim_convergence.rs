//! Convergence under concurrency, by simulation: seeded random schedules of edits, sync runs
//! (paused mid-way, concurrent in both directions of one node), crashes (at a request to the
//! parent, or between two durable steps of the node) and link failures on a
//! real four-node tree, each followed by quiescence and the checks of `sim::checks`. A failing
//! schedule is shrunk and printed with its seed, policy and steps.
//!
//! `SIM_SEEDS=n` sets how many random seeds run (default [`DEFAULT_SEEDS`]), `SIM_SEED_BASE`
//! the first one, `SIM_SHRINK` how many failing seeds get shrunk (default 1), `SIM_PARALLEL` how
//! many schedules run side by side (default 3); `SIM_NO_UNDO=1`
//! draws schedules without undos.

mod sim;

use std::time::Instant;

use futures::StreamExt;

use sync_host::sync::conflict::Policy;

use sim::runner::{reproduction, run, shrink};
use sim::schedule::{
    Dir, Edit, Hook, HookAction, Op, POLICIES, Schedule, Step, generate, with_durable_crashes,
};

/// Random seeds of a normal test run.
const DEFAULT_SEEDS: u64 = 1_000;
/// Schedules run side by side.
const DEFAULT_PARALLEL: u64 = 3;
/// Reruns one shrink may spend.
const SHRINK_BUDGET: usize = 60;

/// Seeds that once broke a property, with their policy and whether undos were drawn; each
/// runs on every test run.
const REGRESSION_SEEDS: &[(u64, Policy, bool)] = &[
    // A create undone (deleted) where no other node had the resource, while another node
    // creates it: the undo is replaced with no conflict record.
    (1, Policy::ChildWins, true),
    // A change undone at the root while a district changes the same resource.
    (19, Policy::Manual, true),
    // A delete pulled by a node that never held the resource leaves no tombstone there; a
    // create from below then goes up over the parent's tombstone as a plain re-create.
    (13, Policy::ChildWins, false),
    // An operator resolution whose parent side is a tombstone is written without If-Match.
    (15, Policy::Manual, false),
    // A create and a delete of the same resource at the clinic around a root create.
    (25, Policy::ChildWins, false),
    // District-a relays district-b's delete up after a local create: the push sends the
    // create under district-b's origin, and district-b skips it as its own echo (a pure
    // divergence, every write accounted for).
    (1069, Policy::ChildWins, true),
    // District-b pushes an old relayed change of district-a's after deleting locally: the
    // delete goes up under district-a's origin and district-a skips it as its own echo.
    (2024, Policy::ParentWins, false),
    // A parked conflict whose parent moved on is refused as stale by every resolution, and no
    // sync ever refreshes it. Timing-dependent: it does not fail on every run.
    (2035, Policy::Manual, false),
    // A push that failed is queued; its replay parks a conflict, the operator resolves it, and
    // from then on every replay is skipped as already present without settling the entry:
    // the tree never becomes quiet.
    (2055, Policy::Manual, false),
    // Two creates of one observation meet a delete at the root; the operator keeps the
    // deletion at one district after the other district's resolution re-created it there.
    (1015, Policy::Manual, true),
    // A conflict winner written to the parent just before a crash: the batch with the
    // conflict record never committed.
    (1170, Policy::NewestWins, true),
    // The parent's winner written back to a node that changed meanwhile is refused.
    (1452, Policy::ParentWins, true),
    (1916, Policy::ParentWins, true),
    // A parked conflict whose two sides come to agree (the clinic deletes what the parent
    // deleted) stays open, and every resolution is refused as stale.
    (751, Policy::Manual, true),
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The policy a random seed runs under: the three deciding policies and `manual` in turn.
fn policy_of(seed: u64) -> Policy {
    POLICIES[(seed % POLICIES.len() as u64) as usize]
}

/// Runs `schedules`, shrinking up to `shrink_count` failures; returns the reproductions.
async fn run_all(schedules: Vec<Schedule>, shrink_count: usize) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let total = schedules.len();
    let mut failures = Vec::new();
    let mut writes = 0;
    let mut crashes_between = 0;
    // Schedules are independent trees (own ports, own directories), so a few run side by side;
    // verdicts are taken in seed order and failures shrunk one at a time.
    let parallel = env_u64("SIM_PARALLEL", DEFAULT_PARALLEL) as usize;
    let mut verdicts = futures::stream::iter(schedules)
        .map(|schedule| async move {
            let verdict = run(&schedule).await;
            (schedule, verdict)
        })
        .buffered(parallel.max(1));
    while let Some((schedule, verdict)) = verdicts.next().await {
        let verdict = verdict?;
        writes += verdict.writes;
        crashes_between += verdict.crashes_between;
        let Some(first) = verdict.violations.first() else {
            continue;
        };
        let checks: String = verdict.violations.iter().map(|v| v.check).collect();
        eprintln!(
            "seed {} ({:?}) failed: {checks}",
            schedule.seed, schedule.policy
        );
        let text = if failures.len() < shrink_count {
            let small = shrink(&schedule, first.check, SHRINK_BUDGET).await?;
            let again = run(&small).await?;
            format!(
                "{}\n  shrunk from {} steps to:\n{}",
                reproduction(&schedule, &verdict.violations),
                schedule.steps.len(),
                reproduction(&small, &again.violations)
            )
        } else {
            reproduction(&schedule, &verdict.violations)
        };
        failures.push(text);
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{total} schedules ({writes} acknowledged writes, {crashes_between} crashes between durable \
         steps) in {secs:.1} s: {:.2} schedules/s, {} failed",
        total as f64 / secs,
        failures.len()
    );
    Ok(failures)
}

fn report(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} schedule(s) broke convergence:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_seed_determines_its_schedule() {
    for seed in 0..200 {
        let a = generate(seed, policy_of(seed), true);
        let b = generate(seed, policy_of(seed), true);
        assert_eq!(a.steps, b.steps, "seed {seed}");
        assert_eq!(a.page_size, b.page_size);
        assert_eq!(a.to_string(), b.to_string());
    }
    let distinct: std::collections::BTreeSet<String> = (0..50)
        .map(|s| generate(s, Policy::Manual, true).to_string())
        .collect();
    assert_eq!(
        distinct.len(),
        50,
        "different seeds give different schedules"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_seeds_converge() -> anyhow::Result<()> {
    let schedules = REGRESSION_SEEDS
        .iter()
        .map(|(seed, policy, undo)| generate(*seed, *policy, *undo))
        .collect();
    report(&run_all(schedules, 0).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_schedules_converge() -> anyhow::Result<()> {
    let count = env_u64("SIM_SEEDS", DEFAULT_SEEDS);
    let base = env_u64("SIM_SEED_BASE", 0);
    let shrink_count = env_u64("SIM_SHRINK", 1) as usize;
    let undo = std::env::var_os("SIM_NO_UNDO").is_none();
    let schedules = (base..base + count)
        .map(|seed| with_durable_crashes(generate(seed, policy_of(seed), undo)))
        .collect();
    report(&run_all(schedules, shrink_count).await?);
    Ok(())
}

fn edit(node: usize, resource: usize, op: Op) -> Step {
    Step::Edit(Edit { node, resource, op })
}

fn run_step(node: usize, dir: Dir) -> Step {
    Step::Run {
        node,
        dir,
        hook: None,
    }
}

/// A hand-written schedule under every deciding policy and `manual`.
async fn shape(steps: Vec<Step>, page_size: usize) -> anyhow::Result<()> {
    let schedules = POLICIES
        .iter()
        .map(|policy| Schedule {
            seed: 0,
            policy: *policy,
            page_size,
            steps: steps.clone(),
        })
        .collect();
    report(&run_all(schedules, 0).await?);
    Ok(())
}

const ROOT: usize = 0;
const DISTRICT_A: usize = 1;
const DISTRICT_B: usize = 2;
const CLINIC: usize = 3;
const P1: usize = 0;
const P2: usize = 1;
const O1: usize = 2;
const O2: usize = 3;

/// An older relayed change on the clinic's push page makes the push send the clinic's current
/// copy up under the root's origin; the district then never passes it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_older_change_does_not_carry_a_newer_local_edit_under_its_origin()
-> anyhow::Result<()> {
    shape(
        vec![
            edit(ROOT, P1, Op::Put),
            run_step(DISTRICT_A, Dir::Pull),
            run_step(CLINIC, Dir::Pull),
            edit(ROOT, P1, Op::Put),
            run_step(DISTRICT_A, Dir::Pull),
            run_step(CLINIC, Dir::Pull),
            edit(CLINIC, P1, Op::Put),
            run_step(CLINIC, Dir::Push),
        ],
        2,
    )
    .await
}

/// A change undone at the clinic while the district changes the same patient: both sides
/// changed since the last sync, even though the clinic's content equals the base again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undone_change_meets_a_concurrent_change_as_a_conflict() -> anyhow::Result<()> {
    shape(
        vec![
            edit(ROOT, P1, Op::Put),
            run_step(DISTRICT_A, Dir::Pull),
            run_step(CLINIC, Dir::Pull),
            edit(CLINIC, P1, Op::Put),
            edit(CLINIC, P1, Op::Undo),
            edit(DISTRICT_A, P1, Op::Put),
            run_step(CLINIC, Dir::Pull),
            run_step(CLINIC, Dir::Push),
        ],
        10,
    )
    .await
}

/// A create pushed up while the district creates the same patient between the push's read
/// and its write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_does_not_overwrite_a_concurrent_create_at_the_target() -> anyhow::Result<()> {
    shape(
        vec![
            edit(CLINIC, P1, Op::Put),
            Step::Run {
                node: CLINIC,
                dir: Dir::Push,
                hook: Some(Hook {
                    // After the search and the read of the target, before the PUT.
                    at: 3,
                    action: HookAction::Edit(Edit {
                        node: DISTRICT_A,
                        resource: P1,
                        op: Op::Put,
                    }),
                }),
            },
        ],
        10,
    )
    .await
}

/// The root deletes a patient district-a never held: district-a's pull stores nothing, so the
/// clinic's create of the same patient later travels up over the root's tombstone as if it
/// came after the delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_pulled_where_the_resource_never_was_still_meets_a_create_from_below()
-> anyhow::Result<()> {
    shape(
        vec![
            edit(DISTRICT_B, P1, Op::Put),
            run_step(DISTRICT_B, Dir::Push),
            edit(CLINIC, P1, Op::Put),
            edit(ROOT, P1, Op::Delete),
            run_step(DISTRICT_A, Dir::Pull),
        ],
        3,
    )
    .await
}

/// District-a deletes an observation that the clinic and district-b both change: the
/// conflicts recorded against the tombstone carry no parent version, so writing a winner over
/// it has no precondition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_against_a_tombstone_is_not_settled_by_a_blind_write() -> anyhow::Result<()> {
    shape(
        vec![
            edit(DISTRICT_A, O1, Op::Put),
            edit(CLINIC, O1, Op::Put),
            edit(DISTRICT_A, O1, Op::Delete),
            edit(DISTRICT_B, O1, Op::Put),
        ],
        4,
    )
    .await
}

/// The clinic's pull has read district-a's copy when the clinic's push settles a conflict on
/// the same patient in the clinic's favour; the pull then applies the copy it read, which is
/// older than the push's write, over the sync base the push just committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_and_a_push_of_one_node_settling_one_resource_do_not_undo_each_other()
-> anyhow::Result<()> {
    shape(
        vec![
            edit(ROOT, P1, Op::Put),
            run_step(DISTRICT_A, Dir::Pull),
            run_step(CLINIC, Dir::Pull),
            edit(CLINIC, P1, Op::Put),
            edit(DISTRICT_A, P1, Op::Put),
            Step::Run {
                node: CLINIC,
                dir: Dir::Pull,
                hook: Some(Hook {
                    // The search that fetches district-a's copy, after the feed page.
                    at: 2,
                    action: HookAction::Run {
                        node: CLINIC,
                        dir: Dir::Push,
                        answered: true,
                    },
                }),
            },
        ],
        10,
    )
    .await
}

/// The clinic's create of an observation is parked against the parent's tombstone (under
/// `manual`), and the clinic deletes it while its push is under way: both sides now hold a
/// tombstone, so the open conflict is moot and must close instead of waiting for an operator
/// whose every resolution is refused as stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_conflict_whose_sides_come_to_agree_is_closed() -> anyhow::Result<()> {
    let both = |node| Step::Both { node };
    shape(
        vec![
            edit(ROOT, O2, Op::Put),
            both(DISTRICT_A),
            edit(ROOT, O2, Op::Undo),
            both(DISTRICT_A),
            both(DISTRICT_B),
            run_step(CLINIC, Dir::Pull),
            edit(CLINIC, O2, Op::Put),
            run_step(DISTRICT_A, Dir::Push),
            Step::Run {
                node: CLINIC,
                dir: Dir::Push,
                hook: Some(Hook {
                    at: 1,
                    action: HookAction::Edit(Edit {
                        node: CLINIC,
                        resource: O2,
                        op: Op::Delete,
                    }),
                }),
            },
        ],
        1,
    )
    .await
}

/// Crashes between durable steps: district-a's pull dies after writing the root's patient to
/// its store but before committing, and district-a edits the patient before the pull runs
/// again; the clinic's push dies after recording its write intents but before writing. Nothing
/// is lost and nothing is applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_that_crash_between_durable_steps_lose_nothing() -> anyhow::Result<()> {
    use sync_host::state::DurablePoint;
    let crash = |node, dir, point| Step::CrashBetween {
        node,
        dir,
        point,
        nth: 1,
    };
    shape(
        vec![
            edit(ROOT, P1, Op::Put),
            crash(DISTRICT_A, Dir::Pull, DurablePoint::BeforeCommit),
            edit(DISTRICT_A, P1, Op::Put),
            run_step(DISTRICT_A, Dir::Pull),
            run_step(CLINIC, Dir::Pull),
            edit(CLINIC, O1, Op::Put),
            crash(CLINIC, Dir::Push, DurablePoint::AfterIntents),
            edit(CLINIC, O1, Op::Delete),
        ],
        10,
    )
    .await
}

/// District-b's pull crashes after writing district-a's observation but before committing, so
/// its push later meets that copy with no base and settles a conflict against the clinic's
/// newer one. The winner went up to the root labelled with district-a's origin (the content's
/// first author), and district-a skipped it as its own echo while holding the clinic's copy:
/// silent divergence (seed 5921, child-wins).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_winner_is_not_skipped_as_an_echo_by_the_contents_first_author()
-> anyhow::Result<()> {
    use sync_host::state::DurablePoint;
    shape(
        vec![
            edit(DISTRICT_A, O2, Op::Put),
            edit(ROOT, P2, Op::Put),
            edit(ROOT, P2, Op::Undo),
            Step::Both { node: DISTRICT_A },
            edit(CLINIC, O2, Op::Put),
            Step::Both { node: CLINIC },
            Step::CrashBetween {
                node: DISTRICT_B,
                dir: Dir::Pull,
                point: DurablePoint::BeforeCommit,
                nth: 2,
            },
            run_step(DISTRICT_A, Dir::Push),
        ],
        2,
    )
    .await
}

/// Injected link failures outlast the retry policy's five attempts, so district-b's change
/// becomes a dead letter; once the links heal, an operator sends it back and it syncs (seed
/// 8521, child-wins).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_made_by_link_failures_syncs_once_an_operator_retries_it()
-> anyhow::Result<()> {
    use sync_host::state::DurablePoint;
    shape(
        vec![
            edit(DISTRICT_B, P2, Op::Put),
            Step::FailNext {
                node: DISTRICT_B,
                count: 2,
            },
            run_step(DISTRICT_B, Dir::Push),
            Step::FailNext {
                node: DISTRICT_B,
                count: 3,
            },
            run_step(DISTRICT_B, Dir::Push),
            edit(DISTRICT_B, P2, Op::Put),
            Step::CrashBetween {
                node: DISTRICT_B,
                dir: Dir::Push,
                point: DurablePoint::BeforeIntents,
                nth: 2,
            },
        ],
        4,
    )
    .await
}

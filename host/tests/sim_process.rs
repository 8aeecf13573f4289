//! Convergence with real processes: the simulated tree run as `sync-host run` processes on
//! loopback, a bounded seeded schedule of edits through the FHIR API, `sync-now` triggers that
//! run while later edits land, SIGKILLs and restarts of non-root nodes and failing links; then
//! the tree settles through `sync-now` and the nodes, stopped and opened again, are checked
//! like the simulation's (convergence, nothing lost, applied once, only injected failures).
//!
//! `SIM_PROCESS_SEEDS=n` sets how many seeds run (default [`DEFAULT_SEEDS`]; 50 for the long
//! mode), `SIM_PROCESS_SEED_BASE` the first one.

// Shared with the fault tests, which use more of it.
#[allow(dead_code)]
#[path = "support_faults/process.rs"]
mod process;
#[path = "sim/processes.rs"]
mod processes;
mod sim;

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sync_host::sync::conflict::Policy;

use processes::ProcessTree;
use sim::checks::check;
use sim::exec::Sim;
use sim::runner::reproduction;
use sim::schedule::{Dir, Hook, HookAction, NODES, POLICIES, Schedule, Step, generate};

/// Seeds of a normal test run.
const DEFAULT_SEEDS: u64 = 3;
/// Steps of a schedule at most: processes are slow to restart.
const MAX_STEPS: usize = 30;
/// Settling rounds at most.
const MAX_ROUNDS: usize = 12;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn direction(dir: Dir) -> &'static str {
    match dir {
        Dir::Pull => "pull",
        Dir::Push => "push",
    }
}

/// Carries a step out on processes. A run is only triggered: it happens while the next steps
/// do. A paused run becomes a run with an edit racing it, or a run killed at once.
async fn step(tree: &mut ProcessTree, at: usize, step: Step) -> anyhow::Result<()> {
    match step {
        Step::Edit(edit) => tree.edit(at, edit).await,
        Step::Run { node, dir, hook } => {
            tree.trigger(node, direction(dir)).await?;
            match hook.map(|h: Hook| h.action) {
                Some(HookAction::Edit(edit)) => tree.edit(at, edit).await,
                Some(HookAction::Crash { .. }) => tree.kill_and_restart(node).await,
                Some(HookAction::Run { node, dir, .. }) => tree.trigger(node, direction(dir)).await,
                Some(HookAction::Fail) => {
                    tree.world.proxy(node).fail_next(1);
                    Ok(())
                }
                None => Ok(()),
            }
        }
        Step::Both { node } => {
            tree.trigger(node, "pull").await?;
            tree.trigger(node, "push").await
        }
        Step::Restart { node } => tree.kill_and_restart(node).await,
        // A process cannot be stopped between two durable steps from outside: it is killed
        // while the run it was asked for is under way.
        Step::CrashBetween { node, dir, .. } => {
            tree.trigger(node, direction(dir)).await?;
            tree.kill_and_restart(node).await
        }
        Step::FailNext { node, count } => {
            tree.world.proxy(node).fail_next(count);
            Ok(())
        }
    }
}

/// Rounds of `sync-now` (pushes bottom-up, pulls top-down, an operator under `manual`) until
/// one processes nothing and no node has lag, retries or open conflicts.
async fn settle(tree: &ProcessTree, schedule: &Schedule) -> anyhow::Result<Option<String>> {
    let mut operator = StdRng::seed_from_u64(schedule.seed ^ 0x0b5e_55ed);
    for _ in 0..MAX_ROUNDS {
        let mut events = 0;
        for node in (1..NODES.len()).rev() {
            events += tree.sync_now(node, "push").await?;
        }
        for node in 1..NODES.len() {
            events += tree.sync_now(node, "pull").await?;
        }
        if schedule.policy == Policy::Manual {
            events += tree.resolve_open(&mut || operator.random_bool(0.5)).await? as u64;
        }
        let mut pending = 0;
        for node in 1..NODES.len() {
            let status = tree.status(node).await?;
            for figure in [
                &status["push_lag_entries"],
                &status["pull_lag_entries"],
                &status["counts"]["retries"],
                &status["counts"]["open_conflicts"],
            ] {
                pending += figure.as_u64().unwrap_or(0);
            }
        }
        if events == 0 && pending == 0 {
            return Ok(None);
        }
    }
    Ok(Some(format!(
        "the processes were still syncing after {MAX_ROUNDS} rounds"
    )))
}

/// One seed: the schedule, settling, the checks; returns the reproduction when it failed.
async fn one(seed: u64) -> anyhow::Result<Option<String>> {
    let mut schedule = generate(
        seed,
        POLICIES[(seed % POLICIES.len() as u64) as usize],
        true,
    );
    schedule.steps.truncate(MAX_STEPS);
    if std::env::var_os("SIM_TRACE").is_some() {
        eprintln!("{schedule}");
    }
    let mut tree = ProcessTree::start(&schedule).await?;
    for (at, s) in schedule.steps.iter().enumerate() {
        step(&mut tree, at, *s).await?;
    }
    for node in 1..NODES.len() {
        tree.world.proxy(node).fail_next(0);
    }
    let stuck = settle(&tree, &schedule).await?;
    let (world, ledger) = tree.into_world().await?;
    let sim = Sim {
        world,
        ledger,
        run_errors: Vec::new(),
        refusals: Default::default(),
        crashes_between: 0,
    };
    let kills = schedule
        .steps
        .iter()
        .filter(|s| matches!(s, Step::Restart { .. }))
        .count();
    eprintln!(
        "seed {seed} ({:?}): {} steps, {} acknowledged writes, {kills} restarts",
        schedule.policy,
        schedule.steps.len(),
        sim.ledger.writes.len()
    );
    let mut violations = check(&sim)?;
    if let Some(text) = stuck {
        violations.push(sim::checks::Violation { check: 'c', text });
    }
    sim.world.shutdown().await;
    Ok((!violations.is_empty()).then(|| reproduction(&schedule, &violations)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_schedules_on_real_processes_converge() -> anyhow::Result<()> {
    let count = env_u64("SIM_PROCESS_SEEDS", DEFAULT_SEEDS);
    let base = env_u64("SIM_PROCESS_SEED_BASE", 0);
    let started = Instant::now();
    let mut failures = Vec::new();
    for seed in base..base + count {
        if let Some(text) = one(seed).await? {
            eprintln!("seed {seed} failed");
            failures.push(text);
        }
    }
    eprintln!(
        "{count} process schedules in {:.1} s, {} failed",
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} schedule(s) broke convergence on real processes:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

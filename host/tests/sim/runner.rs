//! One schedule from start to verdict: start a fresh tree, carry out the steps, end the
//! injected faults, drive the tree quiet (pushes bottom-up, pulls top-down, an operator
//! resolving what `manual` parks), then check. A failing schedule is shrunk by dropping steps
//! while it still breaks the same property, and printed as a reproduction.

use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sync_host::state::ConflictFilter;
use sync_host::sync::conflict::Policy;

use super::checks::{Violation, check};
use super::exec::Sim;
use super::schedule::{Dir, NODES, Schedule};
use super::world::World;

/// Rounds the tree gets to become quiet; a healthy tree needs two or three.
const MAX_ROUNDS: usize = 10;

/// The verdict on one schedule.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub violations: Vec<Violation>,
    /// Local writes acknowledged.
    pub writes: usize,
    /// Conflicts an operator resolved during quiescence (`manual`).
    pub resolved: usize,
    /// Runs stopped by a crash between two durable steps.
    pub crashes_between: usize,
}

/// Runs `schedule` on a fresh tree. Errors of the tree itself (a node that does not restart)
/// are verdicts too, under the letter `x`.
pub async fn run(schedule: &Schedule) -> anyhow::Result<Verdict> {
    let timer = std::time::Instant::now();
    let world = World::start(schedule).await?;
    let started = timer.elapsed();
    let mut sim = Sim::new(world);
    let mut violations = Vec::new();
    let mut resolved = 0;
    let outcome = drive(&mut sim, schedule, &mut resolved).await;
    match outcome {
        Ok(Some(stuck)) => violations.push(Violation {
            check: 'c',
            text: stuck,
        }),
        Ok(None) => {}
        Err(e) => violations.push(Violation {
            check: 'x',
            text: format!("{e:#}"),
        }),
    }
    if violations.iter().all(|v| v.check != 'x') {
        violations.extend(check(&sim)?);
    }
    if std::env::var_os("SIM_TRACE").is_some() && !violations.is_empty() {
        eprintln!("{}", super::checks::dump(&sim)?);
    }
    let writes = sim.ledger.writes.len();
    let crashes_between = sim.crashes_between;
    let checked = timer.elapsed();
    sim.world.shutdown().await;
    if std::env::var_os("SIM_TRACE").is_some() {
        eprintln!(
            "start {started:?}, run+check {:?}, stop {:?}",
            checked - started,
            timer.elapsed() - checked
        );
    }
    Ok(Verdict {
        violations,
        writes,
        resolved,
        crashes_between,
    })
}

/// The steps, then quiescence; `Some` when the tree never became quiet.
async fn drive(
    sim: &mut Sim,
    schedule: &Schedule,
    resolved: &mut usize,
) -> anyhow::Result<Option<String>> {
    for (at, step) in schedule.steps.iter().enumerate() {
        sim.step(at, *step).await?;
    }
    sim.heal();
    quiesce(sim, schedule, resolved).await
}

/// Rounds until one reads no new entry, replays no retry and leaves nothing to resolve.
async fn quiesce(
    sim: &mut Sim,
    schedule: &Schedule,
    resolved: &mut usize,
) -> anyhow::Result<Option<String>> {
    let after = schedule.steps.len();
    let mut operator = StdRng::seed_from_u64(schedule.seed ^ 0x0b5e_55ed);
    let mut dead_letter_retries = 0;
    for _ in 0..MAX_ROUNDS {
        let mut busy = 0;
        for node in (1..NODES.len()).rev() {
            let a = sim.run(after, node, Dir::Push).await?;
            busy += a.events + a.retried;
        }
        for node in 1..NODES.len() {
            let a = sim.run(after, node, Dir::Pull).await?;
            busy += a.events + a.retried;
        }
        if schedule.policy == Policy::Manual {
            // A refused resolution is tried again next round, as the refusal asks.
            let (n, refused) = resolve_open(sim, &mut operator).await?;
            *resolved += n;
            busy += n + refused;
        }
        // Injected link failures can outlast the retry policy's attempts; an operator then
        // sends the dead letters back to the queue, as `sync-host retry --dead` does, once the
        // links are healed. Twice at most: one still dead after that is a violation (d).
        if dead_letter_retries < 2 {
            let requeued = retry_dead_letters(sim).await?;
            dead_letter_retries += usize::from(requeued > 0);
            busy += requeued;
        }
        let mut queued = 0;
        for node in 0..NODES.len() {
            queued += sim
                .world
                .node(node)
                .running
                .handle
                .state
                .retry_queue()?
                .len();
        }
        if busy == 0 && queued == 0 {
            return Ok(None);
        }
    }
    Ok(Some(format!(
        "the tree was still syncing after {MAX_ROUNDS} rounds (an echo loop, or work that never settles)"
    )))
}

/// What an operator does under `manual`: resolves every open conflict through the admin API,
/// keeping a side drawn from the seed. A resolution refused as stale waits for the next round.
/// Returns how many were resolved and how many refused.
async fn resolve_open(sim: &mut Sim, operator: &mut StdRng) -> anyhow::Result<(usize, usize)> {
    let client = reqwest::Client::new();
    let mut resolved = 0;
    let mut refused = 0;
    for node in 1..NODES.len() {
        let net = sim.world.node(node);
        let open = net
            .running
            .handle
            .state
            .conflicts(ConflictFilter::Open, 10_000)?;
        for conflict in open {
            let side = if operator.random_bool(0.5) {
                "parent"
            } else {
                "child"
            };
            let answer = client
                .post(format!(
                    "{}/admin/conflicts/{}/resolve",
                    net.running.base_url(),
                    conflict.id
                ))
                .bearer_auth(&net.admin_token)
                .json(&serde_json::json!({ "side": side, "by": "sim-operator" }))
                .send()
                .await?;
            let status = answer.status();
            if status.is_success() {
                resolved += 1;
            } else {
                refused += 1;
                let text = answer.text().await.unwrap_or_default();
                sim.refusals
                    .insert((node, conflict.id), format!("{status}: {text}"));
            }
        }
        if resolved > 0 {
            // A resolution is written to both sides of the link.
            sim.ledger.transfer(node, true);
            sim.ledger.transfer(node, false);
        }
    }
    Ok((resolved, refused))
}

/// Requeues every node's dead letters through the admin API; returns how many nodes had some.
async fn retry_dead_letters(sim: &Sim) -> anyhow::Result<usize> {
    let client = reqwest::Client::new();
    let mut requeued = 0;
    for node in 1..NODES.len() {
        let net = sim.world.node(node);
        if net.running.handle.state.dead_letters(1)?.is_empty() {
            continue;
        }
        let answer = client
            .post(format!("{}/admin/retry?dead=true", net.running.base_url()))
            .bearer_auth(&net.admin_token)
            .send()
            .await?;
        requeued += usize::from(answer.status().is_success());
    }
    Ok(requeued)
}

/// Drops steps from `failing` while it still breaks `check`, within `budget` reruns.
pub async fn shrink(failing: &Schedule, check: char, budget: usize) -> anyhow::Result<Schedule> {
    let mut best = failing.clone();
    let mut tries = 0;
    loop {
        let mut changed = false;
        let mut i = best.steps.len();
        while i > 0 {
            i -= 1;
            if tries >= budget {
                return Ok(best);
            }
            tries += 1;
            let mut candidate = best.clone();
            candidate.steps.remove(i);
            let verdict = run(&candidate).await?;
            if verdict.violations.iter().any(|v| v.check == check) {
                best = candidate;
                changed = true;
            }
        }
        if !changed {
            return Ok(best);
        }
    }
}

/// The reproduction of a failing schedule: seed, policy, page size, steps and violations.
pub fn reproduction(schedule: &Schedule, violations: &[Violation]) -> String {
    let mut text = schedule.to_string();
    text.push_str("  violations:\n");
    for v in violations {
        let _ = writeln!(text, "    ({}) {}", v.check, v.text);
    }
    text
}

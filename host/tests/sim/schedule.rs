//! Schedules of the convergence simulation: what can happen to a small tree (edits at any
//! node, sync runs, runs paused mid-way while something else happens, crashes, link
//! failures), drawn from a seed so that a seed names one schedule, and printed as a list of
//! steps a failing test can be replayed from.

use std::fmt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sync_host::state::DurablePoint;
use sync_host::sync::conflict::Policy;

/// The nodes of the simulated tree, parents before children.
pub const NODES: [&str; 4] = ["root", "district-a", "district-b", "clinic"];
/// Each node's parent, by index into [`NODES`].
pub const PARENT: [Option<usize>; 4] = [None, Some(0), Some(0), Some(1)];
/// The deciding policies and `manual`, which the long mode cycles through.
pub const POLICIES: [Policy; 4] = [
    Policy::ParentWins,
    Policy::ChildWins,
    Policy::NewestWins,
    Policy::Manual,
];
/// The resources edits are drawn from: few, so that edits collide.
pub const POOL: [(&str, &str); 4] = [
    ("Patient", "p1"),
    ("Patient", "p2"),
    ("Observation", "o1"),
    ("Observation", "o2"),
];

/// Pull or push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Pull,
    Push,
}

/// A local change at one node, as a user of that node makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create, or update with new content.
    Put,
    /// Delete (a tombstone).
    Delete,
    /// Write back what the node held before its own last change of the resource: an undo.
    Undo,
}

/// One edit: `op` on resource `POOL[resource]` at node `node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edit {
    pub node: usize,
    pub resource: usize,
    pub op: Op,
}

/// What happens while a run is paused at one of its requests to the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookAction {
    /// An edit lands in the middle of the run.
    Edit(Edit),
    /// Another node's run (or the other direction of the same node) runs to completion:
    /// before the held request reaches the parent, or, when `answered`, after the parent
    /// answered it but before the paused run sees the answer.
    Run {
        node: usize,
        dir: Dir,
        answered: bool,
    },
    /// The request is answered 503 without reaching the parent.
    Fail,
    /// The node crashes: before the request reaches the parent, or after the parent answered
    /// but before the node saw the answer. It restarts from its data directory.
    Crash { after_forward: bool },
}

/// A pause at the `at`-th request a run sends to the parent (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hook {
    pub at: usize,
    pub action: HookAction,
}

/// One step of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Edit(Edit),
    /// One run of a node's pull or push, optionally paused once.
    Run {
        node: usize,
        dir: Dir,
        hook: Option<Hook>,
    },
    /// The pull and the push of one node at the same time.
    Both {
        node: usize,
    },
    /// A clean stop and start of a non-root node from its data directory.
    Restart {
        node: usize,
    },
    /// The node's next `count` requests to its parent fail with 503.
    FailNext {
        node: usize,
        count: usize,
    },
    /// One run of a node's pull or push that crashes the `nth` time the node reaches `point`
    /// between two durable steps; the node restarts from its data directory.
    CrashBetween {
        node: usize,
        dir: Dir,
        point: DurablePoint,
        nth: usize,
    },
}

/// Everything a seed decides.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub seed: u64,
    pub policy: Policy,
    pub page_size: usize,
    pub steps: Vec<Step>,
}

/// The schedule of `seed` under `policy`: 12 to 40 steps. Without `undo` no step is an undo,
/// which lets other causes surface once undos are known to break a property.
pub fn generate(seed: u64, policy: Policy, undo: bool) -> Schedule {
    let mut rng = StdRng::seed_from_u64(seed);
    let page_size = rng.random_range(1..=4);
    let len = rng.random_range(12..=40);
    let mut steps = Vec::with_capacity(len + 1);
    while steps.len() < len {
        let mut step = step(&mut rng);
        if !undo {
            step = without_undo(step);
        }
        // An undo right after a change of the same resource is the shape hash-only conflict
        // detection cannot see; make it common.
        let undo = match step {
            Step::Edit(e) if undo && e.op != Op::Undo && rng.random_bool(0.3) => {
                Some(Step::Edit(Edit { op: Op::Undo, ..e }))
            }
            _ => None,
        };
        steps.push(step);
        steps.extend(undo);
    }
    // Details added after the first seeds were recorded come from a stream of their own, so
    // a recorded seed keeps the steps it had.
    let mut details = StdRng::seed_from_u64(seed ^ 0x5eed_0000_0000_0001);
    for step in &mut steps {
        if let Step::Run {
            hook:
                Some(Hook {
                    action: HookAction::Run { answered, .. },
                    ..
                }),
            ..
        } = step
        {
            *answered = details.random_bool(0.5);
        }
    }
    Schedule {
        seed,
        policy,
        page_size,
        steps,
    }
}

/// `schedule` with some plain runs turned into runs that crash between two durable steps of
/// their node (write intents, writes, the batch commit). Drawn from a stream of its own and
/// kept apart from [`generate`], so the recorded regression seeds keep the steps they had.
pub fn with_durable_crashes(mut schedule: Schedule) -> Schedule {
    let mut rng = StdRng::seed_from_u64(schedule.seed ^ 0x5eed_0000_0000_0002);
    for step in &mut schedule.steps {
        if let Step::Run {
            node,
            dir,
            hook: None,
        } = *step
            && rng.random_bool(0.25)
        {
            *step = Step::CrashBetween {
                node,
                dir,
                point: DURABLE_POINTS[rng.random_range(0..DURABLE_POINTS.len())],
                nth: rng.random_range(1..=3),
            };
        }
    }
    schedule
}

/// Every point between durable steps a crash can hit.
const DURABLE_POINTS: [DurablePoint; 4] = [
    DurablePoint::BeforeIntents,
    DurablePoint::AfterIntents,
    DurablePoint::BeforeCommit,
    DurablePoint::AfterCommit,
];

/// `step` with an undo turned into a new change.
fn without_undo(step: Step) -> Step {
    let plain = |e: Edit| Edit {
        op: if e.op == Op::Undo { Op::Put } else { e.op },
        ..e
    };
    match step {
        Step::Edit(e) => Step::Edit(plain(e)),
        Step::Run {
            node,
            dir,
            hook:
                Some(Hook {
                    at,
                    action: HookAction::Edit(e),
                }),
        } => Step::Run {
            node,
            dir,
            hook: Some(Hook {
                at,
                action: HookAction::Edit(plain(e)),
            }),
        },
        other => other,
    }
}

fn step(rng: &mut StdRng) -> Step {
    let child = rng.random_range(1..NODES.len());
    match rng.random_range(0..100) {
        0..45 => Step::Edit(edit(rng)),
        45..80 => {
            let dir = dir(rng);
            let hook = rng.random_bool(0.4).then(|| Hook {
                at: rng.random_range(1..=6),
                action: hook_action(rng, child, dir),
            });
            Step::Run {
                node: child,
                dir,
                hook,
            }
        }
        80..90 => Step::Both { node: child },
        90..95 => Step::Restart { node: child },
        _ => Step::FailNext {
            node: child,
            count: rng.random_range(1..=3),
        },
    }
}

fn edit(rng: &mut StdRng) -> Edit {
    let op = match rng.random_range(0..10) {
        0..6 => Op::Put,
        6..8 => Op::Delete,
        _ => Op::Undo,
    };
    Edit {
        node: rng.random_range(0..NODES.len()),
        resource: rng.random_range(0..POOL.len()),
        op,
    }
}

fn dir(rng: &mut StdRng) -> Dir {
    if rng.random_bool(0.5) {
        Dir::Pull
    } else {
        Dir::Push
    }
}

/// An action for a pause in a run of `(node, dir)`; a nested run is never that same run.
fn hook_action(rng: &mut StdRng, node: usize, dir: Dir) -> HookAction {
    match rng.random_range(0..10) {
        0..4 => HookAction::Edit(edit(rng)),
        4..7 => {
            let other = rng.random_range(1..NODES.len());
            let other_dir = self::dir(rng);
            if other == node && other_dir == dir {
                HookAction::Run {
                    node,
                    dir: flip(dir),
                    answered: false,
                }
            } else {
                HookAction::Run {
                    node: other,
                    dir: other_dir,
                    answered: false,
                }
            }
        }
        7 => HookAction::Fail,
        _ => HookAction::Crash {
            after_forward: rng.random_bool(0.5),
        },
    }
}

fn flip(dir: Dir) -> Dir {
    match dir {
        Dir::Pull => Dir::Push,
        Dir::Push => Dir::Pull,
    }
}

impl fmt::Display for Edit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (resource_type, id) = POOL[self.resource];
        write!(f, "{} {:?} {resource_type}/{id}", NODES[self.node], self.op)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Edit(e) => write!(f, "edit {e}"),
            Step::Run { node, dir, hook } => {
                write!(f, "{} {dir:?}", NODES[*node])?;
                match hook {
                    None => Ok(()),
                    Some(h) => write!(f, ", paused at request {}: {}", h.at, h.action),
                }
            }
            Step::Both { node } => write!(f, "{} Pull and Push at once", NODES[*node]),
            Step::Restart { node } => write!(f, "restart {}", NODES[*node]),
            Step::FailNext { node, count } => {
                write!(f, "{}'s next {count} request(s) up fail", NODES[*node])
            }
            Step::CrashBetween {
                node,
                dir,
                point,
                nth,
            } => write!(
                f,
                "{} {dir:?}, crashing at {point:?} (time {nth})",
                NODES[*node]
            ),
        }
    }
}

impl fmt::Display for HookAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookAction::Edit(e) => write!(f, "edit {e}"),
            HookAction::Run {
                node,
                dir,
                answered,
            } => {
                let when = if *answered {
                    " after the parent answered"
                } else {
                    ""
                };
                write!(f, "{} {dir:?} runs{when}", NODES[*node])
            }
            HookAction::Fail => f.write_str("the request fails (503)"),
            HookAction::Crash { after_forward } if *after_forward => {
                f.write_str("crash after the parent answered")
            }
            HookAction::Crash { .. } => f.write_str("crash before the request is sent"),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} policy {:?} page size {} ({} steps):",
            self.seed,
            self.policy,
            self.page_size,
            self.steps.len()
        )?;
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "  {i:>2}. {step}")?;
        }
        Ok(())
    }
}

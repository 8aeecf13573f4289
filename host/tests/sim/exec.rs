//! Carries a schedule out on a [`World`]: local edits through each node's store (guarded by
//! the version read, so the ledger knows exactly what each write replaced), sync runs, runs
//! paused at a chosen request to the parent while something else happens, crashes and link
//! failures. Every run's result is kept for the checks.

use sync_host_store::store::{Precondition, ResourceKey, StoreError, WriteOutcome, WriteRequest};
use tokio::sync::oneshot;

use super::crash_gate::CrashGate;
use super::hook_proxy::{Paused, Release};
use super::ledger::{DELETED, Ledger};
use super::schedule::{Dir, Edit, Hook, HookAction, NODES, Op, PARENT, POOL, Step};
use super::world::{World, run_once};

/// A run that ended with an error (its events were never committed).
#[derive(Debug, Clone)]
pub struct RunError {
    pub step: usize,
    pub node: usize,
    pub dir: Dir,
    pub message: String,
    /// The node's link injected a failure during the run.
    pub injected: bool,
}

/// Totals of the runs made, for the quiescence loop.
#[derive(Debug, Clone, Copy, Default)]
pub struct Activity {
    pub events: usize,
    pub retried: usize,
}

/// A world with its ledger.
pub struct Sim {
    pub world: World,
    pub ledger: Ledger,
    pub run_errors: Vec<RunError>,
    /// Per (node, conflict id), why the operator's last resolution was refused.
    pub refusals: std::collections::BTreeMap<(usize, u64), String>,
    /// Runs stopped by a crash between two durable steps.
    pub crashes_between: usize,
}

impl Sim {
    /// A simulation on a started world.
    pub fn new(world: World) -> Self {
        Self {
            world,
            ledger: Ledger::new(NODES.len()),
            run_errors: Vec::new(),
            refusals: Default::default(),
            crashes_between: 0,
        }
    }

    /// Carries out step number `at`.
    pub async fn step(&mut self, at: usize, step: Step) -> anyhow::Result<()> {
        match step {
            Step::Edit(edit) => self.edit(at, edit).await,
            Step::Run {
                node,
                dir,
                hook: None,
            } => self.run(at, node, dir).await.map(drop),
            Step::Run {
                node,
                dir,
                hook: Some(hook),
            } => self.run_paused(at, node, dir, hook).await,
            Step::Both { node } => self.both(at, node).await,
            Step::Restart { node } => self.world.restart(node).await,
            Step::FailNext { node, count } => {
                self.world.proxy(node).fail_next(count);
                Ok(())
            }
            Step::CrashBetween {
                node,
                dir,
                point,
                nth,
            } => self.run_crashing(at, node, dir, point, nth).await,
        }
    }

    /// A run that crashes the `nth` time its node reaches `point`, after which the node starts
    /// again from its data directory; a run that never gets there just finishes.
    async fn run_crashing(
        &mut self,
        at: usize,
        node: usize,
        dir: Dir,
        point: sync_host::state::DurablePoint,
        nth: usize,
    ) -> anyhow::Result<()> {
        let service = self.world.service(node, dir)?;
        let state = self.world.node(node).running.handle.state.clone();
        let before = self.world.proxy(node).injected();
        let (gate, held) = CrashGate::new(point, nth);
        state.set_step_hook(Some(gate));
        let mut run = Box::pin(run_once(service));
        let finished = tokio::select! {
            result = &mut run => Some(result),
            _ = held => None,
        };
        state.set_step_hook(None);
        // The node's database stays locked while any handle to it is alive.
        drop(state);
        match finished {
            Some(result) => {
                self.finish(at, node, dir, result, before);
                Ok(())
            }
            None => {
                drop(run);
                self.crashes_between += 1;
                // What the run made durable before the crash may be seen from now on.
                self.ledger.transfer(node, dir == Dir::Pull);
                self.world.restart(node).await
            }
        }
    }

    /// Ends every injected link failure.
    pub fn heal(&self) {
        for (node, parent) in PARENT.iter().enumerate() {
            if parent.is_some() {
                self.world.proxy(node).fail_next(0);
                self.world.proxy(node).disarm();
            }
        }
    }

    /// One local edit; an edit with nothing to do (delete of nothing, undo with no history)
    /// writes nothing and is not recorded.
    pub async fn edit(&mut self, at: usize, edit: Edit) -> anyhow::Result<()> {
        let (resource_type, id) = POOL[edit.resource];
        let key = ResourceKey::fhir(resource_type, id);
        // The version read guards the write, so what it replaced is exactly what was read.
        for _ in 0..5 {
            let store = self.world.store(edit.node).clone();
            let current = store.read(&key)?;
            let live = current.as_ref().and_then(|c| c.body.clone());
            let body = match edit.op {
                Op::Put => Some(self.ledger.new_body(resource_type, id)),
                Op::Delete if live.is_none() => return Ok(()),
                Op::Delete => None,
                Op::Undo => match self.ledger.undo_body(edit.node, edit.resource) {
                    Some(body) => body,
                    None => return Ok(()),
                },
            };
            if body.is_none() && live.is_none() {
                return Ok(());
            }
            let request = WriteRequest {
                key: key.clone(),
                body,
                precondition: current.as_ref().map_or(Precondition::Absent, |c| {
                    Precondition::Version(c.version_id)
                }),
                origin: None,
            };
            let record = match store.write(request).await {
                Ok(WriteOutcome::Created(r) | WriteOutcome::Updated(r)) => r.content_hash,
                Ok(WriteOutcome::Deleted(_)) => DELETED.to_string(),
                Ok(WriteOutcome::Unchanged(_) | WriteOutcome::AlreadyGone) => return Ok(()),
                Err(StoreError::VersionMismatch { .. } | StoreError::AlreadyExists { .. }) => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let pre = current.map(|c| {
                if c.deleted {
                    DELETED.to_string()
                } else {
                    c.content_hash
                }
            });
            self.ledger
                .record(at, edit.node, edit.resource, record, pre, live);
            return Ok(());
        }
        anyhow::bail!("{edit}: the resource kept changing under the edit")
    }

    /// One plain run of node `node` in `dir`.
    pub async fn run(&mut self, at: usize, node: usize, dir: Dir) -> anyhow::Result<Activity> {
        let service = self.world.service(node, dir)?;
        let before = self.world.proxy(node).injected();
        let result = run_once(service).await;
        Ok(self.finish(at, node, dir, result, before))
    }

    /// Records a finished run: its knowledge transfer, and its error if any.
    fn finish(
        &mut self,
        at: usize,
        node: usize,
        dir: Dir,
        result: Result<sync_host::sync::service::RunReport, String>,
        injected_before: usize,
    ) -> Activity {
        self.ledger.transfer(node, dir == Dir::Pull);
        match result {
            Ok(report) => Activity {
                events: report.events,
                retried: report.retried,
            },
            Err(message) => {
                let injected = self.world.proxy(node).injected() > injected_before;
                self.run_errors.push(RunError {
                    step: at,
                    node,
                    dir,
                    message,
                    injected,
                });
                Activity::default()
            }
        }
    }

    /// The pull and the push of `node` at the same time.
    async fn both(&mut self, at: usize, node: usize) -> anyhow::Result<()> {
        let pull = self.world.service(node, Dir::Pull)?;
        let push = self.world.service(node, Dir::Push)?;
        let before = self.world.proxy(node).injected();
        let (pulled, pushed) = tokio::join!(run_once(pull), run_once(push));
        self.finish(at, node, Dir::Pull, pulled, before);
        self.finish(at, node, Dir::Push, pushed, before);
        Ok(())
    }

    /// A run held at its `hook.at`-th request to the parent while `hook.action` happens.
    async fn run_paused(
        &mut self,
        at: usize,
        node: usize,
        dir: Dir,
        hook: Hook,
    ) -> anyhow::Result<()> {
        let service = self.world.service(node, dir)?;
        let before = self.world.proxy(node).injected();
        let held = self.world.proxy(node).arm(hook.at);
        let mut run = Box::pin(run_once(service));
        let held = tokio::select! {
            result = &mut run => {
                // The run sent fewer requests than the hook waited for.
                self.world.proxy(node).disarm();
                self.finish(at, node, dir, result, before);
                return Ok(());
            }
            held = held => held,
        };
        let Ok(Paused { release }) = held else {
            let result = run.await;
            self.finish(at, node, dir, result, before);
            return Ok(());
        };
        // What the held run did before its n-th request (a page already written, say) may be
        // seen by whatever happens now.
        self.ledger.transfer(node, dir == Dir::Pull);
        match hook.action {
            HookAction::Edit(edit) => self.edit(at, edit).await?,
            HookAction::Run {
                node: other,
                dir: other_dir,
                ..
            } if other == node => {
                // The two directions of one node decide one batch at a time: the other
                // direction waits for the held run's batch, so it starts now and finishes once
                // the held request is let through.
                let forward = Release::Forward {
                    done: None,
                    hold: None,
                };
                let held_run = async {
                    tokio::task::yield_now().await;
                    let _ = release.send(forward);
                    run.await
                };
                let (other_result, result) = tokio::join!(self.run(at, other, other_dir), held_run);
                other_result?;
                self.finish(at, node, dir, result, before);
                return Ok(());
            }
            HookAction::Run {
                node: other,
                dir: other_dir,
                answered: false,
            } => {
                self.run(at, other, other_dir).await?;
            }
            HookAction::Run {
                node: other,
                dir: other_dir,
                answered: true,
            } => {
                let (done, answered) = oneshot::channel();
                let (resume, hold) = oneshot::channel();
                let _ = release.send(Release::Forward {
                    done: Some(done),
                    hold: Some(hold),
                });
                let _ = answered.await;
                self.run(at, other, other_dir).await?;
                let _ = resume.send(());
                let result = run.await;
                self.finish(at, node, dir, result, before);
                return Ok(());
            }
            HookAction::Fail => {
                let _ = release.send(Release::Fail);
                let result = run.await;
                self.finish(at, node, dir, result, before);
                return Ok(());
            }
            HookAction::Crash { after_forward } => {
                if after_forward {
                    let (done, answered) = oneshot::channel();
                    let _ = release.send(Release::Forward {
                        done: Some(done),
                        hold: None,
                    });
                    let _ = answered.await;
                    drop(run);
                } else {
                    // The node dies before the request leaves it.
                    drop(run);
                    let _ = release.send(Release::Fail);
                }
                self.ledger.transfer(node, dir == Dir::Pull);
                return self.world.restart(node).await;
            }
        }
        let _ = release.send(Release::Forward {
            done: None,
            hold: None,
        });
        let result = run.await;
        self.finish(at, node, dir, result, before);
        Ok(())
    }
}

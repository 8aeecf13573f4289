//! What must hold once the tree is quiet: (a) every node holds the same live resources with the
//! same content; (b) every acknowledged write is the final state, was superseded by a later
//! write made where it could have been seen, or is the losing side of a resolved conflict
//! record; (c) no change was applied twice at one node; (d) nothing failed except what the
//! links injected, and nothing is left queued, parked or in conflict.
//!
//! Under `manual` the simulated operator resolves every parked conflict during quiescence
//! (keeping a side drawn from the seed) through the admin API, so there too a losing write is
//! one a resolved conflict record names; a conflict still open at the end is a violation (d),
//! reported with the refusal the admin API gave.

use std::collections::BTreeMap;

use sync_host::audit::{AuditQuery, AuditRecord, Outcome};
use sync_host::network::contents;
use sync_host::state::{ConflictFilter, ConflictRecord, ConflictStatus};
use sync_host_store::store::Kind;

use super::exec::Sim;
use super::hook_proxy::INJECTED;
use super::ledger::{DELETED, Write};
use super::schedule::{NODES, POOL};

/// The types the simulation writes.
const TYPES: &[(Kind, &str)] = &[(Kind::Fhir, "Patient"), (Kind::Fhir, "Observation")];

/// One broken property, worded for the reproduction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `a`, `b`, `c` or `d`.
    pub check: char,
    pub text: String,
}

/// Runs every check; an empty list means the schedule passed.
pub fn check(sim: &Sim) -> anyhow::Result<Vec<Violation>> {
    let mut found = Vec::new();
    let snapshots = (0..NODES.len())
        .map(|i| contents(sim.world.store(i), TYPES))
        .collect::<Result<Vec<_>, _>>()?;
    convergence(&snapshots, &mut found);
    let conflicts = all_conflicts(sim)?;
    accounted(sim, &snapshots[0], &conflicts, &mut found);
    let audits = (0..NODES.len())
        .map(|i| audit(sim, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    applied_once(&audits, &mut found);
    failures(sim, &audits, &conflicts, &mut found)?;
    Ok(found)
}

fn violation(found: &mut Vec<Violation>, check: char, text: String) {
    found.push(Violation { check, text });
}

/// (a): every node's live contents equal the root's.
fn convergence(snapshots: &[BTreeMap<String, String>], found: &mut Vec<Violation>) {
    let root = &snapshots[0];
    for (i, other) in snapshots.iter().enumerate().skip(1) {
        for (key, hash) in root {
            match other.get(key) {
                None => violation(found, 'a', format!("{key} is on root, not on {}", NODES[i])),
                Some(h) if h != hash => violation(
                    found,
                    'a',
                    format!("{key} differs: root {hash:.12}, {} {h:.12}", NODES[i]),
                ),
                Some(_) => {}
            }
        }
        for key in other.keys().filter(|k| !root.contains_key(*k)) {
            violation(found, 'a', format!("{key} is on {}, not on root", NODES[i]));
        }
    }
}

fn all_conflicts(sim: &Sim) -> anyhow::Result<Vec<(usize, ConflictRecord)>> {
    let mut all = Vec::new();
    for i in 0..NODES.len() {
        let state = &sim.world.node(i).running.handle.state;
        for record in state.conflicts(ConflictFilter::All, 100_000)? {
            all.push((i, record));
        }
    }
    Ok(all)
}

/// (b): every write is final, superseded where it was seen, or a recorded conflict loser.
fn accounted(
    sim: &Sim,
    root: &BTreeMap<String, String>,
    conflicts: &[(usize, ConflictRecord)],
    found: &mut Vec<Violation>,
) {
    let writes = &sim.ledger.writes;
    for w in writes {
        let (resource_type, id) = POOL[w.resource];
        let final_hash = root
            .get(&format!("{resource_type}/{id}"))
            .map_or(DELETED, String::as_str);
        if w.hash == final_hash
            || superseded(w, writes)
            || lost_a_conflict(w, resource_type, id, conflicts)
        {
            continue;
        }
        violation(
            found,
            'b',
            format!(
                "write #{} (step {}, {} {resource_type}/{id} -> {:.12}) was lost: the final state \
                 is {final_hash:.12}, no later write saw it and no conflict record kept it{}",
                w.id,
                w.step,
                NODES[w.node],
                w.hash,
                conflicts_on(resource_type, id, conflicts)
            ),
        );
    }
}

/// The conflict records of one resource, briefly, for a violation's text.
fn conflicts_on(resource_type: &str, id: &str, conflicts: &[(usize, ConflictRecord)]) -> String {
    let brief = |v: &sync_host::state::ConflictVersion| {
        if v.deleted {
            DELETED.to_string()
        } else {
            format!("{:.12}", v.content_hash)
        }
    };
    let list: Vec<String> = conflicts
        .iter()
        .filter(|(_, c)| c.resource_type == resource_type && c.resource_id == id)
        .map(|(node, c)| {
            let winner = c.resolution.as_ref().map(|r| r.winner);
            format!(
                "{} #{} {:?} parent {} child {} winner {winner:?}",
                NODES[*node],
                c.id,
                c.direction,
                brief(&c.parent),
                brief(&c.child)
            )
        })
        .collect();
    if list.is_empty() {
        String::new()
    } else {
        format!(" (conflict records: {})", list.join("; "))
    }
}

/// A write replaced where its content was held and may have been seen. Writes of equal content
/// are one state to the engine (equal content on both sides is never a conflict), so having seen
/// any write of this content counts; and a write that only restores content written before (an
/// undo) is superseded by any write that knowingly replaced that content, even one made earlier:
/// it brought no new state, and the engine treats it as agreement with the side that held it.
fn superseded(w: &Write, writes: &[Write]) -> bool {
    let same_content = |id: &usize| {
        writes
            .get(*id)
            .is_some_and(|k| k.resource == w.resource && k.hash == w.hash)
    };
    let restores_earlier = writes
        .iter()
        .any(|k| k.id < w.id && k.resource == w.resource && k.hash == w.hash);
    writes.iter().any(|other| {
        other.id != w.id
            && (other.id > w.id || restores_earlier)
            && other.resource == w.resource
            && other.pre.as_deref() == Some(w.hash.as_str())
            && other.knew.iter().any(same_content)
    })
}

fn lost_a_conflict(
    w: &Write,
    resource_type: &str,
    id: &str,
    conflicts: &[(usize, ConflictRecord)],
) -> bool {
    conflicts.iter().any(|(_, c)| {
        c.resource_type == resource_type
            && c.resource_id == id
            && c.loser().is_some_and(|loser| {
                if loser.deleted {
                    w.hash == DELETED
                } else {
                    loser.content_hash == w.hash
                }
            })
    })
}

fn audit(sim: &Sim, node: usize) -> anyhow::Result<Vec<AuditRecord>> {
    let query = AuditQuery {
        limit: 1_000_000,
        ..AuditQuery::default()
    };
    let page = sim
        .world
        .node(node)
        .running
        .handle
        .state
        .audit()
        .query(&query)?;
    Ok(page.entries.into_iter().rev().map(|e| e.record).collect())
}

/// (c): no feed entry was written to a target twice by one node in one direction.
fn applied_once(audits: &[Vec<AuditRecord>], found: &mut Vec<Violation>) {
    for (node, records) in audits.iter().enumerate() {
        let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
        for r in records.iter().filter(|r| wrote(r)) {
            if let Some(event) = &r.event_id {
                *seen
                    .entry((format!("{:?}", r.direction), event.clone()))
                    .or_default() += 1;
            }
        }
        for ((direction, event), count) in seen.into_iter().filter(|(_, n)| *n > 1) {
            violation(
                found,
                'c',
                format!(
                    "{} applied {event} {count} times on {direction}",
                    NODES[node]
                ),
            );
        }
    }
}

fn wrote(record: &AuditRecord) -> bool {
    match &record.outcome {
        Outcome::Applied => true,
        Outcome::Conflict { winner, .. } => winner.is_some(),
        _ => false,
    }
}

/// (d): only injected failures, no failed runs otherwise, nothing left to retry or decide.
fn failures(
    sim: &Sim,
    audits: &[Vec<AuditRecord>],
    conflicts: &[(usize, ConflictRecord)],
    found: &mut Vec<Violation>,
) -> anyhow::Result<()> {
    for (node, records) in audits.iter().enumerate() {
        for r in records {
            if let Outcome::Failed {
                failure, message, ..
            } = &r.outcome
                && !message.contains(INJECTED)
            {
                violation(
                    found,
                    'd',
                    format!(
                        "{} {:?} {}/{} failed ({failure:?}): {message}",
                        NODES[node], r.direction, r.resource_type, r.resource_id
                    ),
                );
            }
        }
        let state = &sim.world.node(node).running.handle.state;
        let queued = state.retry_queue()?.len();
        let dead = state.dead_letters(10_000)?;
        if queued > 0 {
            violation(
                found,
                'd',
                format!("{} still has {queued} retries", NODES[node]),
            );
        }
        for d in dead {
            violation(
                found,
                'd',
                format!(
                    "{} dead letter {}: {}",
                    NODES[node],
                    d.event_id,
                    d.dead_reason.unwrap_or_default()
                ),
            );
        }
    }
    for (node, c) in conflicts
        .iter()
        .filter(|(_, c)| c.status == ConflictStatus::Open)
    {
        violation(
            found,
            'd',
            format!(
                "{} conflict {} on {}/{} is still open{}",
                NODES[*node],
                c.id,
                c.resource_type,
                c.resource_id,
                sim.refusals
                    .get(&(*node, c.id))
                    .map(|r| format!(" (the operator's resolution was refused: {r})"))
                    .unwrap_or_default()
            ),
        );
    }
    for e in sim.run_errors.iter().filter(|e| !e.injected) {
        violation(
            found,
            'd',
            format!(
                "step {}: {} {:?} failed: {}",
                e.step, NODES[e.node], e.dir, e.message
            ),
        );
    }
    Ok(())
}

/// Every node's audit and conflict records, for reading a failing schedule (`SIM_TRACE`).
pub fn dump(sim: &Sim) -> anyhow::Result<String> {
    let mut text = String::new();
    for (node, name) in NODES.iter().enumerate() {
        text.push_str(&format!("  audit of {name}:\n"));
        for r in audit(sim, node)? {
            text.push_str(&format!(
                "    {:?} {} {}/{} {} {:?}\n",
                r.direction,
                r.action,
                r.resource_type,
                r.resource_id,
                r.event_id.unwrap_or_default(),
                r.outcome
            ));
        }
    }
    for (node, c) in all_conflicts(sim)? {
        text.push_str(&format!(
            "  conflict on {}: #{} {:?} {}/{} parent {:.12}{} child {:.12}{} {:?}\n",
            NODES[node],
            c.id,
            c.direction,
            c.resource_type,
            c.resource_id,
            c.parent.content_hash,
            if c.parent.deleted { " (deleted)" } else { "" },
            c.child.content_hash,
            if c.child.deleted { " (deleted)" } else { "" },
            c.resolution
        ));
    }
    Ok(text)
}

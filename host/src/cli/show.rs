//! Readable output of the operator commands: the JSON a node's `/admin` API answers, laid out
//! as short summaries and tables. `--json` prints the answer itself for scripts.

use serde_json::Value;
use sync_host::audit::{AuditEntry, Outcome};
use sync_host::state::ConflictRecord;

use super::table::Table;

/// A JSON value as a cell: strings without quotes, null as `-`.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `sync-host status`.
pub fn status(status: &Value) -> String {
    let mut out = format!(
        "node    {} at {}\nparent  {}\n\n",
        cell(&status["node"]),
        cell(&status["base_url"]),
        match &status["parent"] {
            Value::Null => "none (this node is a root)".to_string(),
            parent => cell(parent),
        }
    );
    let mut directions = Table::new(&[
        "DIRECTION",
        "STATE",
        "LAG",
        "LAST SUCCESS",
        "LAST FAILURE",
        "RUNS",
        "EVENTS",
    ]);
    for name in ["pull", "push"] {
        let d = &status[name];
        let lag = &status[format!("{name}_lag_entries").as_str()];
        if d.is_null() {
            directions.row(vec![name.into(), "off".into(), "-".into()]);
            continue;
        }
        let state = if d["running"] == true {
            "running"
        } else {
            "idle"
        };
        let failure = match &d["last_failure"] {
            Value::Array(parts) => format!(
                "{} {}",
                cell(&parts[0]),
                parts.get(1).map(cell).unwrap_or_default()
            ),
            _ => "-".into(),
        };
        directions.row(vec![
            name.into(),
            state.into(),
            cell(lag),
            cell(&d["last_success"]),
            failure,
            cell(&d["runs"]),
            cell(&d["events"]),
        ]);
    }
    out.push_str(&directions.render());
    let c = &status["counts"];
    out.push_str(&format!(
        "\nretries {} ({} due)  dead letters {}  open conflicts {}  audit records {}\n",
        cell(&c["retries"]),
        cell(&c["retries_due"]),
        cell(&c["dead_letters"]),
        cell(&c["open_conflicts"]),
        cell(&c["audit_records"]),
    ));
    let mut markers = Table::new(&["MARKER", "FEED", "SEQUENCE", "UPDATED"]);
    for m in status["markers"].as_array().into_iter().flatten() {
        markers.row(vec![
            cell(&m["owner"]),
            cell(&m["feed"]),
            cell(&m["sequence"]),
            cell(&m["updated_at"]),
        ]);
    }
    if !markers.is_empty() {
        out.push('\n');
        out.push_str(&markers.render());
    }
    out
}

/// The name a value has in the node's JSON (`already-present`, `not-found`, `child`).
fn name(value: impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => "?".into(),
    }
}

/// One audit outcome in a few words.
fn outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Applied => "applied".into(),
        Outcome::Unchanged => "unchanged".into(),
        Outcome::Filtered { by, reason } => format!("filtered by {by}: {reason}"),
        Outcome::Conflict {
            conflict_id,
            winner,
            ..
        } => match winner {
            Some(side) => format!("conflict {conflict_id}, {} won", name(side)),
            None => format!("conflict {conflict_id}, parked"),
        },
        Outcome::Failed {
            failure,
            status,
            message,
            attempt,
        } => {
            let status = status.map(|s| format!(" HTTP {s}")).unwrap_or_default();
            let kind = name(failure);
            format!("failed ({kind}{status}, attempt {attempt}): {message}")
        }
        Outcome::Settled { earlier_failure_id } => {
            format!("settled failure {earlier_failure_id}")
        }
        Outcome::Skipped { reason } => format!("skipped ({})", name(reason)),
    }
}

/// `sync-host audit list`: the page, and how to get the next one.
pub fn audit(page: &Value) -> Result<String, serde_json::Error> {
    let entries: Vec<AuditEntry> = serde_json::from_value(page["entries"].clone())?;
    let mut table = Table::new(&["ID", "TIME", "DIR", "ACTION", "RESOURCE", "OUTCOME"]);
    for entry in &entries {
        let r = &entry.record;
        table.row(vec![
            entry.key.to_cursor(),
            r.time.to_rfc3339(),
            name(r.direction),
            r.action.clone(),
            format!("{}/{}", r.resource_type, r.resource_id),
            outcome(&r.outcome),
        ]);
    }
    let mut out = if table.is_empty() {
        "no matching audit records\n".to_string()
    } else {
        table.render()
    };
    if let Value::String(next) = &page["next"] {
        out.push_str(&format!("more: --before {next}\n"));
    }
    Ok(out)
}

/// `sync-host conflicts list`.
pub fn conflicts(list: &Value) -> Result<String, serde_json::Error> {
    let records: Vec<ConflictRecord> = serde_json::from_value(list.clone())?;
    if records.is_empty() {
        return Ok("no conflicts\n".into());
    }
    let mut table = Table::new(&["ID", "DETECTED", "RESOURCE", "POLICY", "STATUS"]);
    for c in &records {
        let status = match &c.resolution {
            Some(r) => format!("{} kept by {}", name(r.winner), r.by),
            None => name(c.status),
        };
        table.row(vec![
            c.id.to_string(),
            c.detected_at.to_rfc3339(),
            format!("{}/{}", c.resource_type, c.resource_id),
            name(c.policy),
            status,
        ]);
    }
    Ok(table.render())
}

/// `sync-host sync-now --wait`: one line per direction; true when every run succeeded
/// without failed events.
pub fn sync_runs(answer: &Value) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    let runs = answer["runs"].as_object().cloned().unwrap_or_default();
    if runs.is_empty() {
        return (
            "nothing ran: this node neither pulls nor pushes\n".into(),
            true,
        );
    }
    for (name, run) in &runs {
        let verb = if name == "pull" { "pulled" } else { "pushed" };
        if let Value::String(error) = &run["error"] {
            ok = false;
            out.push_str(&format!("{name}: FAILED: {error}\n"));
            continue;
        }
        let failed = run["failed"].as_u64().unwrap_or(0);
        ok &= failed == 0;
        out.push_str(&format!(
            "{name}: {verb} {} ({} events on {} pages), {failed} failed, {} retries replayed\n",
            cell(&run["applied"]),
            cell(&run["events"]),
            cell(&run["pages"]),
            cell(&run["retried"]),
        ));
    }
    (out, ok)
}

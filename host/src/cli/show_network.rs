//! `sync-host status --tree`: the network view as a table, one node per row, indented by its
//! depth below the node asked.

use serde_json::Value;
use sync_host::report::{Health, NetworkRow};

use super::table::Table;

/// The rows of `/admin/network` as a table.
pub fn network(answer: &Value) -> Result<String, serde_json::Error> {
    let rows: Vec<NetworkRow> = serde_json::from_value(answer["nodes"].clone())?;
    let mut table = Table::new(&[
        "NODE",
        "HEALTH",
        "REPORTED",
        "PULL LAG",
        "PUSH LAG",
        "CONFLICTS",
        "RETRIES",
        "DEAD",
        "LAST FAILURE",
    ]);
    for row in &rows {
        let count = |pick: fn(&sync_host::report::model::ReportCounts) -> u64| {
            row.counts.map_or("-".to_string(), |c| pick(&c).to_string())
        };
        let lag = |lag: Option<u64>| lag.map_or("-".to_string(), |l| l.to_string());
        table.row(vec![
            format!("{}{}", "  ".repeat(row.depth), row.node),
            health(row.health).into(),
            row.age_secs.map_or("never".into(), ago),
            lag(row.pull_lag),
            lag(row.push_lag),
            count(|c| c.open_conflicts),
            count(|c| c.retries),
            count(|c| c.dead_letters),
            row.last_failure
                .as_ref()
                .map_or(String::new(), |f| format!("{} {}", f.at, f.message)),
        ]);
    }
    let stale = answer["stale_after_secs"].as_u64().unwrap_or_default();
    Ok(format!(
        "{}stale after {}\n",
        table.render(),
        ago(stale).trim_end_matches(" ago")
    ))
}

fn health(health: Health) -> &'static str {
    match health {
        Health::Ok => "ok",
        Health::Stale => "STALE",
        Health::NeverReported => "never reported",
    }
}

/// `secs` as a short age: `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
fn ago(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs} s ago"),
        120..7200 => format!("{} min ago", secs / 60),
        7200..172_800 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_short() {
        assert_eq!(ago(5), "5 s ago");
        assert_eq!(ago(600), "10 min ago");
        assert_eq!(ago(7200), "2 h ago");
        assert_eq!(ago(200_000), "2 d ago");
    }
}

//! Metrics an on-call engineer alerts on, read at scrape time from what the node keeps
//! anyway: per direction the lag, the last success, run durations, runs and events by
//! outcome; plugin call durations by plugin; and, at a parent, each known descendant's report
//! age, lag and health. Labels come from fixed sets, plugin names and known node ids only.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use sync_host_runtime::PluginRuntime;
use sync_host_types::durations::{BUCKETS_SECS, DurationSnapshot};

use crate::audit::{OutcomeKind, Timestamp};
use crate::node::NodeHandle;
use crate::report::{Health, network};
use crate::state::OUTCOME_KINDS;

/// The sync and plugin metrics of one node.
pub struct SyncMetrics {
    pub node: Arc<NodeHandle>,
    pub runtime: PluginRuntime,
}

impl std::fmt::Debug for SyncMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncMetrics")
            .field("node", &self.node.node_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    direction: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WaitingLabels {
    direction: &'static str,
    queue: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    direction: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeDirectionLabels {
    node: String,
    direction: &'static str,
}

/// One family: a descriptor, then one sample per label set.
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric_type: MetricType,
    samples: Vec<(L, M)>,
) -> Result<(), std::fmt::Error> {
    if samples.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, sample) in samples {
        sample.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A histogram snapshot as a metric.
struct ConstHistogram(DurationSnapshot);

impl EncodeMetric for ConstHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let bounds = BUCKETS_SECS.iter().copied().chain([f64::MAX]);
        let buckets: Vec<(f64, u64)> = bounds.zip(self.0.counts).collect();
        encoder.encode_histogram::<NoLabelSet>(self.0.sum_secs, self.0.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn gauge(value: u64) -> ConstGauge {
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX))
}

fn outcome_name(kind: OutcomeKind) -> &'static str {
    match kind {
        OutcomeKind::Applied => "applied",
        OutcomeKind::Unchanged => "unchanged",
        OutcomeKind::Skipped => "skipped",
        OutcomeKind::Filtered => "filtered",
        OutcomeKind::Conflict => "conflict",
        OutcomeKind::Failed => "failed",
        OutcomeKind::Settled => "settled",
    }
}

impl SyncMetrics {
    fn directions(
        &self,
    ) -> Vec<(
        &'static str,
        crate::sync::conflict::Direction,
        &crate::sync::status::DirectionStatus,
    )> {
        use crate::sync::conflict::Direction;
        let mut out = Vec::new();
        if let Some((_, status)) = &self.node.pull {
            out.push(("pull", Direction::Pull, status));
        }
        if let Some((_, status)) = &self.node.push {
            out.push(("push", Direction::Push, status));
        }
        out
    }

    fn encode_directions(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let markers = self.node.state.markers().unwrap_or_default();
        let lag_of = |name: &str| match name {
            "pull" => crate::node::lag::pull_lag(&self.node, &markers),
            _ => crate::node::lag::push_lag(&self.node, &markers)
                .ok()
                .flatten(),
        };
        let mut lags = Vec::new();
        let mut successes = Vec::new();
        let mut durations = Vec::new();
        let mut runs = Vec::new();
        let mut events = Vec::new();
        let mut waiting = Vec::new();
        let counts = self.node.state.counts(Timestamp::now()).ok();
        for (name, direction, status) in self.directions() {
            if let Some(counts) = &counts {
                let of = match direction {
                    crate::sync::conflict::Direction::Pull => counts.pull,
                    crate::sync::conflict::Direction::Push => counts.push,
                };
                for (queue, value) in [
                    ("retries", of.retries),
                    ("dead_letters", of.dead_letters),
                    ("open_conflicts", of.open_conflicts),
                ] {
                    let labels = WaitingLabels {
                        direction: name,
                        queue,
                    };
                    waiting.push((labels, gauge(value as u64)));
                }
            }
            let label = DirectionLabel { direction: name };
            let snapshot = status.snapshot();
            if let Some(lag) = lag_of(name) {
                lags.push((label.clone(), gauge(lag)));
            }
            if let Some(at) = snapshot.last_success {
                successes.push((label.clone(), gauge(at.as_millis() / 1000)));
            }
            durations.push((label, ConstHistogram(status.run_durations())));
            for (result, count) in [("ok", status.successes()), ("failed", status.failures())] {
                runs.push((
                    RunLabels {
                        direction: name,
                        result,
                    },
                    ConstCounter::new(count),
                ));
            }
            for kind in OUTCOME_KINDS {
                let count = self.node.state.outcomes_since_open(direction, kind);
                let labels = OutcomeLabels {
                    direction: name,
                    outcome: outcome_name(kind),
                };
                events.push((labels, ConstCounter::new(count)));
            }
        }
        family(
            encoder,
            "sync_lag_entries",
            "Feed entries a direction has yet to process",
            MetricType::Gauge,
            lags,
        )?;
        family(
            encoder,
            "sync_last_success_timestamp_seconds",
            "When a direction's last run finished without error (Unix time)",
            MetricType::Gauge,
            successes,
        )?;
        family(
            encoder,
            "sync_run_duration_seconds",
            "How long sync runs took",
            MetricType::Histogram,
            durations,
        )?;
        family(
            encoder,
            "sync_runs",
            "Sync runs finished, by result",
            MetricType::Counter,
            runs,
        )?;
        family(
            encoder,
            "sync_waiting",
            "Retries, dead letters and open conflicts of a direction",
            MetricType::Gauge,
            waiting,
        )?;
        family(
            encoder,
            "sync_events",
            "Events processed since the node started, by outcome",
            MetricType::Counter,
            events,
        )
    }

    fn encode_plugins(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let samples = self
            .runtime
            .call_durations()
            .into_iter()
            .map(|(plugin, snapshot)| (PluginLabel { plugin }, ConstHistogram(snapshot)))
            .collect();
        family(
            encoder,
            "plugin_call_duration_seconds",
            "How long plugin calls took, by plugin",
            MetricType::Histogram,
            samples,
        )
    }

    fn encode_network(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let reporting = &self.node.reporting;
        let Ok(kept) = reporting.book.all() else {
            return Ok(());
        };
        let standing = reporting.standing(&self.node, None, &kept);
        let here = standing.position();
        let now = Timestamp::now();
        let mut ages = Vec::new();
        let mut stale = Vec::new();
        let mut lags = Vec::new();
        let mut this = crate::report::NodeReport {
            node: self.node.node_id.clone(),
            parent: None,
            version: String::new(),
            generated_at: now,
            plugins: Vec::new(),
            pull: None,
            push: None,
            counts: Default::default(),
            recent_failures: Vec::new(),
            conflicts: Vec::new(),
            decisions: Vec::new(),
        };
        this.parent = self.node.parent_node.clone();
        let rows = network::view(&this, &kept, &here, now, reporting.stale_after);
        for row in rows.into_iter().skip(1) {
            let label = NodeLabel {
                node: row.node.clone(),
            };
            if let Some(age) = row.age_secs {
                ages.push((label.clone(), gauge(age)));
            }
            stale.push((label, gauge(u64::from(row.health != Health::Ok))));
            for (direction, lag) in [("pull", row.pull_lag), ("push", row.push_lag)] {
                if let Some(lag) = lag {
                    let labels = NodeDirectionLabels {
                        node: row.node.clone(),
                        direction,
                    };
                    lags.push((labels, gauge(lag)));
                }
            }
        }
        family(
            encoder,
            "network_report_age_seconds",
            "Age of each descendant's latest status report",
            MetricType::Gauge,
            ages,
        )?;
        family(
            encoder,
            "network_node_unhealthy",
            "1 when a descendant's report is stale or it never reported",
            MetricType::Gauge,
            stale,
        )?;
        family(
            encoder,
            "network_lag_entries",
            "Each descendant's lag per direction, from its report",
            MetricType::Gauge,
            lags,
        )
    }
}

impl Collector for SyncMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.encode_directions(&mut encoder)?;
        self.encode_plugins(&mut encoder)?;
        self.encode_network(&mut encoder)
    }
}
